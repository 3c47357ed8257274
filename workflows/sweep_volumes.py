"""SweepStaleVolumes: delete stale EBS volumes in bounded batches, continuing as new when large.

The approved plan lists every candidate. Apply walks it in batches of `batch_size` (one
step each, bounded concurrency inside); between batches the run continues as new once
its history grows, carrying where it stopped, so 10,000 volumes stay far below
Temporal's history limits.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

from workflows.lifecycle import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities.sweep_volumes import (
        DeleteBatchInput,
        PlanSweepInput,
        SweepVolumesActivities,
        VerifySweepInput,
    )
    from contracts.plan import Action, Plan
    from contracts.run import Check, Resource, RunInput, RunState
    from contracts.sweep_volumes import SweepStaleVolumesSpec
    from contracts.words import plural

PLAN_TIMEOUT = timedelta(minutes=5)  # paginating through tens of thousands of volumes
BATCH_TIMEOUT = timedelta(minutes=10)
# Runs started before batches were looked at first replay without that look.
LOOK_BEFORE_DELETING = "sweep-looks-at-each-batch-before-deleting"
COUNT_SNAPSHOTS_ON_COMPENSATION = "sweep-counts-snapshots-on-compensation"


def candidates(plan: Plan) -> list[str]:
    return [volume for step in plan.actions if step.action is Action.DELETE for volume in step.resource_ids]


def batch_step(start: int, batch_size: int, total: int) -> str:
    """The name of the apply step that deletes the batch starting at `start` (0-based)."""
    return f"delete volumes {start + 1:,}-{min(start + batch_size, total):,} of {total:,}"


class SweepApplied(BaseModel):
    """How far the sweep got: carried across continue-as-new, read by verify and compensate."""

    next: int = 0  # index in the candidate list where the next batch starts
    skipped: dict[str, str] = {}  # volume → why it was not deleted
    snapshots: int = 0


@workflow.defn(name="SweepStaleVolumes")
class SweepStaleVolumes(Lifecycle[SweepStaleVolumesSpec, SweepApplied]):
    spec_model = SweepStaleVolumesSpec
    applied_model = SweepApplied

    @workflow.run
    async def run(self, input: RunInput) -> RunState:
        return await self.run_lifecycle(input)

    async def plan(self, spec: SweepStaleVolumesSpec) -> Plan:
        return await self.probe(SweepVolumesActivities.plan, PlanSweepInput(spec=spec), timeout=PLAN_TIMEOUT)

    def apply_steps(self, spec: SweepStaleVolumesSpec, plan: Plan) -> list[str]:
        volumes = candidates(plan)
        return [batch_step(start, spec.batch_size, len(volumes)) for start in range(0, len(volumes), spec.batch_size)]

    async def apply(self, spec: SweepStaleVolumesSpec, plan: Plan, applied: SweepApplied) -> SweepApplied:
        volumes = candidates(plan)
        for start in range(0, len(volumes), spec.batch_size):
            if start < applied.next:
                continue
            batch = volumes[start : start + spec.batch_size]
            present = await self.look_at(batch) if workflow.patched(LOOK_BEFORE_DELETING) else None
            result = await self.step(
                batch_step(start, spec.batch_size, len(volumes)),
                SweepVolumesActivities.delete_batch,
                DeleteBatchInput(
                    workflow_id=workflow.info().workflow_id,
                    volume_ids=batch,
                    snapshot_first=spec.snapshot_first,
                    concurrency=spec.concurrency,
                    keep_tag=spec.selector.exclude_tags[0],
                    exclude_tags=spec.selector.exclude_tags,
                    present=present,
                ),
                timeout=BATCH_TIMEOUT,
                cancellable=True,
            )
            applied.skipped.update(result.skipped)
            applied.snapshots += result.snapshots
            self.record_change(
                Resource(
                    resource_type="ec2:volume",
                    resource_id=f"{batch[0]}…{batch[-1]}",
                    detail=f"{len(result.deleted)} deleted, {len(result.already_gone)} already gone, "
                    f"{len(result.skipped)} skipped"
                    + (f", {result.snapshots} snapshots" if spec.snapshot_first else ""),
                )
            )
            applied.next = start + len(batch)
            await self.continue_as_new_if_due(applied)
        for volume, reason in sorted(applied.skipped.items()):
            self.warn(f"{volume} {reason}")
        return applied

    async def look_at(self, batch: list[str]) -> list[str]:
        """The batch's volumes that exist before its step begins: what its deletions are counted against."""
        survey = VerifySweepInput(workflow_id=workflow.info().workflow_id, volume_ids=batch, expected_snapshots=0)
        return await self.probe(SweepVolumesActivities.remaining, survey, step="look at the batch before deleting")

    async def verify(self, spec: SweepStaleVolumesSpec, applied: SweepApplied) -> list[Check]:
        plan = self.state().plan
        assert plan is not None
        gone = [volume for volume in candidates(plan) if volume not in applied.skipped]
        return await self.probe(
            SweepVolumesActivities.verify,
            VerifySweepInput(
                workflow_id=workflow.info().workflow_id, volume_ids=gone, expected_snapshots=applied.snapshots
            ),
            step="verify",
            timeout=PLAN_TIMEOUT,
        )

    async def compensate(self, spec: SweepStaleVolumesSpec, applied: SweepApplied) -> bool:
        # Deleted volumes cannot be undeleted; with snapshot_first they can be restored by hand.
        # Counted by looking, not from the batches that finished: a cancel may stop one half-way.
        plan = self.state().plan
        assert plan is not None
        planned = [volume for volume in candidates(plan) if volume not in applied.skipped]
        survey = VerifySweepInput(workflow_id=workflow.info().workflow_id, volume_ids=planned, expected_snapshots=0)
        remaining = await self.probe(SweepVolumesActivities.remaining, survey, step="count what was deleted")
        gone = len(planned) - len(remaining)
        where = f"snapshots tagged opsctl:run={workflow.info().workflow_id}" if spec.snapshot_first else "no snapshots"
        if spec.snapshot_first and workflow.patched(COUNT_SNAPSHOTS_ON_COMPENSATION):
            deleted = VerifySweepInput(
                workflow_id=workflow.info().workflow_id,
                volume_ids=sorted(set(planned) - set(remaining)),
                expected_snapshots=0,
            )
            taken = await self.probe(SweepVolumesActivities.snapshots, deleted, step="count the snapshots taken")
            where = f"{plural(taken, 'snapshot')} tagged opsctl:run={workflow.info().workflow_id}"
        self.warn(
            f"not undone: {plural(gone, 'volume')} of the {len(planned):,} planned for deletion are gone and "
            f"stay deleted ({where}); {len(remaining):,} remain"
        )
        return False


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
