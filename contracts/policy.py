"""Per-environment policy and the approval judgement, as pure functions.

The workflow calls `judge_approval` for every signal; the same code is unit-tested
directly, so what the tests prove is what production decides.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment: str
    required_approvals: int = Field(ge=0)
    approval_timeout_seconds: int = Field(gt=0)
    allowed_approvers: tuple[str, ...] | None = None  # None: anyone but the requester
    max_deletions: int = Field(default=100, ge=0)  # blast radius: resources one run may delete


POLICIES: dict[str, Policy] = {
    "dev": Policy(environment="dev", required_approvals=0, approval_timeout_seconds=3600, max_deletions=20_000),
    "staging": Policy(
        environment="staging", required_approvals=1, approval_timeout_seconds=4 * 3600, max_deletions=5_000
    ),
    "prod": Policy(environment="prod", required_approvals=1, approval_timeout_seconds=24 * 3600, max_deletions=500),
}


def policy_for(environment: str) -> Policy | None:
    return POLICIES.get(environment)


class ApprovalVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    accepted: bool
    reason: str


def judge_approval(
    *,
    actor: str,
    plan_hash: str,
    requester: str,
    current_plan_hash: str,
    policy: Policy,
    approved_by: list[str],
    now: datetime,
    deadline: datetime,
) -> ApprovalVerdict:
    """Decide one approval attempt. Refusals say exactly why."""
    if now >= deadline:
        return ApprovalVerdict(accepted=False, reason=f"too late: the approval deadline was {deadline.isoformat()}")
    # Identities compare case-insensitively: "Alice" is alice.
    who, approved = actor.casefold(), {name.casefold() for name in approved_by}
    if who == requester.casefold():
        return ApprovalVerdict(accepted=False, reason="four-eyes: the requester cannot approve their own run")
    if policy.allowed_approvers is not None and who not in {name.casefold() for name in policy.allowed_approvers}:
        return ApprovalVerdict(accepted=False, reason=f"{actor} may not approve runs in {policy.environment}")
    if plan_hash != current_plan_hash:
        return ApprovalVerdict(
            accepted=False,
            reason=f"plan hash mismatch: you approved {plan_hash[:12]}…, the current plan is {current_plan_hash[:12]}…",
        )
    if who in approved:
        return ApprovalVerdict(accepted=False, reason=f"{actor} has already approved this plan")
    return ApprovalVerdict(accepted=True, reason="approved")
