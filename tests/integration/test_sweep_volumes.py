"""SweepStaleVolumes on the real stack: moto's EC2 endpoint, the Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.sweep_volumes import DeleteBatchInput, SweepVolumesActivities
from client.devstack import Stack
from contracts.failures import ExitCode
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Mode, RunInput, RunState
from tests.identities import policies, policy_activities
from worker.main import activity_methods
from worker.settings import WorkerSettings
from workflows.sweep_volumes import SweepStaleVolumes


@contextlib.asynccontextmanager
async def sweep_worker(client: Client, worker_settings: WorkerSettings, **policy: Any) -> AsyncIterator[str]:
    """A sweep worker on a fresh queue; `policy` passes worker-side settings (policy set, history limit)."""
    queue = f"sweep-{uuid.uuid4().hex[:6]}"
    sweep = SweepVolumesActivities(worker_settings.aws)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[SweepStaleVolumes],
        activities=[*activity_methods(sweep), policy_activities(**policy).resolve_policy],
    ):
        yield queue


@pytest.fixture
async def sweep_queue(client: Client, worker_settings: WorkerSettings) -> AsyncIterator[str]:
    async with sweep_worker(client, worker_settings) as queue:
        yield queue


def ec2(stack: Stack) -> Any:
    return boto3.client("ec2", endpoint_url=stack.aws_endpoint, region_name="us-east-1")


def make_volumes(stack: Stack, scope: str, count: int, **extra_tags: str) -> list[str]:
    tags = [{"Key": "sweep-test", "Value": scope}, *({"Key": k, "Value": v} for k, v in extra_tags.items())]
    client = ec2(stack)
    return [
        client.create_volume(
            AvailabilityZone="us-east-1a", Size=1, TagSpecifications=[{"ResourceType": "volume", "Tags": tags}]
        )["VolumeId"]
        for _ in range(count)
    ]


def existing(stack: Stack, scope: str) -> set[str]:
    found = ec2(stack).describe_volumes(Filters=[{"Name": "tag:sweep-test", "Values": [scope]}])["Volumes"]
    return {volume["VolumeId"] for volume in found}


def sweep_input(scope: str, **spec: Any) -> RunInput:
    request = parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "SweepStaleVolumes",
            "metadata": {"environment": "dev", "requester": "alice", "idempotencyKey": scope},
            "spec": {"olderThanDays": 0, "tagFilters": {"sweep-test": scope}, **spec},
        }
    )
    return RunInput(request=request, mode=Mode.APPLY)


async def run(client: Client, queue: str, input: RunInput) -> RunState:
    return await client.execute_workflow(
        SweepStaleVolumes.run, input, id=input.request.workflow_id(), task_queue=queue, result_type=RunState
    )


async def test_the_plan_lists_every_candidate_and_every_skip_with_its_reason(
    stack: Stack, client: Client, sweep_queue: str
) -> None:
    scope = uuid.uuid4().hex[:8]
    stale = make_volumes(stack, scope, 3)
    kept = make_volumes(stack, scope, 1, keep="yes")
    dry = sweep_input(scope).model_copy(update={"mode": Mode.DRY_RUN})
    result = await run(client, sweep_queue, dry)

    assert result.plan is not None
    groups = {step.reason: step.resource_ids for step in result.plan.actions}
    assert Phase.PLANNED == result.phase
    assert sorted(stale) == groups["available, created more than 0 days ago, no 'keep' tag"]
    assert kept == groups["skipped: has the 'keep' tag"]
    assert ExitCode.CHANGES_PENDING == result.exit_code()
    assert set(stale + kept) == existing(stack, scope), "a dry run deletes nothing"


async def test_young_volumes_are_skipped_and_nothing_is_deleted(stack: Stack, client: Client, sweep_queue: str) -> None:
    scope = uuid.uuid4().hex[:8]
    young = make_volumes(stack, scope, 2)
    result = await run(client, sweep_queue, sweep_input(scope, olderThanDays=1))
    assert Phase.NO_CHANGES == result.phase
    assert result.plan is not None
    assert ["skipped: created less than 1 days ago"] == [step.reason for step in result.plan.actions]
    assert set(young) == existing(stack, scope)


async def test_a_sweep_deletes_in_batches_with_snapshots_and_continues_as_new(
    stack: Stack, client: Client, worker_settings: WorkerSettings
) -> None:
    """60 volumes, 5 per batch, a tiny history limit: several runs, one workflow id, all gone."""
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 60)
    input = sweep_input(scope, batchSize=5, snapshotFirst=True)
    async with sweep_worker(client, worker_settings, history_event_limit=40) as queue:
        result = await run(client, queue, input)

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert set() == existing(stack, scope)
    assert 2 <= result.continued
    assert 12 == len(result.changed)
    assert (12, 12) == (result.progress.done, result.progress.total)
    assert all(check.passed for check in result.checks), result.checks
    snapshots = ec2(stack).describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:opsctl:run", "Values": [input.request.workflow_id()]}]
    )["Snapshots"]
    assert 60 == len(snapshots)


async def test_more_deletions_than_the_policy_allows_is_denied_before_any_change(
    stack: Stack, client: Client, worker_settings: WorkerSettings
) -> None:
    scope = uuid.uuid4().hex[:8]
    volumes = make_volumes(stack, scope, 3)
    tight = policies(dev={"requiredApprovals": 0, "requireSignatures": False, "maxDeletions": 2})
    async with sweep_worker(client, worker_settings, policy_set=tight) as queue:
        result = await run(client, queue, sweep_input(scope))

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "policy_denied" == result.failure.kind.value
    assert ExitCode.DENIED == result.exit_code()
    assert set(volumes) == existing(stack, scope)


async def test_a_volume_that_is_already_gone_counts_as_done(stack: Stack, worker_settings: WorkerSettings) -> None:
    scope = uuid.uuid4().hex[:8]
    [present] = make_volumes(stack, scope, 1)
    batch = DeleteBatchInput(
        workflow_id=f"sweep-{scope}", volume_ids=[present, "vol-0123456789abcdef0"], snapshot_first=False, concurrency=2
    )
    result = await ActivityEnvironment().run(SweepVolumesActivities(worker_settings.aws).delete_batch, batch)
    assert [present] == result.deleted
    assert ["vol-0123456789abcdef0"] == result.already_gone


async def test_a_retried_batch_counts_each_deletion_and_snapshot_once(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    """An earlier attempt deleted one volume (after its snapshot), then died: the retry counts it as
    deleted by this step, because the workflow saw it before the step began, and finds its snapshot."""
    scope = uuid.uuid4().hex[:8]
    first, *rest = make_volumes(stack, scope, 3)
    steps, run_id = SweepVolumesActivities(worker_settings.aws), f"sweep-{scope}"
    earlier = DeleteBatchInput(workflow_id=run_id, volume_ids=[first], snapshot_first=True, concurrency=1)
    await ActivityEnvironment().run(steps.delete_batch, earlier)
    before_the_run = "vol-0123456789abcdef0"
    retry = DeleteBatchInput(
        workflow_id=run_id,
        volume_ids=[first, *rest, before_the_run],
        snapshot_first=True,
        concurrency=2,
        present=[first, *rest],
    )
    result = await ActivityEnvironment().run(steps.delete_batch, retry)

    assert (sorted([first, *rest]), [before_the_run], 3) == (
        sorted(result.deleted),
        result.already_gone,
        result.snapshots,
    )
    assert set() == existing(stack, scope)


async def test_a_retry_adopts_the_snapshot_an_attempt_took_before_it_died(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    """An attempt snapshotted a volume and died before deleting it: the retry finds that snapshot by the
    volume and the run, takes no second one, deletes the volume and counts one snapshot."""
    scope = uuid.uuid4().hex[:8]
    first, second = make_volumes(stack, scope, 2)
    steps, run_id = SweepVolumesActivities(worker_settings.aws), f"sweep-{scope}"
    taken = await steps._snapshot(run_id, first)  # the earlier attempt, up to its snapshot
    retry = DeleteBatchInput(
        workflow_id=run_id, volume_ids=[first, second], snapshot_first=True, concurrency=2, present=[first, second]
    )
    result = await ActivityEnvironment().run(steps.delete_batch, retry)

    snapshots = ec2(stack).describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:opsctl:run", "Values": [run_id]}]
    )["Snapshots"]
    assert (sorted([first, second]), 2) == (sorted(result.deleted), result.snapshots)
    assert {first: [taken], second: 1} == {
        first: [snap["SnapshotId"] for snap in snapshots if snap["VolumeId"] == first],
        second: sum(1 for snap in snapshots if snap["VolumeId"] == second),
    }
    assert set() == existing(stack, scope)


async def test_a_deletion_whose_answer_was_lost_counts_as_deleted(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    """DeleteVolume carried out, its answer lost, botocore's retry told NotFound: the volume was seen
    before the step began, so this step deleted it (make chaos found this with moto frozen 60 s)."""
    scope = uuid.uuid4().hex[:8]
    volumes = make_volumes(stack, scope, 2)
    steps = SweepVolumesActivities(worker_settings.aws)
    delete = steps._ec2.delete_volume

    def delete_and_lose_the_answer(**kwargs: Any) -> Any:
        delete(**kwargs)
        return delete(**kwargs)  # the retry: InvalidVolume.NotFound

    steps._ec2.delete_volume = delete_and_lose_the_answer
    batch = DeleteBatchInput(
        workflow_id=f"sweep-{scope}", volume_ids=volumes, snapshot_first=False, concurrency=2, present=volumes
    )
    result = await ActivityEnvironment().run(steps.delete_batch, batch)

    assert (sorted(volumes), []) == (sorted(result.deleted), result.already_gone)
    assert set() == existing(stack, scope)


async def test_a_volume_tagged_keep_after_the_plan_is_not_deleted(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    """Each batch looks again just before deleting: a late keep tag or attachment wins."""
    scope = uuid.uuid4().hex[:8]
    stale, late_keep = make_volumes(stack, scope, 2)
    ec2(stack).create_tags(Resources=[late_keep], Tags=[{"Key": "keep", "Value": "yes"}])
    batch = DeleteBatchInput(
        workflow_id=f"sweep-{scope}", volume_ids=[stale, late_keep], snapshot_first=False, concurrency=2
    )
    result = await ActivityEnvironment().run(SweepVolumesActivities(worker_settings.aws).delete_batch, batch)
    assert [stale] == result.deleted
    assert {late_keep: "not deleted: tagged 'keep' since the plan was made"} == result.skipped
    assert {late_keep} == existing(stack, scope)


async def test_a_cancelled_sweep_counts_what_it_deleted_by_looking(
    stack: Stack, client: Client, sweep_queue: str
) -> None:
    """A cancel can stop a batch half-way: the report counts the volumes that are gone, exactly."""
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 120)
    input = sweep_input(scope, batchSize=4, concurrency=1, snapshotFirst=True)
    handle = await client.start_workflow(
        SweepStaleVolumes.run, input, id=input.request.workflow_id(), task_queue=sweep_queue, result_type=RunState
    )
    for _ in range(400):
        state = await handle.query(SweepStaleVolumes.state)
        if len([step for step in state.steps if step.finished]) >= 2:
            break
        await asyncio.sleep(0.05)
    await handle.signal("cancel", {"actor": "carol", "comment": "enough for today"})
    result = await handle.result()

    assert Phase.CANCELLED == result.phase
    gone = 120 - len(existing(stack, scope))
    assert 8 <= gone < 120
    expected = f"not undone: {gone} volumes of the 120 planned for deletion are gone and stay deleted ({gone} snapshots"
    assert any(expected in w for w in result.warnings), result.warnings
