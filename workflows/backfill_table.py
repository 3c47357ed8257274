"""BackfillTable: a reviewed, throttled, resumable batched UPDATE over one table's key range.

The plan pins the key range and the number of matching rows; apply is one long step
that walks that range batch by batch and commits its checkpoint with each batch, so a
killed worker's retry resumes after the last committed batch and counts each row once.
Verify proves no row matches the predicate.
"""

from __future__ import annotations

import math
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

from workflows.lifecycle import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities.backfill_table import (
        BackfillActivities,
        BackfillInput,
        BackfillResult,
        PlanBackfillInput,
        VerifyBackfillInput,
    )
    from contracts.backfill_table import BackfillTableSpec
    from contracts.plan import Plan
    from contracts.run import Check, Resource, RunInput, RunState
    from contracts.words import plural

PLAN_TIMEOUT = timedelta(minutes=5)  # counting the matching rows scans them once
# Runs that compensated before the count was read from the progress table replay without it.
COUNT_ON_COMPENSATION = "backfill-counts-committed-rows-on-compensation"


def observed(plan: Plan) -> dict[str, str]:
    """Every fact the plan observed (matching rows, the key's type and range), from all its actions."""
    return {key: value for step in plan.actions for key, value in step.observed.items()}


def backfill_timeout(spec: BackfillTableSpec, rows: int) -> timedelta:
    """Twice the throttled duration, plus slack and the longest guard pause.

    Running out is not fatal: a timed-out attempt is retried and resumes from its checkpoint.
    """
    seconds = 2 * math.ceil(rows / spec.max_rows_per_second) + 600
    if spec.guard:
        seconds += spec.guard.max_pause_seconds
    return timedelta(seconds=seconds)


class BackfillApplied(BaseModel):
    """The key range the backfill walked: what verify proves no row in it still matches."""

    key_type: str = ""
    key_min: str = ""
    key_max: str = ""


@workflow.defn(name="BackfillTable")
class BackfillTable(Lifecycle[BackfillTableSpec, BackfillApplied]):
    spec_model = BackfillTableSpec
    applied_model = BackfillApplied

    @workflow.run
    async def run(self, input: RunInput) -> RunState:
        return await self.run_lifecycle(input)

    async def plan(self, spec: BackfillTableSpec) -> Plan:
        return await self.probe(BackfillActivities.plan, PlanBackfillInput(spec=spec), timeout=PLAN_TIMEOUT)

    def apply_steps(self, spec: BackfillTableSpec, plan: Plan) -> list[str]:
        rows = int(observed(plan)["matching_rows"])
        return [f"backfill {plural(rows, 'row')} in batches of {spec.batch_size:,}"]

    async def apply(self, spec: BackfillTableSpec, plan: Plan, applied: BackfillApplied) -> BackfillApplied:
        facts = observed(plan)
        rows = int(facts["matching_rows"])
        applied.key_type, applied.key_min, applied.key_max = facts["key_type"], facts["key_min"], facts["key_max"]
        # Recorded as the step starts: once a batch commits the table has changed, so a failure
        # from there on is reported as a partial application, never as "nothing changed".
        table = Resource(
            resource_type="postgres:table",
            resource_id=f"{spec.database}/{spec.table}",
            detail=f"backfill of {spec.set_column} started over {plural(rows, 'row')}",
        )
        (backfill,) = self.apply_steps(spec, plan)
        result: BackfillResult = await self.step(
            backfill,
            BackfillActivities.backfill,
            BackfillInput(
                workflow_id=workflow.info().workflow_id,
                spec=spec,
                key_type=facts["key_type"],
                key_min=facts["key_min"],
                key_max=facts["key_max"],
                estimated_rows=rows,
            ),
            timeout=backfill_timeout(spec, rows),
            cancellable=True,
            changes=table,
        )
        table.external_id = f"{spec.key_column} ≤ {result.checkpoint}"
        table.detail = describe(spec, result)
        return applied

    async def verify(self, spec: BackfillTableSpec, applied: BackfillApplied) -> list[Check]:
        key_range = VerifyBackfillInput(spec=spec, **applied.model_dump())
        return await self.probe(BackfillActivities.verify, key_range, step="verify", timeout=PLAN_TIMEOUT)

    async def compensate(self, spec: BackfillTableSpec, applied: BackfillApplied) -> bool:
        # The overwritten values were not kept: committed batches stand. Counted from the progress
        # table, which each batch moves in its own transaction: a cancel or a failure mid-range
        # reports exactly what stands.
        if not workflow.patched(COUNT_ON_COMPENSATION):
            self.warn(f"not undone: rows of {spec.table} already backfilled keep their new {spec.set_column}")
            return False
        committed = BackfillInput(
            workflow_id=workflow.info().workflow_id, spec=spec, estimated_rows=0, **applied.model_dump()
        )
        rows = await self.probe(BackfillActivities.progress, committed, step="count what was backfilled")
        self.warn(
            f"not undone: {plural(rows, 'row')} of {spec.table} already backfilled keep their new {spec.set_column}"
        )
        return False


def describe(spec: BackfillTableSpec, result: BackfillResult) -> str:
    parts = [f"{spec.set_column} set on {plural(result.rows_updated, 'row')}"]
    if result.resumed_from is not None:
        batches = plural(result.batches_this_attempt, "batch", "batches")
        parts.append(
            f"attempt {result.attempt} resumed after {spec.key_column} {result.resumed_from} "
            f"and updated {plural(result.rows_this_attempt, 'row')} in {batches}"
        )
    if result.paused_seconds >= 1:
        parts.append(f"paused {result.paused_seconds:.0f}s for the guard")
    return "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
