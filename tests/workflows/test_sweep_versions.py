"""SweepStaleVolumes on the worker in both versions: one internal shape, v1 judged by its date.

Same-name fake activities on the time-skipping server. The deprecation date is enforced by
the workflow from the time the request reached Temporal, so these tests run on servers of
their own whose clocks they know: the shared one's has been skipped ahead by other tests'
timers, and must not be moved months on for theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.sweep_volumes import DeleteBatchInput, DeleteBatchResult, PlanSweepInput, VerifySweepInput
from contracts.failures import FailureKind
from contracts.kinds import SWEEP_V1_STOPS
from contracts.phases import Phase
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.request import Request, parse_request
from contracts.run import Check, RunInput, RunState
from tests.identities import policy_activities
from tests.workflows.conftest import time_skipping_server
from worker.converter import DATA_CONVERTER
from workflows.rotate_credential import RotateDbCredential
from workflows.sweep_volumes import SweepStaleVolumes

VOLUMES = ["vol-1", "vol-2", "vol-3"]
V1_SPEC = {"olderThanDays": 30, "keepTag": "retain", "tagFilters": {"team": "data"}, "batchSize": 2}
V2_SPEC = {"selector": {"olderThanDays": 30, "tags": {"team": "data"}, "excludeTags": ["retain"]}, "batchSize": 2}


class FakeSweep:
    """Records what each step was asked; every volume is there until its batch deletes it."""

    def __init__(self) -> None:
        self.planned: list[PlanSweepInput] = []
        self.batches: list[DeleteBatchInput] = []

    @activity.defn(name="sweep_volumes.plan")
    async def plan(self, input: PlanSweepInput) -> Plan:
        self.planned.append(input)
        step = PlannedAction(
            action=Action.DELETE,
            resource_type="ec2:volume",
            resource_id=f"{len(VOLUMES)} volumes",
            reason="stale",
            reversible=False,
            rollback=Rollback.NONE,
            resource_ids=VOLUMES,
        )
        return Plan(kind="SweepStaleVolumes", target="EBS volumes", actions=[step])

    @activity.defn(name="sweep_volumes.delete_batch")
    async def delete_batch(self, input: DeleteBatchInput) -> DeleteBatchResult:
        self.batches.append(input)
        return DeleteBatchResult(deleted=input.volume_ids)

    @activity.defn(name="sweep_volumes.remaining")
    async def remaining(self, input: VerifySweepInput) -> list[str]:
        return [] if self.batches and input.volume_ids == VOLUMES else input.volume_ids

    @activity.defn(name="sweep_volumes.verify")
    async def verify(self, input: VerifySweepInput) -> list[Check]:
        return [Check(name="candidates deleted", passed=True, detail="all gone")]

    @activity.defn(name="sweep_volumes.snapshots")
    async def snapshots(self, input: VerifySweepInput) -> int:
        return 0

    def activities(self) -> list[Any]:
        return [self.plan, self.delete_batch, self.remaining, self.verify, self.snapshots]


def request(api_version: str, spec: dict[str, Any], kind: str = "SweepStaleVolumes") -> Request:
    document = {"apiVersion": api_version, "kind": kind, "metadata": {"environment": "dev", "requester": "alice"}}
    return parse_request({**document, "spec": spec})


async def run(
    env: WorkflowEnvironment, fake: FakeSweep, input: RunInput, workflow: Any = SweepStaleVolumes
) -> RunState:
    queue = uuid.uuid4().hex
    activities = [*fake.activities(), policy_activities().resolve_policy]
    async with Worker(env.client, task_queue=queue, workflows=[workflow], activities=activities):
        result: RunState = await env.client.execute_workflow(
            workflow.run, input, id=f"wf-{uuid.uuid4().hex[:8]}", task_queue=queue, result_type=RunState
        )
    return result


STOPS = datetime.combine(SWEEP_V1_STOPS, datetime.min.time(), tzinfo=UTC)


@asynccontextmanager
async def server() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=time_skipping_server()
    ) as environment:
        yield environment


@pytest.fixture(scope="module")
async def before_the_date() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own, at today's date (before the v1 sweep's date)."""
    async with server() as environment:
        assert await environment.get_current_time() < STOPS - timedelta(days=1), "the tests predate v1's end"
        yield environment


@pytest.fixture(scope="module")
async def after_the_date() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own, its clock moved a day past the v1 sweep's date."""
    async with server() as environment:
        await environment.sleep(STOPS - await environment.get_current_time() + timedelta(days=1))
        assert await environment.get_current_time() > STOPS
        yield environment


async def test_a_v1_and_a_v2_sweep_of_the_same_volumes_ask_every_step_the_same(
    before_the_date: WorkflowEnvironment,
) -> None:
    """The workflow reads one shape: the v1 request is converted before it plans, exactly."""
    v1, v2 = FakeSweep(), FakeSweep()
    first = await run(before_the_date, v1, RunInput(request=request("opsctl/v1", V1_SPEC)))
    second = await run(before_the_date, v2, RunInput(request=request("opsctl/v2", V2_SPEC)))

    assert (Phase.SUCCEEDED, Phase.SUCCEEDED) == (first.phase, second.phase), (first.failure, second.failure)
    assert v1.planned == v2.planned
    assert ["retain"] == v1.planned[0].spec.selector.exclude_tags
    strip = {"workflow_id"}  # each run names itself
    assert [b.model_dump(exclude=strip) for b in v1.batches] == [b.model_dump(exclude=strip) for b in v2.batches]
    assert [("retain", ["retain"])] * 2 == [(b.keep_tag, b.exclude_tags) for b in v1.batches]
    assert first.plan_hash == second.plan_hash


async def test_a_v1_sweep_run_carries_the_deprecation_warning_a_v2_run_does_not(
    before_the_date: WorkflowEnvironment,
) -> None:
    first = await run(before_the_date, FakeSweep(), RunInput(request=request("opsctl/v1", V1_SPEC)))
    second = await run(before_the_date, FakeSweep(), RunInput(request=request("opsctl/v2", V2_SPEC)))
    deprecations = [w for w in first.warnings if "deprecated" in w]
    assert 1 == len(deprecations), first.warnings
    assert f"stops being accepted on {SWEEP_V1_STOPS:%Y-%m-%d}" in deprecations[0]
    assert [] == [w for w in second.warnings if "deprecated" in w]


async def test_v2_of_a_kind_without_it_is_refused_by_the_worker_before_planning(env: WorkflowEnvironment) -> None:
    """`temporal workflow start` can send any apiVersion the envelope allows; the kind's table decides."""
    rotation = request("opsctl/v1", {"database": "app", "role": "r", "secretId": "s"}, kind="RotateDbCredential")
    forged = rotation.model_copy(update={"api_version": "opsctl/v2"})
    result = await run(env, FakeSweep(), RunInput(request=forged), workflow=RotateDbCredential)
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.VALIDATION == result.failure.kind
    assert "RotateDbCredential has no version 'opsctl/v2'; its only version is opsctl/v1" in result.failure.message
    assert result.plan is None


async def test_after_its_date_a_v1_sweep_is_refused_by_the_worker_and_nothing_is_planned(
    after_the_date: WorkflowEnvironment,
) -> None:
    fake = FakeSweep()
    result = await run(after_the_date, fake, RunInput(request=request("opsctl/v1", V1_SPEC)))
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.VALIDATION == result.failure.kind
    assert f"stopped being accepted on {SWEEP_V1_STOPS:%Y-%m-%d}" in result.failure.message
    assert "opsctl convert -f DOC" in result.failure.message
    assert ([], []) == (fake.planned, fake.batches)


async def test_after_the_v1_date_the_same_sweep_as_v2_runs(after_the_date: WorkflowEnvironment) -> None:
    result = await run(after_the_date, FakeSweep(), RunInput(request=request("opsctl/v2", V2_SPEC)))
    assert Phase.SUCCEEDED == result.phase, result.failure
