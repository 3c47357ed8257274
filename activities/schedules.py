"""The worker's answer to "did this schedule really start this run?", read from Temporal itself.

A scheduled run's input names its schedule, and anyone who can start a workflow can copy
that input or set the `TemporalScheduledById` search attribute (the server accepts it from
any client). What a client cannot write is the schedule's own record of the runs it started
(`running_actions`, `recent_actions`: the scheduler writes them as it starts each one), nor
the schedule's spec as Temporal runs it. This local activity reads both, so the answer is
recorded in the run's history and the workflow judges it (`workflows.scheduled`).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import ScheduleActionExecutionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from contracts import search_attributes as sa
from contracts.run import SHORTEST_WORKFLOW_TIMEOUT_DAYS
from contracts.schedules import DRIFT_APPLY_SUFFIX, SCHEDULE_ID_PATTERN, describe_spec, is_drift_apply_of

# The scheduler records a run it started right after the start returns: give it this long to show.
LISTED_WITHIN = 10.0


class FindScheduleStartInput(BaseModel):
    schedule_id: str
    workflow_id: str  # the execution the schedule must have started: this run, or a drift apply's parent
    run_id: str
    open_applies: bool = False  # also list the drift applies of this schedule that are still open
    kind: str = ""  # the run's kind: an open apply must be a workflow of this type
    fire: bool = False  # a fire of the schedule (not a drift's apply): it must not run alongside another


class ScheduleStart(BaseModel):
    """What Temporal says about the schedule and the run: `started` is the one fact admission rests on."""

    started: bool
    reason: str = ""  # when not started: why, in words
    cadence: str = ""  # the schedule as Temporal holds it now, in opsctl's words (`describe_spec`)
    scheduled_at: datetime | None = None  # the fire's nominal time
    drift_attribute: bool = False  # the namespace has OpsctlDrift: the run may set it
    open_applies: list[str] = []  # drift applies of this schedule still running


def _action_refused(described: Any) -> str:
    """A schedule whose action sets a workflow timeout could kill an approved run in the middle of its apply."""
    action, shortest = described.schedule.action, timedelta(days=SHORTEST_WORKFLOW_TIMEOUT_DAYS)
    timeouts = [
        name
        for name in ("execution_timeout", "run_timeout")
        if getattr(action, name, None) and getattr(action, name) < shortest  # None or 0: none
    ]
    if timeouts:
        return f"the schedule's action sets {' and '.join(timeouts)}: a timeout could stop a run mid-apply"
    return ""


class ScheduleActivities:
    @activity.defn(name="opsctl.find_schedule_start")
    async def find_schedule_start(self, input: FindScheduleStartInput) -> ScheduleStart:
        if not re.match(SCHEDULE_ID_PATTERN, input.schedule_id):
            return ScheduleStart(started=False, reason=f"{input.schedule_id!r} is not a schedule id opsctl makes")
        handle = activity.client().get_schedule_handle(input.schedule_id)
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + LISTED_WITHIN, 0.1
        me = (input.workflow_id, input.run_id)
        while True:
            try:
                described = await handle.describe()
            except RPCError as exc:
                if exc.status is RPCStatusCode.NOT_FOUND:
                    return ScheduleStart(started=False, reason=f"there is no schedule {input.schedule_id}")
                raise  # transient: the local activity retries
            running = {
                (run.workflow_id, run.first_execution_run_id)
                for run in described.info.running_actions
                if isinstance(run, ScheduleActionExecutionStartWorkflow)
            }
            recent = {
                (result.action.workflow_id, result.action.first_execution_run_id): result.scheduled_at
                for result in described.info.recent_actions
                if isinstance(result.action, ScheduleActionExecutionStartWorkflow)
            }
            if me in running or me in recent:
                others = sorted(workflow_id for workflow_id, _ in running - {me})
                refused = _action_refused(described) or (
                    f"another run of schedule {input.schedule_id} is open ({others[0]}): its runs never overlap"
                    if input.fire and others
                    else ""
                )
                if refused:
                    return ScheduleStart(started=False, reason=refused)
                break
            if loop.time() >= deadline:
                return ScheduleStart(
                    started=False,
                    reason=f"schedule {input.schedule_id} did not start {input.workflow_id} "
                    "(it is not among the schedule's running or recent runs)",
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
        raw = described.raw_description.schedule
        cadence = describe_spec(
            MessageToDict(raw.spec, preserving_proto_field_name=True),
            MessageToDict(raw.policies, preserving_proto_field_name=True),
        )
        return ScheduleStart(
            started=True,
            cadence=cadence,
            scheduled_at=recent.get(me),
            drift_attribute=await self._knows_drift(),
            open_applies=await self._open_applies(input) if input.open_applies else [],
        )

    async def _knows_drift(self) -> bool:
        """Can runs set OpsctlDrift here? A namespace that lacks it refuses a query naming it (and an upsert)."""
        try:
            async for _ in activity.client().list_workflows(f"{sa.DRIFT} = true", limit=1):
                break
        except RPCError as exc:
            if exc.status is RPCStatusCode.INVALID_ARGUMENT:
                return False
            raise
        return True

    async def _open_applies(self, input: FindScheduleStartInput) -> list[str]:
        """Drift applies of this schedule still open: of its kind, children of one of its fires (the server
        sets a child's parent; an id that merely looks like an apply's proves nothing)."""
        query = f"WorkflowId STARTS_WITH '{input.schedule_id}-' AND ExecutionStatus = 'Running'"
        found = []
        async for execution in activity.client().list_workflows(query, limit=1000):
            parent = execution.parent_id or ""
            if (
                is_drift_apply_of(input.schedule_id, execution.id)
                and execution.workflow_type == input.kind
                and execution.id == f"{parent}{DRIFT_APPLY_SUFFIX}"
            ):
                found.append(execution.id)
        return sorted(found)
