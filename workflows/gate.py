"""The waits between plan and apply, and after an emergency: approval, freeze windows, review.

Each wait is durable (a timer or a condition in the run's history), shows in the run's
state what it waits for and until when, and ends the run through `Stop` when a person
rejects or cancels, or the deadline passes. Who may decide what is judged by the record.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

from workflows import waits
from workflows.ending import Ending, Stop
from workflows.run_record import RunRecord

with workflow.unsafe.imports_passed_through():
    from contracts.calendar import frozen_until
    from contracts.gate import still_needed
    from contracts.phases import Phase
    from contracts.policy import Policy
    from contracts.run import RunState


def _resubmit(state: RunState, fixed: bool = False) -> str:
    if fixed:
        return (
            "nothing was changed; fix the request and apply it with a new idempotencyKey "
            f"(`opsctl rerun {state.workflow_id}` submits it as it was)"
        )
    return f"nothing was changed; submit it again with `opsctl rerun {state.workflow_id}`"


def approval_timeout(record: RunRecord, policy: Policy) -> timedelta:
    """The policy's deadline, or the request's shorter one (a request never lengthens it)."""
    asked = record.state.request.metadata.approval_timeout_seconds
    limit = policy.approval_timeout_seconds
    return timedelta(seconds=min(asked, limit) if asked else limit)


async def await_approval(record: RunRecord, policy: Policy) -> None:
    """Until the quorum approves this plan; a reject, a cancel or the deadline ends the run."""
    state = record.state
    record.enter(Phase.AWAITING_APPROVAL)
    timeout = approval_timeout(record, policy)
    state.approval_deadline = workflow.now() + timeout

    def needs() -> str:
        approved = ", ".join(record.approvers())
        return (
            (f"approved by {approved}; " if approved else "")
            + f"needs {still_needed(policy, record.approvers())} (not {state.requester}): approve with "
            f"`opsctl approve {state.workflow_id} --plan-hash {state.plan_hash}`, or reject with "
            f"`opsctl reject {state.workflow_id} --reason …`"
        )

    record.explain = needs
    state.next_action = needs()
    record.changed()

    def decided() -> bool:
        return record.cancel_request is not None or record.rejected or record.approved

    try:
        await waits.condition(decided, timeout=timeout, timeout_summary="approval deadline")
    except TimeoutError:
        raise Stop(Ending(Phase.EXPIRED, next_action=_resubmit(state))) from None
    if record.cancel_request is not None:
        raise Stop(Ending(Phase.CANCELLED))
    if record.rejected:
        raise Stop(Ending(Phase.REJECTED, next_action=_resubmit(state, fixed=True)))


async def wait_for_window(record: RunRecord, policy: Policy) -> bool:
    """While the change calendar is frozen: wait (a timer) until it opens. True if it waited."""
    state, waited = record.state, False
    while (frozen := frozen_until(policy.freeze, workflow.now())) is not None:
        until, reason = frozen
        if not waited:
            record.enter(Phase.WAITING_FOR_WINDOW)
        waited = True
        state.frozen_until = until
        state.next_action = (
            f"waiting for the change freeze to end ({reason}) at {until:%Y-%m-%d %H:%M} UTC; the plan is "
            f"checked again then. Cancel with `opsctl cancel {state.workflow_id}`"
        )
        record.changed()
        try:
            await waits.condition(
                lambda: record.cancel_request is not None,
                timeout=until - workflow.now(),
                timeout_summary="wait for freeze window to end",
            )
        except TimeoutError:
            continue
        raise Stop(Ending(Phase.CANCELLED))
    state.frozen_until = None
    return waited


async def post_incident_review(record: RunRecord, policy: Policy, outcome: Phase) -> None:
    """An emergency changed things: hold the run open until the normal quorum has reviewed it."""
    state = record.state
    state.outcome = outcome
    record.enter(Phase.AWAITING_REVIEW)
    state.review_deadline = workflow.now() + timedelta(seconds=policy.break_glass.review_within_seconds)
    deadline = state.review_deadline
    approve = f"`opsctl approve {state.workflow_id} --plan-hash {state.plan_hash}`"

    def needs() -> str:
        return (
            f"post-incident review: the emergency apply needs {still_needed(policy, record.approvers())} "
            f"by {deadline:%Y-%m-%d %H:%M} UTC: {approve}"
        )

    record.explain = needs
    state.next_action = needs()
    record.changed()
    while not record.approved:
        try:
            if state.phase is Phase.AWAITING_REVIEW:
                timeout = deadline - workflow.now()
                await waits.condition(lambda: record.approved, timeout=timeout, timeout_summary="review deadline")
            else:
                await waits.condition(lambda: record.approved)
        except TimeoutError:
            record.enter(Phase.REVIEW_OVERDUE)
            passed = f"the post-incident review deadline passed at {deadline:%Y-%m-%d %H:%M} UTC"
            record.warn(passed)

            def overdue(passed: str = passed) -> str:
                return f"{passed}; it still needs {still_needed(policy, record.approvers())}: {approve}"

            record.explain = overdue
            state.next_action = overdue()
            record.changed()
        except asyncio.CancelledError:
            # The changes are applied: a cancel cannot undo them, nor dismiss their review.
            record.warn("a cancel request arrived during the post-incident review: the review stays open")
    reviewers = ", ".join(record.approvers())
    record.warn(f"emergency apply reviewed by {reviewers}")
