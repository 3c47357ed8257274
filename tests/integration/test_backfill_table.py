"""BackfillTable on the real stack: the Temporal dev server and PostgreSQL (database `app`).

Each test makes its own table whose trigger counts every update of a row and stamps its
time, so the database itself shows what ran: each row updated once, the throttle's pace.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.backfill_table import BackfillActivities, BackfillResult
from activities.postgres import Databases
from client.runs import read_state, start_run, wait_for
from contracts.phases import Phase
from contracts.request import Request, parse_request
from contracts.run import Decision, DecisionInput, RunState
from tests.identities import KEYRING, policy_activities
from worker.main import activity_methods
from worker.settings import WorkerSettings
from workflows.backfill_table import BackfillTable

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SETUP = """
CREATE TABLE {t} (
    id bigint PRIMARY KEY, email text NOT NULL, email_lower text,
    updates int NOT NULL DEFAULT 0, updated_at timestamptz
);
CREATE FUNCTION {t}_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updates := OLD.updates + 1; NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER {t}_count BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_count();
INSERT INTO {t} (id, email) SELECT g, 'User' || g || '@Example.COM' FROM generate_series(1, {rows}) g;
"""


@pytest.fixture
def databases(worker_settings: WorkerSettings) -> Databases:
    return Databases(worker_settings.databases)


async def sql(databases: Databases, statement: str) -> Any:
    """Run `statement` as the admin; a SELECT returns its first row."""
    conn = await databases.connect(databases.target("app"))
    try:
        if statement.lstrip().startswith("SELECT"):
            return await conn.fetchrow(statement)
        return await conn.execute(statement)
    finally:
        await conn.close()


async def make_table(databases: Databases, rows: int) -> str:
    table = f"bf_{uuid.uuid4().hex[:10]}"
    await sql(databases, SETUP.format(t=table, rows=rows))
    return table


async def counts(databases: Databases, table: str) -> dict[str, Any]:
    """Rows backfilled, rows updated more than once, and the seconds between the first and last update."""
    row = await sql(
        databases,
        f"SELECT count(*) FILTER (WHERE email_lower = lower(email)) AS done, "
        f"count(*) FILTER (WHERE updates > 1) AS repeated, "
        f"extract(epoch FROM max(updated_at) - min(updated_at))::float AS span FROM {table}",
    )
    return dict(row)


def worker(client: Client, databases: Databases, queue: str) -> Worker:
    steps = BackfillActivities(databases)
    return Worker(
        client,
        task_queue=queue,
        workflows=[BackfillTable],
        activities=[*activity_methods(steps), policy_activities(search_attributes=True).resolve_policy],
        # Send heartbeats at once, so tests see checkpoints and pauses without waiting 30 s.
        max_heartbeat_throttle_interval=timedelta(milliseconds=200),
        default_heartbeat_throttle_interval=timedelta(milliseconds=200),
    )


@pytest.fixture
async def queue(client: Client, databases: Databases) -> AsyncIterator[str]:
    name = f"backfill-{uuid.uuid4().hex[:8]}"
    async with worker(client, databases, name):
        yield name


def backfill_request(table: str, **spec: Any) -> Request:
    return parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "BackfillTable",
            "metadata": {"environment": "dev", "requester": "alice", "idempotencyKey": table},
            "spec": {
                "database": "app",
                "table": table,
                "keyColumn": "id",
                "setColumn": "email_lower",
                "expression": "lower(email)",
                "predicate": "email_lower IS NULL",
                "batchSize": 500,
                "maxRowsPerSecond": 100_000,
                **spec,
            },
        }
    )


async def until(check: Callable[[], Any], timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def backfill_results(handle: WorkflowHandle[Any, RunState]) -> list[BackfillResult]:
    """The backfill step's results as recorded in the run's history."""
    events = (await handle.fetch_history()).events
    scheduled = {
        event.event_id
        for event in events
        if event.HasField("activity_task_scheduled_event_attributes")
        and "backfill_table.backfill" == event.activity_task_scheduled_event_attributes.activity_type.name
    }
    results = []
    for event in events:
        completed = event.activity_task_completed_event_attributes
        if event.HasField("activity_task_completed_event_attributes") and completed.scheduled_event_id in scheduled:
            decoded = await pydantic_data_converter.decode(list(completed.result.payloads), [BackfillResult])
            results.append(decoded[0])
    return results


async def test_a_backfill_of_thousands_of_rows_completes_and_verifies(
    client: Client, databases: Databases, queue: str
) -> None:
    """3,000 rows in batches of 500: every row set once, the plan counted them, verify passes."""
    table = await make_table(databases, 3000)
    handle, _ = await start_run(client, backfill_request(table), task_queue=queue, keys=KEYRING)
    result = await handle.result()

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert result.plan is not None
    facts = {key: value for step in result.plan.actions for key, value in step.observed.items()}
    assert ("3000", "1", "3000", "6") == (facts["matching_rows"], facts["key_min"], facts["key_max"], facts["batches"])
    assert {"done": 3000, "repeated": 0} == {k: v for k, v in (await counts(databases, table)).items() if k != "span"}
    assert [True] == [check.passed for check in result.checks]
    assert "email_lower set on 3,000 rows" == result.changed[0].detail
    [step] = await backfill_results(handle)
    assert (3000, 6, 3000) == (step.rows_updated, step.batches_this_attempt, step.checkpoint)


async def test_the_throttle_holds_the_average_rate(client: Client, databases: Databases, queue: str) -> None:
    """1,000 rows at 1,000 rows/s in batches of 100: the updates span at least 0.9 s (unthrottled: ~0.1 s)."""
    table = await make_table(databases, 1000)
    handle, _ = await start_run(
        client, backfill_request(table, batchSize=100, maxRowsPerSecond=1000), task_queue=queue, keys=KEYRING
    )
    result = await handle.result()

    assert Phase.SUCCEEDED == result.phase, result.failure
    observed = await counts(databases, table)
    # After each batch the activity sleeps until done/rate seconds have passed, so the last
    # batch starts no earlier than (1000 - 100) / 1000 s after the first.
    assert 1000 == observed["done"]
    assert observed["span"] >= 0.9 * 0.95, observed  # a little slack for clock granularity


async def test_a_killed_worker_resumes_from_the_checkpoint(client: Client, databases: Databases) -> None:
    """The worker dies mid-range; a new worker's attempt starts after the last committed batch."""
    table = await make_table(databases, 1000)
    name = f"backfill-{uuid.uuid4().hex[:8]}"
    request = backfill_request(table, batchSize=50, maxRowsPerSecond=250)  # 20 batches, ~4 s

    async with worker(client, databases, name):
        handle, _ = await start_run(client, request, task_queue=name, keys=KEYRING)
        await until(lambda: _done_at_least(databases, table, 200))
    # Leaving the `async with` shut the worker down: its running attempt was cancelled mid-range.
    done_at_kill = (await counts(databases, table))["done"]
    async with worker(client, databases, name):
        result = await asyncio.wait_for(handle.result(), timeout=60)

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert 200 <= done_at_kill < 1000
    assert {"done": 1000, "repeated": 0} == {k: v for k, v in (await counts(databases, table)).items() if k != "span"}
    [step] = await backfill_results(handle)
    assert step.attempt >= 2
    assert isinstance(step.resumed_from, int)
    assert done_at_kill == step.resumed_from, "resumed after the last committed batch, not from the start"
    assert (1000, 1000 - done_at_kill) == (step.rows_updated, step.rows_this_attempt), "every row counted once"
    assert "resumed after id" in result.changed[0].detail


async def _done_at_least(databases: Databases, table: str, rows: int) -> bool:
    return bool((await counts(databases, table))["done"] >= rows)


async def test_a_guard_over_its_threshold_pauses_until_it_clears(
    client: Client, databases: Databases, queue: str
) -> None:
    """While the guard reads 10 > 5 nothing is updated and heartbeats say paused; at 0 the run finishes."""
    table = await make_table(databases, 500)
    guard = f"{table}_lag"
    await sql(databases, f"CREATE TABLE {guard} (seconds numeric); INSERT INTO {guard} VALUES (10)")
    request = backfill_request(
        table, batchSize=100, guard={"query": f"SELECT seconds FROM {guard}", "maxValue": 5, "pollSeconds": 1}
    )
    handle, _ = await start_run(client, request, task_queue=queue, keys=KEYRING)

    paused = await wait_for(handle, lambda s: any(a.details.get("paused") for a in s.live), timeout=20)
    assert 0 == (await counts(databases, table))["done"]
    assert "guard value 10 > 5" == paused.live[0].details["paused"]
    assert {"done": 0, "total": 500, "unit": "rows"} == {
        k: v for k, v in paused.live[0].details.items() if k != "paused"
    }
    await sql(databases, f"UPDATE {guard} SET seconds = 0")
    result = await asyncio.wait_for(handle.result(), timeout=30)

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert 500 == (await counts(databases, table))["done"]
    [step] = await backfill_results(handle)
    assert step.paused_seconds > 0


@pytest.mark.parametrize(
    ("field", "fragment", "message"),
    [
        ("expression", "lower(email)); DELETE FROM {t}; SELECT (1", "must be a single expression"),
        ("predicate", "email_lower IS NULL) OR (true) FROM {t} WHERE (true", "exactly one expression"),
        ("expression", "pg_terminate_backend(pg_backend_pid())", "may not call pg_terminate_backend"),
        ("expression", "no_such_column", "no_such_column"),
        ("predicate", "id + 1", "boolean"),
    ],
)
async def test_an_invalid_expression_or_predicate_fails_validation_before_any_change(
    client: Client, databases: Databases, queue: str, field: str, fragment: str, message: str
) -> None:
    table = await make_table(databases, 100)
    handle, _ = await start_run(
        client, backfill_request(table, **{field: fragment.format(t=table)}), task_queue=queue, keys=KEYRING
    )
    result = await handle.result()

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert ("validation", []) == (result.failure.kind.value, result.changed)
    assert message in result.failure.message
    assert 100 == (await sql(databases, f"SELECT count(*) FROM {table} WHERE updates = 0"))[0]


async def test_no_matching_rows_is_a_noop_plan_and_no_changes(client: Client, databases: Databases, queue: str) -> None:
    table = await make_table(databases, 10)
    handle, _ = await start_run(client, backfill_request(table, predicate="id < 0"), task_queue=queue, keys=KEYRING)
    result = await handle.result()

    assert Phase.NO_CHANGES == result.phase
    assert result.plan is not None
    assert not result.plan.has_changes
    assert [] == result.changed
    state = await read_state(handle)
    assert Phase.NO_CHANGES == state.phase


async def test_cancel_stops_a_running_backfill_between_batches(
    client: Client, databases: Databases, queue: str
) -> None:
    """A cancel signal reaches the long step: it stops after its current batch, the run ends cancelled."""
    table = await make_table(databases, 1000)
    handle, _ = await start_run(
        client, backfill_request(table, batchSize=50, maxRowsPerSecond=250), task_queue=queue, keys=KEYRING
    )
    await until(lambda: _done_at_least(databases, table, 100))
    await handle.signal("cancel", DecisionInput(actor="carol", comment="peak traffic"))
    result = await asyncio.wait_for(handle.result(), timeout=30)

    done = (await counts(databases, table))["done"]
    assert Phase.CANCELLED == result.phase
    assert result.failure is not None
    assert "partial_application" == result.failure.kind.value, "backfilled rows stay: the exit code says partial"
    assert 100 <= done < 1000, "stopped mid-range, batches done so far stay done"
    assert f"not undone: {done:,} rows of {table} already backfilled keep their new email_lower" in result.warnings
    await asyncio.sleep(1)
    assert done == (await counts(databases, table))["done"], "nothing runs after the cancel"


async def test_rows_added_to_a_live_table_before_approval_do_not_void_it(
    client: Client, databases: Databases, queue: str
) -> None:
    """The estimate (row count, key range) is context: the approval holds and apply covers the new rows."""
    table = await make_table(databases, 500)
    request = backfill_request(table).model_copy(
        update={"metadata": backfill_request(table).metadata.model_copy(update={"environment": "prod"})}
    )
    handle, _ = await start_run(client, request, task_queue=queue, keys=KEYRING)
    waiting = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    await sql(databases, f"INSERT INTO {table} (id, email) SELECT g, 'New' || g FROM generate_series(501, 600) g")
    approval = DecisionInput(actor="bob", plan_hash=waiting.plan_hash)
    await handle.signal("approve", KEYRING.sign_decision(waiting.decision_scope, Decision.APPROVE, approval))
    result = await asyncio.wait_for(handle.result(), timeout=60)

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert waiting.plan_hash == result.plan_hash
    assert [d.accepted for d in result.decisions] == [True]
    assert {"done": 600, "repeated": 0} == {k: v for k, v in (await counts(databases, table)).items() if k != "span"}


async def test_a_role_that_cannot_keep_progress_is_refused_at_plan_time(
    client: Client, databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress commits with each batch in <schema>.opsctl_backfill_progress: a role that may not write it
    is told so, with the grant to ask for, before anything changes."""
    suffix = uuid.uuid4().hex[:8]
    role, schema_name = f"bf_role_{suffix}", f"bf_schema_{suffix}"
    table = f"{schema_name}.t"
    await sql(
        databases,
        f"CREATE SCHEMA {schema_name}; CREATE TABLE {table} (id bigint PRIMARY KEY, email text, email_lower text);"
        f"INSERT INTO {table} SELECT g, 'A' || g, NULL FROM generate_series(1, 10) g;"
        f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{suffix}'; GRANT USAGE ON SCHEMA {schema_name} TO {role};"
        f"GRANT SELECT, UPDATE ON {table} TO {role};",
    )
    monkeypatch.setenv("BF_ROLE_PASSWORD", f"pw-{suffix}")
    admin = databases.target("app")
    restricted = Databases(
        {
            "app": admin.model_copy(
                update={"admin_user": role, "admin_password_env": "BF_ROLE_PASSWORD", "admin_password_file": ""}
            )
        }
    )
    name = f"backfill-{suffix}"
    async with worker(client, restricted, name):
        handle, _ = await start_run(client, backfill_request(table), task_queue=name, keys=KEYRING)
        result = await asyncio.wait_for(handle.result(), timeout=60)

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "validation" == result.failure.kind.value
    assert f"grant it CREATE on schema {schema_name}" in result.failure.message
    assert 10 == (await sql(databases, f"SELECT count(*) FROM {table} WHERE email_lower IS NULL"))[0]


async def test_a_temporal_cancel_stops_a_running_backfill_before_counting_what_stays(
    client: Client, databases: Databases, queue: str
) -> None:
    """The Web UI's cancel (a Temporal cancel) also stops the batch step first: what the run reports as
    done is what the table holds once the run has closed."""
    table = await make_table(databases, 1000)
    handle, _ = await start_run(
        client, backfill_request(table, batchSize=50, maxRowsPerSecond=250), task_queue=queue, keys=KEYRING
    )
    await until(lambda: _done_at_least(databases, table, 100))
    await handle.cancel()
    result = await asyncio.wait_for(handle.result(), timeout=30)

    done = (await counts(databases, table))["done"]
    assert Phase.CANCELLED == result.phase
    assert "a cancel came through Temporal: stopping at the next safe point" in result.warnings
    assert result.ending_decision is not None
    assert "temporal" == result.ending_decision.via
    assert 100 <= done < 1000, "stopped mid-range, batches done so far stay done"
    assert f"not undone: {done:,} rows of {table} already backfilled keep their new email_lower" in result.warnings
    await asyncio.sleep(1)
    assert done == (await counts(databases, table))["done"], "nothing runs after the cancel"


async def test_a_batch_behind_a_held_row_lock_gives_up_at_the_lock_timeout(
    databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every batch runs under the lock timeout: a row another session holds fails the attempt as
    transient (retried by the step), it never waits behind that session."""
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from activities import backfill_table
    from contracts.backfill_table import BackfillTableSpec

    monkeypatch.setattr(backfill_table, "LOCK_TIMEOUT", "300ms")
    table = await make_table(databases, 100)
    spec = BackfillTableSpec.model_validate(backfill_request(table, batchSize=10).spec)
    input = backfill_table.BackfillInput(
        workflow_id=f"lock-{table}", spec=spec, key_type="bigint", key_min="1", key_max="100", estimated_rows=100
    )
    holder = await databases.connect(databases.target("app"))
    try:
        async with holder.transaction():
            await holder.execute(f"SELECT * FROM {table} WHERE id = 55 FOR UPDATE")
            with pytest.raises(ApplicationError) as raised:
                await asyncio.wait_for(ActivityEnvironment().run(BackfillActivities(databases).backfill, input), 10)
    finally:
        await holder.close()
    assert "dependency_unavailable" == raised.value.type, raised.value
    assert 50 == (await counts(databases, table))["done"], "the batches before the locked row committed"
