"""The approval gate's judgement, as pure functions: identity, four-eyes, plan hash, quorum.

The workflow judges every decision with these (on signals and updates alike) and keeps
every attempt with its reason; the unit tests call them directly, so what the tests prove
is what production decides. Identities compare case-insensitively: "Alice" is alice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from contracts.policy import Policy
from contracts.signing import verify

ANYONE = "*"  # a quorum slot any eligible approver may fill


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    accepted: bool
    reason: str
    signed: bool = False


def refuse(reason: str, signed: bool = False) -> Verdict:
    return Verdict(accepted=False, reason=reason, signed=signed)


def check_identity(
    policy: Policy,
    *,
    actor: str,
    payload: bytes,
    signature: str,
    attempt_id: str,
    expires_at: int,
    now: datetime,
    seen_attempts: set[str],
    max_age_seconds: int | None = None,
) -> Verdict:
    """Is this decision really `actor`'s, fresh and used once? Accepted means: judge what it decides.

    `max_age_seconds`: how far ahead its expiry may lie (default: the policy's decisionMaxAgeSeconds).
    """
    if attempt_id and attempt_id in seen_attempts:
        return refuse(f"replayed: attempt {attempt_id} was used before and counts once")
    if not signature:
        if policy.require_signatures:
            return refuse(
                f"unsigned: {policy.environment} requires signed decisions "
                "(opsctl signs them with your key: `opsctl keys init`, then register `opsctl keys show`)"
            )
        return Verdict(accepted=True, reason="unsigned (allowed in this environment)")
    if not attempt_id:
        return refuse("a signed decision needs a unique attemptId")
    key = policy.public_key(actor)
    if key is None:
        return refuse(f"{actor} has no registered public key in the {policy.environment} policy")
    # Whole seconds, compared as numbers: any integer a caller sends is judged, none can crash the judge.
    left = expires_at - int(now.timestamp())
    if left <= 0:
        return refuse(f"expired: the signature's validity ended {-left} s before it was judged; sign it again")
    longest = policy.decision_max_age_seconds if max_age_seconds is None else max_age_seconds
    if left > longest:
        return refuse(f"the signature's expiry is too far ahead: at most {longest} s")
    if not verify(key, payload, signature):
        other = next((name for name, k in policy.identities.items() if k != key and verify(k, payload, signature)), "")
        if other:
            return refuse(f"signed with {other}'s key, not {actor}'s")
        return refuse(f"invalid signature: it does not verify with {actor}'s registered key")
    return Verdict(accepted=True, reason="signature verified", signed=True)


def _eligible(policy: Policy, actor: str, slot: str) -> bool:
    if slot == ANYONE:
        return not policy.require_signatures or policy.public_key(actor) is not None
    return slot in policy.groups_of(actor)


def _slots(policy: Policy) -> list[str]:
    named = [group for group, count in sorted(policy.quorum.items()) for _ in range(count)]
    return named + [ANYONE] * max(0, policy.required_approvals - len(named))


def _matching(policy: Policy, approvers: Sequence[str]) -> dict[int, str]:
    """A largest assignment of approvers to quorum slots (each fills one): slot index → approver."""
    slots = _slots(policy)
    owner: dict[int, str] = {}

    def place(approver: str, tried: set[int]) -> bool:
        for index, slot in enumerate(slots):
            if index in tried or not _eligible(policy, approver, slot):
                continue
            tried.add(index)
            if index not in owner or place(owner[index], tried):
                owner[index] = approver
                return True
        return False

    for approver in approvers:
        place(approver, set())
    return owner


def quorum_met(policy: Policy, approvers: Sequence[str]) -> bool:
    return len(_matching(policy, approvers)) >= policy.required_approvals


def still_needed(policy: Policy, approvers: Sequence[str]) -> str:
    """What the quorum still lacks, in words: '1 from owners', '1 more approver', or ''."""
    slots, filled = _slots(policy), _matching(policy, approvers)
    open_slots = [slot for index, slot in enumerate(slots) if index not in filled]
    named = sorted({slot for slot in open_slots if slot != ANYONE})
    parts = [f"{open_slots.count(group)} from {group}" for group in named]
    anyone = open_slots.count(ANYONE)
    if anyone:
        parts.append(f"{anyone} more approver" + ("s" if anyone > 1 else ""))
    return ", ".join(parts)


def judge_approval(
    policy: Policy,
    *,
    actor: str,
    plan_hash: str,
    current_plan_hash: str,
    requester: str,
    approved_by: Sequence[str],
    now: datetime,
    deadline: datetime | None,
) -> Verdict:
    """Does this (identity-checked) approval count towards the quorum of this exact plan?"""
    who = actor.casefold()
    if deadline is not None and now >= deadline:
        return refuse(f"too late: the approval deadline was {deadline:%Y-%m-%d %H:%M:%S} UTC")
    if who == requester.casefold():
        return refuse("four-eyes: the requester cannot approve their own run")
    if plan_hash != current_plan_hash:
        return refuse(
            f"plan hash mismatch: you approved {plan_hash[:12] or 'nothing'}…, the current plan is "
            f"{current_plan_hash[:12]}…"
        )
    if who in {name.casefold() for name in approved_by}:
        return refuse(f"{actor} has already approved this plan")
    if len(_matching(policy, [*approved_by, actor])) <= len(_matching(policy, approved_by)):
        groups = ", ".join(policy.groups_of(actor)) or "no group"
        needed = still_needed(policy, approved_by) or "nothing more"
        return refuse(f"does not count towards the quorum: it needs {needed}; {actor} is in {groups}")
    return Verdict(accepted=True, reason="approved")


def judge_resolution(policy: Policy, *, actor: str, resolution: str, requester: str) -> Verdict:
    """needs_review: a retry anyone may ask; marking done or aborting is a judgement a second person makes.

    Where approvals are required, that person must also be one who could approve the run.
    """
    done = RESOLVED[resolution]
    if resolution == "retry" or policy.required_approvals == 0:
        return Verdict(accepted=True, reason=done)
    what = resolution.replace("_", " ")
    if actor.casefold() == requester.casefold():
        return refuse(
            f"four-eyes: {what} decides an unverified outcome in {policy.environment}; "
            f"someone other than the requester ({requester}) must resolve it"
        )
    if not any(_eligible(policy, actor, slot) for slot in set(_slots(policy))):
        return refuse(f"{actor} could not approve runs in {policy.environment}, so cannot {what} one either")
    return Verdict(accepted=True, reason=done)


RESOLVED = {
    "retry": "retry: the step runs again",
    "mark_done": "marked done: the run ends as succeeded",
    "abort": "aborted: the run stops here",
}


def judge_request(
    policy: Policy,
    *,
    requester: str,
    payload: bytes,
    signature: str,
    attempt_id: str,
    expires_at: int,
    emergency: str,
    now: datetime,
    max_age_seconds: int | None = None,
) -> Verdict:
    """May this request start here? Its signature names the requester; break-glass needs the policy's leave.

    `max_age_seconds`: a schedule's request is signed for longer (the policy's scheduleMaxAgeSeconds).
    """
    identity = check_identity(
        policy,
        actor=requester,
        payload=payload,
        signature=signature,
        attempt_id=attempt_id,
        expires_at=expires_at,
        now=now,
        seen_attempts=set(),
        max_age_seconds=max_age_seconds,
    )
    if not identity.accepted:
        return identity.model_copy(update={"reason": f"the request's signature: {identity.reason}"})
    if emergency and not policy.break_glass.allowed:
        return refuse(f"break-glass is not allowed in {policy.environment}: the run needs approval", identity.signed)
    return identity
