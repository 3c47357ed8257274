"""Per-environment policy: who must approve, when changes may run, how far one run may reach.

Policies live in a policy file the worker loads (`policy_file` in its settings); without
one, the built-in set below applies. A run obtains its environment's policy from the
worker (a local activity at its start, recorded in history), never from its caller.
This module is the file's schema and its offline checks; `contracts.gate` judges with it.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from contracts.request import DocumentError, StrictModel, describe_validation_error, load_mapping

POLICY_FILE_KIND = "PolicySet"
BUILT_IN = "built-in"
SIGNATURE_LIFETIME = 600  # seconds a signature made by opsctl stays good
_YEAR = 366 * 24 * 3600  # the longest wait a policy may ask for: durable timers, but not forever
IDENTITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"  # plain names: no look-alikes, no invisible characters


RETRY_WINDOW = 600  # seconds: the default retry window of a step


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class WeeklyFreeze(StrictModel):
    """Every week on `days`, from `start` to `end` (UTC). `end` 00:00 means midnight at the day's end."""

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: time = time(0, 0)
    end: time = time(0, 0)
    reason: str = "weekly change freeze"

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("weekly times are UTC: write them without an offset, e.g. '16:00'")
        return value


class DatedFreeze(StrictModel):
    """A blackout between two instants, e.g. a holiday or a launch. Times without a zone are UTC."""

    start: datetime
    end: datetime
    reason: str = "change freeze"

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> DatedFreeze:
        if self.end <= self.start:
            raise ValueError(f"ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})")
        return self


class Freeze(StrictModel):
    weekly: tuple[WeeklyFreeze, ...] = ()
    dates: tuple[DatedFreeze, ...] = ()


class BreakGlass(StrictModel):
    """Emergency apply without prior approval, reviewed by the normal quorum afterwards."""

    allowed: bool = False
    review_within_seconds: int = Field(default=24 * 3600, gt=0, le=_YEAR)


class Policy(StrictModel):
    """One environment's rules, with the identities and groups they name (resolved from the file)."""

    environment: str = ""  # filled from the file's key
    required_approvals: int = Field(default=1, ge=0, description="distinct approvers; the requester never counts")
    quorum: dict[str, int] = Field(
        default_factory=dict, description="approvers needed per group, e.g. {dba: 1, owners: 1}"
    )
    require_signatures: bool = True
    approval_timeout_seconds: int = Field(default=24 * 3600, gt=0)
    decision_max_age_seconds: int = Field(default=3600, gt=0, description="longest validity of a signed decision")
    schedule_max_age_seconds: int = Field(
        default=_YEAR, gt=0, description="longest validity of a schedule's signed request (`opsctl schedule create`)"
    )
    max_deletions: int = Field(default=100, ge=0, description="blast radius: resources one run may delete")
    retry_window_seconds: int = Field(
        default=RETRY_WINDOW, ge=1, description="how long a step's transient failures are retried before review"
    )
    freeze: Freeze = Field(default_factory=Freeze)
    break_glass: BreakGlass = Field(default_factory=BreakGlass)
    # Filled from the file's top level: the public keys and group members this environment can use.
    identities: dict[str, str] = Field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def groups_of(self, identity: str) -> tuple[str, ...]:
        who = identity.casefold()
        return tuple(sorted(g for g, members in self.groups.items() if who in {m.casefold() for m in members}))

    def public_key(self, identity: str) -> str | None:
        who = identity.casefold()
        return next((key for name, key in self.identities.items() if name.casefold() == who), None)

    def describe_quorum(self) -> str:
        if not self.required_approvals:
            return "no approval required"
        groups = [f"{count} from {group}" for group, count in sorted(self.quorum.items())]
        rest = self.required_approvals - sum(self.quorum.values())
        if rest and groups:
            groups.append(f"{rest} more from anyone registered")
        people = "approver" if self.required_approvals == 1 else "approvers"
        detail = f" ({', '.join(groups)})" if groups else ""
        return f"{self.required_approvals} {people} other than the requester{detail}"


POLICY_PROBE = "OpsctlPolicy"  # the workflow type that asks a worker which policies it applies


class ServedPolicies(StrictModel):
    """The policies a worker applies, per environment it serves: what `opsctl policy show` prints."""

    source: str
    policies: dict[str, Policy]


def decode_public_key(text: str) -> bytes:
    """`ed25519:<base64>` → the key's 32 raw bytes, or ValueError saying what is wrong."""
    scheme, _, body = text.partition(":")
    if scheme != "ed25519" or not body:
        raise ValueError("a public key looks like 'ed25519:<base64>' (see `opsctl keys show`)")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the public key is not base64: {exc}") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return raw


class Identity(StrictModel):
    public_key: str

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        decode_public_key(value)
        return value


class EnvironmentRules(StrictModel):
    """An environment's entry in the policy file: Policy without the shared identities and groups."""

    required_approvals: int = Field(default=1, ge=0, le=50)
    quorum: dict[str, int] = Field(default_factory=dict)
    require_signatures: bool = True
    approval_timeout_seconds: int = Field(default=24 * 3600, gt=0, le=_YEAR)
    # opsctl signs for SIGNATURE_LIFETIME (10 minutes): a shorter limit would refuse every decision.
    decision_max_age_seconds: int = Field(default=3600, ge=SIGNATURE_LIFETIME, le=24 * 3600)
    # A schedule's request is signed once for all its runs: at most this long, then it is created again.
    schedule_max_age_seconds: int = Field(default=_YEAR, ge=24 * 3600, le=_YEAR)
    max_deletions: int = Field(default=100, ge=0)
    # Long enough to ride out a restart or a failover of PostgreSQL or AWS; then an operator decides.
    retry_window_seconds: int = Field(default=RETRY_WINDOW, ge=1, le=24 * 3600)
    freeze: Freeze = Field(default_factory=Freeze)
    break_glass: BreakGlass = Field(default_factory=BreakGlass)

    @field_validator("quorum")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [group for group, count in value.items() if count < 1]
        if bad:
            raise ValueError(f"each group needs at least 1 approver: {', '.join(bad)}")
        return value


class PolicySet(StrictModel):
    """A whole policy file: identities with their public keys, groups, and rules per environment."""

    api_version: str = Field(default="opsctl/v1", pattern=r"^opsctl/v1$")
    kind: str = Field(default=POLICY_FILE_KIND, pattern=f"^{POLICY_FILE_KIND}$")
    identities: dict[str, Identity] = Field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    environments: dict[str, EnvironmentRules] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PolicySet:
        problems = check_consistency(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def policy_for(self, environment: str) -> Policy | None:
        rules = self.environments.get(environment)
        if rules is None:
            return None
        return Policy(
            environment=environment,
            **rules.model_dump(),
            identities={name: identity.public_key for name, identity in self.identities.items()},
            groups=dict(self.groups),
        )


def check_consistency(policies: PolicySet) -> list[str]:
    """What makes a policy file unusable, each problem naming the entry at fault."""
    problems = []
    registered = {name.casefold() for name in policies.identities}
    if len(registered) < len(policies.identities):
        problems.append("identities: two names differ only in case; identities compare case-insensitively")
    owners: dict[bytes, str] = {}
    for name, identity in sorted(policies.identities.items()):
        if not re.match(IDENTITY_PATTERN, name):
            problems.append(f"identities: {name!r} is not a plain name (letters, digits, . _ @ -; at most 64)")
        key = decode_public_key(identity.public_key)  # the key itself: base64 spells one key several ways
        if key in owners:  # one person under two names would pass four-eyes alone
            problems.append(f"identities: {owners[key]} and {name} have the same public key; one key, one person")
        owners.setdefault(key, name)
    for group, members in sorted(policies.groups.items()):
        for member in members:
            if member.casefold() not in registered:
                problems.append(f"groups.{group}: {member} has no entry under identities (no public key)")
    for name, rules in sorted(policies.environments.items()):
        where = f"environments.{name}"
        for group, count in sorted(rules.quorum.items()):
            in_group = policies.groups.get(group)
            if in_group is None:
                problems.append(f"{where}.quorum: unknown group {group!r}")
            elif len(in_group) < count:
                problems.append(f"{where}.quorum: {group} needs {count} approvers but has {len(in_group)} members")
        if sum(rules.quorum.values()) > rules.required_approvals:
            problems.append(
                f"{where}: requiredApprovals is {rules.required_approvals}, "
                f"fewer than the quorum's groups need ({sum(rules.quorum.values())})"
            )
    return problems


_SHARED = {"requireSignatures": True, "decisionMaxAgeSeconds": 3600}
BUILT_IN_POLICIES = PolicySet.model_validate(
    {
        "environments": {
            "dev": {
                "requiredApprovals": 0,
                "requireSignatures": False,
                "approvalTimeoutSeconds": 3600,
                "maxDeletions": 20_000,
                "breakGlass": {"allowed": True, "reviewWithinSeconds": 7 * 24 * 3600},
            },
            "staging": {
                **_SHARED,
                "requiredApprovals": 1,
                "approvalTimeoutSeconds": 4 * 3600,
                "maxDeletions": 5_000,
                "breakGlass": {"allowed": True, "reviewWithinSeconds": 24 * 3600},
            },
            "prod": {
                **_SHARED,
                "requiredApprovals": 1,
                "approvalTimeoutSeconds": 24 * 3600,
                "maxDeletions": 500,
                "breakGlass": {"allowed": False},
            },
        }
    }
)


def policy_document(identities: dict[str, str], groups: dict[str, list[str]]) -> dict[str, Any]:
    """A policy file's content: the built-in rules, with these identities (name → public key) and groups."""
    return {
        "apiVersion": "opsctl/v1",
        "kind": POLICY_FILE_KIND,
        "identities": {name: {"publicKey": key} for name, key in identities.items()},
        "groups": groups,
        "environments": BUILT_IN_POLICIES.model_dump(mode="json", by_alias=True)["environments"],
    }


def parse_policy_file(text: str, source: str = "policy file") -> PolicySet:
    """Read and check a policy file (YAML or JSON), or raise DocumentError naming each problem."""
    data: dict[str, Any] = load_mapping(
        text, source, "a PolicySet mapping: identities, groups, environments", aliases=True
    )
    try:
        return PolicySet.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(f"{source}: {describe_validation_error(exc)}") from exc
