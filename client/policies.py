"""This machine's copy of the workers' policy file: for `validate` and `policy show --local`.

Kept light (no Temporal, no asyncio): `validate` reads it on every call.
"""

from __future__ import annotations

from pathlib import Path

from client.config import Config
from contracts.failures import ExitCode, OpsctlError
from contracts.policy import BUILT_IN, BUILT_IN_POLICIES, PolicySet, parse_policy_file
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
