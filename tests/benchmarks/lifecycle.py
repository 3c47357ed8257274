"""a. What the lifecycle costs: a no-op operation (policy, plan, apply steps, verify — activities
that do nothing) against a bare temporalio workflow calling the same activities, on one worker
built with the production worker's options, at 1, 50 and 500 runs in flight."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.worker import Worker

from client.runs import start_run
from contracts import kinds
from contracts.phases import Phase
from contracts.request import API_VERSIONS, parse_request
from tests.benchmarks.common import Bench, median, percentile, table
from tests.benchmarks.noop_activities import ACTIVITIES, KIND, NoOpSpec
from tests.benchmarks.noop_workflows import BenchBare, BenchNoOp
from tests.identities import policies, policy_activities
from worker.main import WORKFLOW_RUNNER, worker_options

STEPS = 3
ACTIVITY_COUNT = STEPS + 3  # the policy read (local), plan, the steps, verify: the same in both
# (concurrency, rounds): rounds alternate bare and no-op, so drift on the machine falls on both.
LEVELS = ((1, 20), (50, 3), (500, 1))
QUICK_LEVELS = ((1, 5), (50, 1))
RUN_TIMEOUT = 300  # seconds: a run that has not ended by then is a broken benchmark, not a slow one
# The production runner, sharing the no-op's spec model with the sandbox as it shares the contracts.
RUNNER = dataclasses.replace(
    WORKFLOW_RUNNER,
    restrictions=WORKFLOW_RUNNER.restrictions.with_passthrough_modules("tests.benchmarks.noop_activities"),
)


def register_kind() -> None:
    """The no-op kind, in this process only: the CLI and `python -m worker` never know it.
    (`kinds.KINDS` is each kind's latest row of `kinds.VERSIONS`, which names its spec as module:name.)"""
    kinds.VERSIONS[KIND] = (kinds.Version(API_VERSIONS[0], f"{NoOpSpec.__module__}:{NoOpSpec.__name__}"),)


def ratio(ours: list[float], bare: list[float], fraction: float) -> float:
    return percentile(ours, fraction) / percentile(bare, fraction)


async def timed_runs(concurrency: int, start_one: Callable[[], Awaitable[Any]]) -> tuple[list[float], float]:
    """Each run's latency (start to result, ms) and the wall time of the whole batch (s)."""

    async def one() -> float:
        started = time.perf_counter()
        await start_one()
        return (time.perf_counter() - started) * 1000

    began = time.perf_counter()
    latencies = await asyncio.gather(*(one() for _ in range(concurrency)))
    return list(latencies), time.perf_counter() - began


async def run(bench: Bench) -> list[str]:
    register_kind()
    queue = f"bench-lifecycle-{uuid.uuid4().hex[:6]}"
    dev = {"requiredApprovals": 0, "requireSignatures": False}
    served = policy_activities(policies(dev=dev), search_attributes=True)
    client = bench.client

    async def noop() -> None:
        key = uuid.uuid4().hex
        request = parse_request(
            {
                "apiVersion": API_VERSIONS[0],
                "kind": KIND,
                "metadata": {"environment": "dev", "requester": "bench", "idempotencyKey": key},
                "spec": {"steps": STEPS},
            }
        )
        handle, _ = await start_run(client, request, task_queue=queue)
        state = await asyncio.wait_for(handle.result(), RUN_TIMEOUT)
        if state.phase is not Phase.SUCCEEDED:
            raise SystemExit(f"the no-op run {handle.id} ended {state.phase.value}: {state.failure}")

    async def bare() -> None:
        await client.execute_workflow(
            BenchBare.run,
            NoOpSpec(steps=STEPS),
            id=f"bench-bare-{uuid.uuid4().hex}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=RUN_TIMEOUT),
        )

    rows, notes = [], []
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BenchNoOp, BenchBare],
        activities=[*ACTIVITIES, served.resolve_policy],
        **{**worker_options(), "workflow_runner": RUNNER},
    ):
        await noop()  # warm both: the sandbox's first import of each workflow
        await bare()
        for concurrency, rounds in QUICK_LEVELS if bench.quick else LEVELS:
            measured: dict[str, tuple[list[float], float]] = {"bare": ([], 0.0), "no-op": ([], 0.0)}
            for _ in range(rounds):
                for name, start_one in (("bare", bare), ("no-op", noop)):
                    latencies, wall = await timed_runs(concurrency, start_one)
                    measured[name] = (measured[name][0] + latencies, measured[name][1] + wall)
            (bare_ms, bare_wall), (noop_ms, noop_wall) = measured["bare"], measured["no-op"]
            runs = concurrency * rounds
            rows.append(
                [
                    concurrency,
                    runs,
                    f"{median(bare_ms):.0f} / {percentile(bare_ms, 0.95):.0f}",
                    f"{median(noop_ms):.0f} / {percentile(noop_ms, 0.95):.0f}",
                    f"{ratio(noop_ms, bare_ms, 0.5):.2f}x / {ratio(noop_ms, bare_ms, 0.95):.2f}x",
                    f"{runs / bare_wall:.1f} / {runs / noop_wall:.1f}",
                    f"{(runs / noop_wall) / (runs / bare_wall):.2f}x",
                ]
            )
            if concurrency == 1:
                notes.append(
                    f"One run at a time: {median(bare_ms) / ACTIVITY_COUNT:.1f} ms per activity bare, "
                    f"{median(noop_ms) / ACTIVITY_COUNT:.1f} ms on the lifecycle "
                    f"({median(noop_ms) / median(bare_ms):.2f}x; target ≤ 1.10x)."
                )
    return [
        "## a. Lifecycle overhead",
        "",
        f"Each run: the policy read (a local activity), plan, {STEPS} apply steps, verify: {ACTIVITY_COUNT} activities",
        "that do nothing. The no-op operation runs the whole lifecycle (admission, signature check, search",
        "attributes, current details, the state record); the bare workflow only calls the activities.",
        "Latency: start to result at the client. One worker (the production worker's options) runs both.",
        "",
        *table(
            [
                "in flight",
                "runs each",
                "bare p50 / p95 ms",
                "no-op p50 / p95 ms",
                "latency ratio p50 / p95",
                "runs/s bare / no-op",
                "throughput ratio",
            ],
            rows,
        ),
        "",
        *notes,
    ]
