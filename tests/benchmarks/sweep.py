"""c. The sweep at scale: 10,000 stale volumes in moto (500 with --quick) swept by one SweepStaleVolumes
run on a real `python -m worker`, then 2,000 (200) with snapshotFirst. Plan, apply and verify times and
the time of every batch come from the runs' histories (activity scheduled → closed), across the whole
continue-as-new chain."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from temporalio.client import WorkflowHandle

from contracts.request import parse_request
from contracts.run import Mode, RunInput, RunState
from tests.benchmarks.common import Bench, median, percentile, table
from tests.benchmarks.history import ActivityTimes, activities, chain
from tests.benchmarks.worker import bench_worker
from workflows.sweep_volumes import SweepStaleVolumes

BATCH_SIZE, CONCURRENCY = 100, 8  # the spec's defaults
HISTORY_TARGET = 5_000  # most events in one run of the chain


def create_volumes(endpoint: str, scope: str, count: int) -> None:
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
    tags = [{"ResourceType": "volume", "Tags": [{"Key": "bench", "Value": scope}]}]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, TagSpecifications=tags), range(count)
            )
        )


@dataclass
class Batch:
    seconds: float  # from the previous batch's end (the first: from its look) to this one's end
    look: float  # sweep_volumes.remaining before the step, scheduled → closed
    delete: float  # sweep_volumes.delete_batch, scheduled → closed
    attempts: int

    @property
    def between(self) -> float:
        """Workflow tasks, continue-as-new and queueing: the batch's time outside its two activities."""
        return self.seconds - self.look - self.delete


def batches(steps: list[ActivityTimes]) -> list[Batch]:
    found: list[Batch] = []
    previous_end = None
    for look, delete in itertools.pairwise(steps):
        if look.type != "sweep_volumes.remaining" or delete.type != "sweep_volumes.delete_batch":
            continue
        assert delete.closed is not None
        start = previous_end or look.scheduled
        found.append(Batch((delete.closed - start).total_seconds(), look.seconds, delete.seconds, delete.attempt))
        previous_end = delete.closed
    return found


async def watch(handle: WorkflowHandle[Any, RunState], started: float) -> None:
    """A line a minute while the sweep runs: a 10,000-volume sweep takes a while."""
    while True:
        await asyncio.sleep(60)
        with contextlib.suppress(Exception):  # a query during a continue-as-new may miss: the next one answers
            state = await handle.query(SweepStaleVolumes.state)
            progress = state.progress
            print(
                f"  {time.perf_counter() - started:.0f} s: {state.phase.value}, {progress.done}/{progress.total} steps",
                flush=True,
            )


def seconds(value: float) -> str:
    return f"{value:,.1f} s"


@dataclass
class Sweep:
    name: str
    volumes: int
    quick_volumes: int
    snapshot_first: bool


# The default spec at the size; and snapshotFirst, whose every batch also finds, makes and counts
# snapshots among all the snapshots moto holds (each batch adds its own): smaller, moto reads tags slowly.
SWEEPS = (Sweep("default spec", 10_000, 500, False), Sweep("snapshotFirst", 2_000, 200, True))


async def run(bench: Bench) -> list[str]:
    lines = ["## c. sweep", ""]
    for sweep in SWEEPS:
        lines += await sweep_volumes(bench, sweep)
    return lines


async def sweep_volumes(bench: Bench, sweep: Sweep) -> list[str]:
    count = sweep.quick_volumes if bench.quick else sweep.volumes
    scope = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    await asyncio.to_thread(create_volumes, bench.stack.aws_endpoint, scope, count)
    created = time.perf_counter() - started
    print(f"created {count:,} volumes in moto in {created:.0f} s", flush=True)
    request = parse_request(
        {
            "apiVersion": "opsctl/v2",
            "kind": "SweepStaleVolumes",
            "metadata": {"environment": "dev", "requester": "bench", "idempotencyKey": f"bench-sweep-{scope}"},
            "spec": {
                "selector": {"olderThanDays": 0, "tags": {"bench": scope}},
                "batchSize": BATCH_SIZE,
                "concurrency": CONCURRENCY,
                "snapshotFirst": sweep.snapshot_first,
            },
        }
    )
    wide: dict[str, Any] = {"requiredApprovals": 0, "requireSignatures": False, "maxDeletions": count}
    async with bench_worker(bench, "sweep", dev=wide) as worker:
        at_start = worker.memory()
        started = time.perf_counter()
        handle = await bench.client.start_workflow(
            SweepStaleVolumes.run,
            RunInput(request=request, mode=Mode.APPLY),
            id=request.workflow_id(),
            task_queue=worker.queue,
        )
        watching = asyncio.create_task(watch(handle, started))
        try:
            result = await handle.result()
        finally:
            watching.cancel()
        took = time.perf_counter() - started
        memory = worker.memory()
    histories = await chain(bench.client, request.workflow_id(), result.first_run_id)
    steps = [step for history in histories for step in activities(history)]
    found = batches(steps)
    plan = next(step for step in steps if step.type == "sweep_volumes.plan")
    verify = next(step for step in steps if step.type == "sweep_volumes.verify")
    times = [batch.seconds for batch in found]
    tenth = max(1, len(found) // 10)
    trend = (sum(times[-tenth:]) / tenth) / (sum(times[:tenth]) / tenth)
    largest = max(len(history.events) for history in histories)
    return [
        f"### {count:,} volumes, {sweep.name}",
        "",
        f"One SweepStaleVolumes run in dev (no approval), batchSize {BATCH_SIZE}, concurrency {CONCURRENCY}, "
        f"snapshotFirst {str(sweep.snapshot_first).lower()}, over {count:,} volumes that moto held (created "
        f"beforehand in {created:.0f} s, not counted), on a `python -m worker` process of its own. Times are "
        "from the runs' histories: an activity from scheduled to closed; a batch from the end of the batch "
        "before it (the first: from its look) to the end of its delete step, so it includes the look before "
        f"it, the workflow tasks between and any continue-as-new. Outcome: {result.phase.value}.",
        "",
        *table(
            ["figure", "value"],
            [
                ["plan (sweep_volumes.plan: one listing of the scope)", seconds(plan.seconds)],
                [f"apply ({len(found)} batches, first look → last delete)", seconds(sum(times))],
                ["verify", seconds(verify.seconds)],
                ["whole run, start → result", seconds(took)],
                [
                    "time per batch: first / median / last / slowest",
                    " / ".join(seconds(value) for value in (times[0], median(times), times[-1], max(times))),
                ],
                [f"last {tenth} batches ÷ first {tenth} (flat: ≈ 1 or less)", f"{trend:.2f}"],
                [
                    "peak worker RSS (VmHWM of the `python -m worker` process, from /proc)",
                    f"{memory.peak_mib:,.0f} MiB ({at_start.rss_mib:,.0f} MiB when it began polling)",
                ],
                [
                    f"runs in the chain; most history events in one run (target < {HISTORY_TARGET:,})",
                    f"{len(histories)}; {largest:,}",
                ],
            ],
        ),
        "",
        "Batches, first to last (look: `remaining` before the step; delete: `delete_batch`; between: "
        "workflow tasks and queueing):",
        "",
        *table(
            ["batch", "time", "look", "delete", "between", "attempts"],
            [
                [
                    f"{index + 1}",
                    seconds(found[index].seconds),
                    seconds(found[index].look),
                    seconds(found[index].delete),
                    seconds(found[index].between),
                    found[index].attempts,
                ]
                for index in sorted({round(fraction * (len(found) - 1)) for fraction in SAMPLES})
            ],
        ),
        "",
        f"p90 batch {seconds(percentile(times, 0.9))}; all looks {seconds(sum(b.look for b in found))}, "
        f"all deletes {seconds(sum(b.delete for b in found))}, all between {seconds(sum(b.between for b in found))}.",
        "",
    ]


SAMPLES = (0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1)
