"""d. The backfill at scale: 1,000,000 rows (20,000 with --quick) backfilled by a BackfillTable run on a
real `python -m worker`, against a plain batched UPDATE loop with the same batch size, on the same table.

Each contender starts from the same table: every row to do, rewritten compact (VACUUM FULL) and
analyzed. They alternate, two rounds each (one with --quick). A batch's locks are held from its UPDATE
to its COMMIT; both sides time each batch's whole transaction (BEGIN → COMMIT, an upper bound on that):
the plain loop around its transaction, the activity around its own (`BackfillResult.longest_batch_seconds`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from activities.backfill_table import BackfillResult
from activities.postgres import Databases, DatabaseTarget
from client.devstack import DEMO_DATABASE
from contracts.request import parse_request
from contracts.run import Mode, RunInput, RunState
from tests.benchmarks.common import Bench, median, percentile, table
from tests.benchmarks.history import activities, chain
from tests.benchmarks.worker import bench_worker
from workflows.backfill_table import BackfillTable

ROWS, QUICK_ROWS = 1_000_000, 20_000
BATCH_SIZE = 1_000  # the spec's default
UNTHROTTLED = 1_000_000_000  # maxRowsPerSecond: the throttle never sleeps, so both sides run flat out
TARGET_RATIO = 0.8

SETUP = """
CREATE TABLE {t} (id bigint PRIMARY KEY, email text NOT NULL, email_lower text);
INSERT INTO {t} (id, email) SELECT g, 'User' || g || '@Example.COM' FROM generate_series(1, {rows}) g;
"""


@dataclass
class Contender:
    rows: int = 0  # over all rounds
    rounds: list[float] = field(default_factory=list)  # seconds, each round
    batches: int = 0
    holds: list[float] = field(default_factory=list)  # the plain loop's every batch
    longest: float = 0.0
    whole: float = 0.0  # the workflow's run, start → result (plan and verify included)

    @property
    def seconds(self) -> float:
        return sum(self.rounds)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def reset(conn: Any, name: str) -> None:
    """Every row to do again, the table compact and analyzed: each contender starts from the same table."""
    await conn.execute(f"UPDATE {name} SET email_lower = NULL WHERE email_lower IS NOT NULL")
    await conn.execute(f"VACUUM FULL {name}")
    await conn.execute(f"ANALYZE {name}")
    await conn.execute("CHECKPOINT")


async def plain_loop(conn: Any, name: str, rows: int, into: Contender) -> None:
    update = f"UPDATE {name} SET email_lower = lower(email) WHERE id BETWEEN $1 AND $2"
    started = time.perf_counter()
    for low in range(1, rows + 1, BATCH_SIZE):
        began = time.perf_counter()
        async with conn.transaction():
            status = await conn.execute(update, low, low + BATCH_SIZE - 1)
        into.holds.append(time.perf_counter() - began)
        into.rows += int(status.split()[-1])
        into.batches += 1
    into.rounds.append(time.perf_counter() - started)
    into.longest = max(into.longest, *into.holds)


async def workflow_run(bench: Bench, queue: str, name: str, into: Contender) -> None:
    request = parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "BackfillTable",
            "metadata": {"environment": "dev", "requester": "bench", "idempotencyKey": f"bench-{uuid.uuid4().hex}"},
            "spec": {
                "database": DEMO_DATABASE,
                "table": name,
                "keyColumn": "id",
                "setColumn": "email_lower",
                "expression": "lower(email)",
                "predicate": "email_lower IS NULL",
                "batchSize": BATCH_SIZE,
                "maxRowsPerSecond": UNTHROTTLED,
            },
        }
    )
    started = time.perf_counter()
    result: RunState = await bench.client.execute_workflow(
        BackfillTable.run,
        RunInput(request=request, mode=Mode.APPLY),
        id=request.workflow_id(),
        task_queue=queue,
    )
    into.whole += time.perf_counter() - started
    assert result.phase.value == "succeeded", result.phase
    (history,) = await chain(bench.client, request.workflow_id(), result.first_run_id)
    (step,) = [step for step in activities(history) if step.type == "backfill_table.backfill"]
    (outcome,) = await bench.client.data_converter.decode(list(step.result.payloads), [BackfillResult])
    into.rows += outcome.rows_updated
    into.batches += outcome.batches_this_attempt
    into.rounds.append(step.seconds)
    into.longest = max(into.longest, outcome.longest_batch_seconds)


def each_round(contender: Contender) -> str:
    return " / ".join(f"{seconds:,.1f} s" for seconds in contender.rounds)


def ms(value: float) -> str:
    return f"{value * 1000:,.1f} ms"


async def run(bench: Bench) -> list[str]:
    rows, rounds = (QUICK_ROWS, 1) if bench.quick else (ROWS, 2)
    name = f"bench_backfill_{uuid.uuid4().hex[:8]}"
    databases = Databases({DEMO_DATABASE: DatabaseTarget(**bench.stack.database_target(DEMO_DATABASE))})
    conn = await databases.connect(databases.target(DEMO_DATABASE), command_timeout=600)
    plain, flow = Contender(), Contender()
    try:
        started = time.perf_counter()
        await conn.execute(SETUP.format(t=name, rows=rows))
        print(f"made {name} with {rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
        dev: dict[str, Any] = {"requiredApprovals": 0, "requireSignatures": False}
        async with bench_worker(bench, "backfill", dev=dev) as worker:
            for _ in range(rounds):
                await reset(conn, name)
                await plain_loop(conn, name, rows, plain)
                await reset(conn, name)
                await workflow_run(bench, worker.queue, name, flow)
        await conn.execute(f"DROP TABLE {name}")
    finally:
        await conn.close()
    ratio = flow.rate / plain.rate
    holds = plain.holds
    return [
        f"## d. backfill: {rows:,} rows",
        "",
        f"`UPDATE … SET email_lower = lower(email)` over a {rows:,}-row table keyed by a bigint primary key, "
        f"batches of {BATCH_SIZE:,}, {rounds} round{'s' if rounds > 1 else ''} each, alternating. Plain loop: "
        "asyncpg in the benchmark's process, `UPDATE … WHERE id BETWEEN $1 AND $2`, one transaction per batch. "
        "BackfillTable: a run in dev (no approval), maxRowsPerSecond high enough never to sleep, on a "
        "`python -m worker` process of its own; its time is the apply step's (the `backfill_table.backfill` "
        "activity, scheduled → closed, from history), and its batches also commit the run's checkpoint. "
        "Lock hold: each batch's transaction, BEGIN → COMMIT, timed by whoever runs it (the activity reports "
        "its longest in its result).",
        "",
        *table(
            ["figure", "plain loop", "BackfillTable"],
            [
                ["rows updated, all rounds", f"{plain.rows:,}", f"{flow.rows:,}"],
                ["batches, all rounds", f"{plain.batches:,}", f"{flow.batches:,}"],
                [
                    "time, each round",
                    each_round(plain),
                    f"{each_round(flow)} (whole runs, plan and verify too: {flow.whole:,.1f} s)",
                ],
                ["throughput, all rounds", f"{plain.rate:,.0f} rows/s", f"{flow.rate:,.0f} rows/s"],
                [
                    "lock hold per batch",
                    f"median {ms(median(holds))}, p99 {ms(percentile(holds, 0.99))}, longest {ms(plain.longest)}",
                    f"mean {ms(flow.seconds / flow.batches)} (all in), longest {ms(flow.longest)}",
                ],
                [f"throughput ratio (target ≥ {TARGET_RATIO})", "1", f"**{ratio:.2f}**"],
            ],
        ),
    ]
