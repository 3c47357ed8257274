"""Runs a schedule starts: admission believes a schedule's signature only for runs that schedule started,
and a scheduled dry run is drift detection.

A schedule's input carries the requester's signature over a `ScheduleGrant` (schedule id,
cadence, what to do on drift), not over one workflow id: Temporal names each fire itself.
So the signature alone would let anyone who copies the input start it by hand. Admission
therefore asks the worker what Temporal records (`activities.schedules`): the schedule must
list this execution among the runs it started, and must still run at the cadence that was
signed. A drift's apply is a child of the dry run that found the drift: the server sets a
child's parent, no client can, and the parent must be a run the schedule started.
Everything else — policy, four-eyes, approvals, freeze windows — is the same as for any run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, FailureError, WorkflowAlreadyStartedError

from workflows.ending import stop

with workflow.unsafe.imports_passed_through():
    from activities.schedules import FindScheduleStartInput, ScheduleActivities, ScheduleStart
    from contracts import markdown
    from contracts import search_attributes as sa
    from contracts.failures import FailureKind
    from contracts.plan import Action, Plan
    from contracts.run import Mode, RunInput, RunState
    from contracts.schedules import DRIFT_APPLY_SUFFIX, OnDrift, ScheduledRun
    from contracts.words import plural

# Runs before schedules never carried one, so no older history reaches this code; the patch marks it.
SCHEDULED_RUNS = "opsctl-scheduled-runs"
FIND_TIMEOUT = timedelta(seconds=30)  # the activity waits up to 10 s for the scheduler to list the run
FIND_RETRY = RetryPolicy(maximum_attempts=3)  # a server blip; an answer it cannot get is a refusal


async def find_start(input: RunInput) -> ScheduleStart:
    """What Temporal says about this run's schedule: did it start this run (or, for a drift's apply, its parent)?"""
    grant, info = input.schedule, workflow.info()
    assert grant is not None, "only a scheduled run asks"
    parent = info.parent
    workflow_id, run_id = (parent.workflow_id, parent.run_id) if parent else (info.workflow_id, info.run_id)
    submits = parent is None and input.mode is Mode.DRY_RUN and grant.on_drift is OnDrift.SUBMIT
    try:
        return await workflow.execute_local_activity_method(
            ScheduleActivities.find_schedule_start,
            FindScheduleStartInput(
                schedule_id=grant.schedule_id,
                workflow_id=workflow_id,
                run_id=run_id,
                open_applies=submits,
                kind=input.request.kind,
                fire=parent is None,
            ),
            start_to_close_timeout=FIND_TIMEOUT,
            retry_policy=FIND_RETRY,
            summary="check that the schedule started this run",
        )
    except FailureError as err:  # fail closed: a run whose start nobody could confirm is not the schedule's
        cause = err.cause if isinstance(err, ActivityError) and err.cause else err
        return ScheduleStart(started=False, reason=f"the worker could not ask Temporal ({cause})")


def admit(input: RunInput, state: RunState, started: ScheduleStart) -> tuple[str, RunInput]:
    """What the requester's signature names (the schedule) and the input as they signed it; `Stop` unless
    the schedule really started this run and still runs as signed."""
    grant, info = input.schedule, workflow.info()
    assert grant is not None, "only a scheduled run is admitted here"
    if input.emergency:
        raise stop(FailureKind.VALIDATION, "a schedule's runs are never emergencies (break-glass is for people)")
    if not started.started:
        raise stop(
            FailureKind.POLICY_DENIED,
            f"the input names schedule {grant.schedule_id}, but {started.reason}: a schedule's signed request "
            "counts only for the runs that schedule starts",
        )
    if started.cadence != grant.cadence:
        raise stop(
            FailureKind.POLICY_DENIED,
            f"schedule {grant.schedule_id} now runs {started.cadence}, but its request was signed for "
            f"{grant.cadence}: someone changed the schedule; delete it and create it again",
        )
    signed, drift_of = input, ""
    parent = info.parent
    if parent is not None:  # started by a workflow, not by the schedule: only a drift's apply is
        if not (
            input.mode is Mode.APPLY
            and grant.on_drift is OnDrift.SUBMIT
            and info.workflow_id == f"{parent.workflow_id}{DRIFT_APPLY_SUFFIX}"
        ):
            raise stop(
                FailureKind.POLICY_DENIED,
                f"only a dry run of schedule {grant.schedule_id} that found drift starts its apply, and only when "
                "the schedule was created with --on-drift submit",
            )
        signed, drift_of = input.model_copy(update={"mode": Mode.DRY_RUN}), parent.workflow_id
    state.scheduled = ScheduledRun(
        schedule_id=grant.schedule_id,
        cadence=grant.cadence,
        on_drift=grant.on_drift,
        scheduled_at=started.scheduled_at,
        drift_of=drift_of,
    )
    return grant.scope, signed


async def record_drift(
    input: RunInput,
    state: RunState,
    plan: Plan,
    started: ScheduleStart,
    publish: Callable[[dict[str, Any]], None],
    warn: Callable[[str], None],
    submit: bool = True,
) -> str:
    """A scheduled dry run's plan, read as drift: mark it, submit the apply if the schedule asks. The next action.

    `submit=False`: a plan the policy refused (too many deletions) is drift too, but its apply would be refused.
    """
    grant, scheduled = input.schedule, state.scheduled
    assert grant is not None, "a scheduled run"
    assert scheduled is not None, "admitted as a scheduled run"
    scheduled.drift = plan.has_changes
    if started.drift_attribute:
        publish({sa.DRIFT: plan.has_changes})
    else:
        warn(f"this namespace has no {sa.DRIFT} search attribute: the drift is in this run's record only")
    if not plan.has_changes:
        return "no drift: the target is as the request asks"
    changes = sum(step.count for step in plan.actions if step.action is not Action.NOOP)
    found = f"drift: the plan has {plural(changes, 'change')}"
    if grant.on_drift is OnDrift.RECORD or not submit:
        return f"{found}; review it (`opsctl result {state.workflow_id}`), then apply it with `opsctl apply -f DOC`"
    if started.open_applies:
        scheduled.submitted = started.open_applies[0]
        return f"{found}; apply run {scheduled.submitted}, submitted by an earlier check, is still open"
    scheduled.submitted = await _submit_apply(input)
    if not scheduled.submitted:
        return (
            f"{found}; nothing submitted: an execution named {workflow.info().workflow_id}{DRIFT_APPLY_SUFFIX} "
            "exists that this check did not start — look at it before applying anything"
        )
    return (
        f"{found}; apply run {scheduled.submitted} is submitted, as the schedule asks, and goes through "
        f"{state.environment}'s approval like any apply: `opsctl status {scheduled.submitted}`"
    )


async def _submit_apply(input: RunInput) -> str:
    """Start the apply as a child that outlives this dry run: requested (and signed) by the schedule's requester."""
    info = workflow.info()
    run_id = f"{info.workflow_id}{DRIFT_APPLY_SUFFIX}"
    apply = RunInput(request=input.request, mode=Mode.APPLY, signature=input.signature, schedule=input.schedule)
    try:
        await workflow.start_child_workflow(
            input.request.kind,
            apply,
            id=run_id,
            task_queue=info.task_queue,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=markdown.summary(input.request),
            static_details=markdown.request_details(input.request),
        )
    except WorkflowAlreadyStartedError:  # this check starts it once: an execution of that id is someone else's
        return ""
    return run_id
