"""policy show [ENV] | policy check -f FILE: the rules runs obey.

The workers load the policy file named in their settings. `show` asks them (a tiny
OpsctlPolicy workflow on the task queue), so it prints what runs really obey; with
`--local`, or when no worker answers, it reads this machine's copy instead (`policy_file`
in the config, $OPSCTL_POLICY_FILE, or the dev stack's, else the built-in policies) and
says so. `check` validates a file offline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import Callable

from client.config import Config, config_for
from client.policies import local_policies, read_policy_file
from client.render import Output
from contracts.failures import ExitCode, OpsctlError
from contracts.policy import (
    Policy,
    PolicySet,
    ServedPolicies,
    WeeklyFreeze,
)


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
    config = config_for(args)
    served, answered_by = (None, "") if args.local else asyncio.run(_ask_the_workers(config))
    if served is None:
        policies, source = local_policies(config)
        served = ServedPolicies(
            source=source, policies={n: p for n in policies.environments if (p := policies.policy_for(n))}
        )
        answered_by = f"this machine's copy ({answered_by})" if answered_by else "this machine's copy"
    names = [args.environment] if args.environment else sorted(served.policies)
    unknown = [name for name in names if name not in served.policies]
    if unknown:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"no policy for environment {unknown[0]!r} in {served.source} (as read from {answered_by})",
            hint=f"known: {', '.join(sorted(served.policies))}",
        )
    shown = {name: served.policies[name] for name in names}
    text = "\n\n".join(render(policy, served.source) for policy in shown.values())
    text += f"\n\n(read from {answered_by})"
    data = {
        "source": served.source,
        "answered_by": answered_by,
        "policies": {name: p.model_dump(mode="json", by_alias=True) for name, p in shown.items()},
    }
    return Output(data, text)


WORKER_WAIT = 5.0  # seconds: a worker that polls answers in milliseconds


async def _ask_the_workers(config: Config) -> tuple[ServedPolicies | None, str]:
    """The policies a worker on the task queue applies, or (None, why not)."""
    from datetime import timedelta

    from client.runs import connect
    from contracts.policy import POLICY_PROBE

    try:
        client = await connect(config)
    except OpsctlError:
        return None, f"no Temporal at {config.temporal_address}"
    workflow_id = f"opsctl-policy-{uuid.uuid4().hex[:12]}"
    try:
        handle = await client.start_workflow(
            POLICY_PROBE,
            id=workflow_id,
            task_queue=config.task_queue,
            result_type=ServedPolicies,
            execution_timeout=timedelta(seconds=60),
        )
        answer: ServedPolicies = await asyncio.wait_for(handle.result(), WORKER_WAIT)
    except TimeoutError:
        with contextlib.suppress(Exception):
            await client.get_workflow_handle(workflow_id).terminate("no worker answered")
        return None, f"no worker on task queue {config.task_queue} answered within {WORKER_WAIT:.0f} s"
    except Exception as exc:  # an old worker without the probe, a refused RPC: fall back, say why
        return None, f"the workers did not answer: {type(exc).__name__}: {exc}"
    return answer, f"a worker on task queue {config.task_queue}"


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
        f"  schedules     a schedule's signed request is good for at most {_seconds(policy.schedule_max_age_seconds)}",
        f"  freeze        {'; '.join(freeze) if freeze else 'none'}",
        "  break-glass   "
        + (f"allowed; reviewed within {_seconds(glass.review_within_seconds)}" if glass.allowed else "not allowed"),
        f"  identities    {', '.join(people) if people else 'none registered'}",
    ]
    return "\n".join(lines)
