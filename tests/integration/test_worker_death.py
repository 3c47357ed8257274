"""A worker killed with SIGKILL in the middle of a step: the step is retried within seconds.

Every step heartbeats (activities.heartbeats) under a 10 s heartbeat timeout, so a dead
worker's attempt is noticed long before its start-to-close timeout; the retry resumes from the
last checkpoint, and every row is changed exactly once. The full matrix (every step of every
operation, before/during/after its side effect) is `make chaos`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.postgres import Databases
from client.runs import start_run
from contracts.phases import Phase
from tests.identities import KEYRING
from tests.integration.test_backfill_table import (
    backfill_request,
    backfill_results,
    counts,
    make_table,
    until,
    worker,
)
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def databases(worker_settings: WorkerSettings) -> Databases:
    return Databases(worker_settings.databases)


async def test_a_sigkilled_worker_s_step_is_retried_within_seconds_and_changes_every_row_once(
    client: Client, worker_settings: WorkerSettings, databases: Databases, tmp_path: Path
) -> None:
    table = await make_table(databases, 2000)
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    temporal = worker_settings.temporal.model_copy(update={"task_queue": queue})
    settings = tmp_path / "worker.json"
    settings.write_text(worker_settings.model_copy(update={"temporal": temporal}).model_dump_json())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "--settings", str(settings), cwd=ROOT, env={**os.environ}
    )
    try:
        request = backfill_request(table, batchSize=50, maxRowsPerSecond=200)  # 40 batches, ~10 s
        handle, _ = await start_run(client, request, task_queue=queue, keys=KEYRING)
        await until(lambda: done_past(databases, table, 299), timeout=30)
    finally:
        process.send_signal(signal.SIGKILL)  # no goodbye: the server learns of it from missed heartbeats
        await process.wait()
    killed_at, done_at_kill = time.monotonic(), (await counts(databases, table))["done"]

    async with worker(client, databases, queue):  # a new worker takes over the task queue
        await until(lambda: done_past(databases, table, done_at_kill), timeout=60)
        recovered = time.monotonic() - killed_at
        result = await asyncio.wait_for(handle.result(), timeout=60)

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert recovered < 30, f"the step came back after {recovered:.1f} s (heartbeat timeout 10 s; before: 60 s)"
    assert {"done": 2000, "repeated": 0} == {k: v for k, v in (await counts(databases, table)).items() if k != "span"}
    [step] = await backfill_results(handle)
    assert step.attempt >= 2
    assert (2000, done_at_kill) == (step.rows_updated, step.resumed_from), "progress commits with each batch"
    print(f"recovered {recovered:.1f} s after SIGKILL; {done_at_kill} of 2000 rows done at the kill")


async def done_past(databases: Databases, table: str, rows: int) -> bool:
    return bool((await counts(databases, table))["done"] > rows)
