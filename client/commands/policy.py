"""policy show [ENV] | policy check -f FILE: the rules runs obey, read offline.

The workers load the policy file named in their settings (the embedded stack writes one
to its state folder); `show` reads the same file when this machine has it (`policy_file`
in the config, $OPSCTL_POLICY_FILE, or the dev stack's), else the built-in policies.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from client.config import Config, load_config
from client.render import Output
from contracts.failures import ExitCode, OpsctlError
from contracts.policy import BUILT_IN, BUILT_IN_POLICIES, Policy, PolicySet, WeeklyFreeze, parse_policy_file
from contracts.request import DocumentError


def read_policy_file(path: str) -> PolicySet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OpsctlError(ExitCode.INVALID_INPUT, f"cannot read the policy file {path}: {exc}") from exc
    try:
        return parse_policy_file(text, path)
    except DocumentError as exc:
        raise OpsctlError(exc.exit_code, str(exc), hint=_FORMAT_HINT) from exc


_FORMAT_HINT = "the format is in README.md, 'Policies and signatures'; examples/policies/production.yaml is one"


def local_policies(config: Config) -> tuple[PolicySet, str]:
    if not config.policy_file:
        return BUILT_IN_POLICIES, BUILT_IN
    return read_policy_file(config.policy_file), config.policy_file


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    del progress
    if args.action == "check":
        if not args.file:
            raise OpsctlError(ExitCode.INVALID_INPUT, "policy check needs -f POLICYFILE")
        policies = read_policy_file(args.file)
        notes = warnings(policies)
        text = (
            f"{args.file}: a valid policy set — environments {', '.join(sorted(policies.environments)) or 'none'}; "
            f"{len(policies.identities)} identities; {len(policies.groups)} groups"
        )
        text += "".join(f"\nwarning: {note}" for note in notes)
        return Output({"valid": True, "file": args.file, "warnings": notes}, text)
    policies, source = local_policies(load_config(args.as_user, args.state_dir))
    names = [args.environment] if args.environment else sorted(policies.environments)
    shown: dict[str, Policy] = {}
    for name in names:
        policy = policies.policy_for(name)
        if policy is None:
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"no policy for environment {name!r} in {source}",
                hint=f"known: {', '.join(sorted(policies.environments))}",
            )
        shown[name] = policy
    text = "\n\n".join(render(policy, source) for policy in shown.values())
    data = {"source": source, "policies": {name: p.model_dump(mode="json", by_alias=True) for name, p in shown.items()}}
    return Output(data, text)


def warnings(policies: PolicySet) -> list[str]:
    """Usable, but probably not what was meant."""
    notes = []
    for name, rules in sorted(policies.environments.items()):
        if rules.required_approvals and rules.require_signatures and len(policies.identities) <= 1:
            notes.append(
                f"{name} requires {rules.required_approvals} signed approval(s) but "
                f"{len(policies.identities)} identity is registered: no run there can be approved"
            )
        if not rules.required_approvals and rules.quorum:
            notes.append(f"{name} names a quorum but requires no approvals")
    return notes


def _seconds(value: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}s"


def _hours(window: WeeklyFreeze) -> str:
    end = "24:00" if window.end.hour == window.end.minute == 0 else f"{window.end:%H:%M}"
    return (
        "all day (UTC)" if f"{window.start:%H:%M}" == "00:00" and end == "24:00" else f"{window.start:%H:%M}-{end} UTC"
    )


def render(policy: Policy, source: str) -> str:
    freeze = [
        f"every {', '.join(day.value for day in w.days)} {_hours(w)} ({w.reason})" for w in policy.freeze.weekly
    ] + [f"{d.start:%Y-%m-%d %H:%M} → {d.end:%Y-%m-%d %H:%M} UTC ({d.reason})" for d in policy.freeze.dates]
    glass = policy.break_glass
    people = [
        f"{name}" + (f" ({', '.join(groups)})" if (groups := policy.groups_of(name)) else "")
        for name in sorted(policy.identities)
    ]
    signatures = f"required (a signed decision is good for at most {_seconds(policy.decision_max_age_seconds)})"
    lines = [
        f"Policy for {policy.environment} (from {source})",
        f"  approvals     {policy.describe_quorum()}",
        f"  signatures    {signatures if policy.require_signatures else 'not required'}",
        f"  deadline      approve within {_seconds(policy.approval_timeout_seconds)}",
        f"  blast radius  at most {policy.max_deletions} deletions per run",
        f"  freeze        {'; '.join(freeze) if freeze else 'none'}",
        "  break-glass   "
        + (f"allowed; reviewed within {_seconds(glass.review_within_seconds)}" if glass.allowed else "not allowed"),
        f"  identities    {', '.join(people) if people else 'none registered'}",
    ]
    return "\n".join(lines)
