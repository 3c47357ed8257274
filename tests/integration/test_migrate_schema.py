"""MigrateSchema on the real stack: Temporal dev server and PostgreSQL, one fresh schema per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.migrate_schema import (
    MigrateSchemaActivities,
    MigrationStepInput,
    application_name,
    lock_keys,
)
from activities.postgres import Databases
from client.migrations import inline_directory
from client.runs import start_run
from contracts.migrate_schema import checksum_of
from contracts.phases import Phase
from contracts.request import Request, load_mapping, parse_request
from contracts.run import Mode, RunState
from tests.identities import KEYRING, policy_activities
from worker.main import activity_methods
from worker.settings import WorkerSettings
from workflows.migrate_schema import MigrateSchema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CREATE_ITEMS = "SET lock_timeout = '2s';\nCREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
SEED_ITEMS = "SET lock_timeout = '2s';\nINSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;"
ADD_PRICE = "SET lock_timeout = '2s';\nALTER TABLE items ADD COLUMN price numeric DEFAULT 0;"


@pytest.fixture
def databases(worker_settings: WorkerSettings) -> Databases:
    return Databases(worker_settings.databases)


@pytest.fixture
async def queue(client: Client, databases: Databases) -> AsyncIterator[str]:
    """Our own Worker with MigrateSchema and its activities on a fresh task queue."""
    name = f"test-migrate-{uuid.uuid4().hex[:8]}"
    activities = [
        *activity_methods(MigrateSchemaActivities(databases)),
        policy_activities(search_attributes=True).resolve_policy,
    ]
    async with Worker(client, task_queue=name, workflows=[MigrateSchema], activities=activities):
        yield name


@pytest.fixture
def schema() -> str:
    return f"m_{uuid.uuid4().hex[:10]}"


async def sql(databases: Databases, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await databases.connect(databases.target("app"))
    try:
        return [dict(row) for row in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def ledger(databases: Databases, schema: str) -> list[tuple[str, str, str]]:
    exists = await sql(databases, "SELECT to_regclass($1) AS t", f"{schema}.opsctl_schema_migrations")
    if exists[0]["t"] is None:
        return []
    rows = await sql(databases, f"SELECT version, checksum, run_id FROM {schema}.opsctl_schema_migrations ORDER BY 1")
    return [(r["version"], r["checksum"], r["run_id"]) for r in rows]


async def exists(databases: Databases, name: str) -> bool:
    return bool((await sql(databases, "SELECT to_regclass($1) IS NOT NULL AS found", name))[0]["found"])


def migrate_request(schema: str, migrations: list[tuple[str, str]], **spec: Any) -> Request:
    return parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "MigrateSchema",
            "metadata": {"environment": "dev", "requester": "alice", "idempotencyKey": uuid.uuid4().hex[:16]},
            "spec": {
                "database": "app",
                "schemaName": schema,
                "migrations": [{"version": v, "sql": s} for v, s in migrations],
                **spec,
            },
        }
    )


async def run(client: Client, queue: str, request: Request, mode: Mode = Mode.APPLY) -> RunState:
    handle, _ = await start_run(client, request, task_queue=queue, mode=mode, search_attributes=False, keys=KEYRING)
    return await handle.result()


async def test_pending_migrations_are_applied_and_recorded_in_the_ledger(
    client: Client, queue: str, databases: Databases, schema: str
) -> None:
    migrations = [("0001_items", CREATE_ITEMS), ("0002_seed", SEED_ITEMS), ("0003_price", ADD_PRICE)]
    request = migrate_request(schema, migrations)

    dry = await run(client, queue, request, Mode.DRY_RUN)
    assert Phase.PLANNED == dry.phase
    assert dry.plan is not None
    assert ["create", "modify", "modify", "modify"] == [a.action.value for a in dry.plan.actions]
    assert [] == await ledger(databases, schema), "planning creates nothing, not even the ledger"
    result = await run(client, queue, request)

    assert Phase.SUCCEEDED == result.phase, result.failure
    run_id = request.workflow_id()
    assert [(v, checksum_of(s), run_id) for v, s in migrations] == await ledger(databases, schema)
    assert ["postgres:table", *["postgres:migration"] * 3] == [c.resource_type for c in result.changed]
    assert {f"relation {schema}.items", f"column {schema}.items.price"} <= {c.name for c in result.checks}
    assert all(check.passed for check in result.checks), result.checks
    assert [{"n": 100}] == await sql(databases, f"SELECT count(*) AS n FROM {schema}.items")


async def test_a_rerun_of_applied_migrations_is_no_changes(
    client: Client, queue: str, databases: Databases, schema: str
) -> None:
    migrations = [("0001_items", CREATE_ITEMS), ("0002_price", ADD_PRICE)]
    first = await run(client, queue, migrate_request(schema, migrations))
    recorded = await ledger(databases, schema)

    again = await run(client, queue, migrate_request(schema, migrations))

    assert (Phase.SUCCEEDED, Phase.NO_CHANGES) == (first.phase, again.phase)
    assert again.plan is not None
    assert ["noop", "noop"] == [a.action.value for a in again.plan.actions]
    assert recorded == await ledger(databases, schema)


async def test_a_changed_applied_migration_is_drift_and_nothing_is_applied(
    client: Client, queue: str, databases: Databases, schema: str
) -> None:
    await run(client, queue, migrate_request(schema, [("0001_items", CREATE_ITEMS)]))
    recorded = await ledger(databases, schema)
    edited = CREATE_ITEMS.replace("name text", "title text")

    result = await run(client, queue, migrate_request(schema, [("0001_items", edited), ("0002_price", ADD_PRICE)]))

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "validation" == result.failure.kind.value
    assert "0001_items" in result.failure.message
    assert recorded == await ledger(databases, schema)
    assert [] == await sql(
        databases, "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'price'", schema
    )


async def test_unsafe_findings_block_apply_until_each_is_acknowledged(
    client: Client, queue: str, databases: Databases, schema: str
) -> None:
    base = [("0001_items", CREATE_ITEMS), ("0002_seed", SEED_ITEMS)]
    await run(client, queue, migrate_request(schema, base))
    recorded = await ledger(databases, schema)
    index = ("0003_items_name", "SET lock_timeout = '2s';\nCREATE INDEX items_name ON items (name);")

    refused = await run(client, queue, migrate_request(schema, [*base, index]))

    assert Phase.FAILED == refused.phase
    assert refused.failure is not None
    assert ("unsafe", 3) == (refused.failure.kind.value, int(refused.exit_code()))
    assert "0003_items_name create_index_not_concurrently" in refused.failure.message
    assert [] == refused.changed
    assert recorded == await ledger(databases, schema)
    assert not await exists(databases, f"{schema}.items_name")

    ack = [{"version": "0003_items_name", "rule": "create_index_not_concurrently", "reason": "100 rows"}]
    accepted = await run(client, queue, migrate_request(schema, [*base, index], acknowledge=ack))

    assert Phase.SUCCEEDED == accepted.phase, accepted.failure
    assert await exists(databases, f"{schema}.items_name")
    assert accepted.plan is not None
    findings = [
        (f.severity, f.rule, f.statement, f.acknowledged, f.note) for a in accepted.plan.actions for f in a.findings
    ]
    assert [("unsafe", "create_index_not_concurrently", 2, True, "100 rows")] == findings


async def test_a_concurrently_migration_runs_outside_a_transaction_and_is_recorded(
    client: Client, queue: str, databases: Databases, schema: str
) -> None:
    index = ("0003_items_name", "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY items_name ON items (name);")
    request = migrate_request(schema, [("0001_items", CREATE_ITEMS), ("0002_seed", SEED_ITEMS), index])

    result = await run(client, queue, request)

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert result.plan is not None
    assert "no (CONCURRENTLY)" == result.plan.actions[-1].observed["transaction"]
    assert ("0003_items_name", checksum_of(index[1]), request.workflow_id()) == (await ledger(databases, schema))[-1]
    valid = await sql(
        databases, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", f"{schema}.items_name"
    )
    assert [{"indisvalid": True}] == valid
    assert "outside a transaction" in result.changed[-1].detail


async def test_a_retried_concurrently_step_rebuilds_an_invalid_index_then_adopts_its_ledger_row(
    databases: Databases, schema: str
) -> None:
    """A failed CONCURRENTLY build leaves an invalid index: the retry rebuilds it, a later retry adopts."""
    activities = MigrateSchemaActivities(databases)
    env = ActivityEnvironment()
    step = MigrationStepInput(
        workflow_id=f"MigrateSchema-test-{schema}",
        database="app",
        schema_name=schema,
        lock_timeout_seconds=2,
        statement_timeout_seconds=30,
    )
    await env.run(activities.create_ledger, step)
    conn = await databases.connect(databases.target("app"))
    try:
        await conn.execute(f"CREATE TABLE {schema}.t (a int); INSERT INTO {schema}.t VALUES (1), (1)")
        with pytest.raises(Exception, match="duplicate"):
            await conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY t_a ON {schema}.t (a)")
        await conn.execute(f"DELETE FROM {schema}.t WHERE ctid = (SELECT min(ctid) FROM {schema}.t)")
    finally:
        await conn.close()
    migration = "CREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a)"
    step = step.model_copy(update={"version": "0001_t_a", "sql": migration, "checksum": checksum_of(migration)})

    first = await env.run(activities.apply_migration, step)
    retried = await env.run(activities.apply_migration, step)
    other = await env.run(activities.apply_migration, step.model_copy(update={"workflow_id": "another-run"}))

    assert "dropped the invalid index" in first.detail
    assert (True, "recorded by an earlier attempt: adopted") == (retried.changed, retried.detail)
    assert (False, step.workflow_id) == (other.changed, other.applied_by)
    valid = await sql(databases, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", f"{schema}.t_a")
    assert [{"indisvalid": True}] == valid
    assert [("0001_t_a", checksum_of(migration), step.workflow_id)] == await ledger(databases, schema)


async def test_a_held_migration_lock_fails_the_run_at_once_naming_the_holder(
    client: Client, queue: str, databases: Databases, schema: str
) -> None:
    holder = await databases.connect(databases.target("app"))
    try:
        await holder.execute(
            "SELECT set_config('application_name', $1, false)", application_name("MigrateSchema-dev-b")
        )
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1, $2)", *lock_keys(schema))
        started = time.monotonic()
        result = await run(client, queue, migrate_request(schema, [("0001_items", CREATE_ITEMS)]))
        elapsed = time.monotonic() - started
    finally:
        await holder.close()

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "conflict" == result.failure.kind.value
    assert "run MigrateSchema-dev-b holds the migration lock" in result.failure.message
    assert elapsed < 10, "another run's lock is not retried for ~15 s"
    assert [] == await ledger(databases, schema)


async def test_the_examples_run_on_the_stack(client: Client, queue: str, databases: Databases, schema: str) -> None:
    """examples/migrate-schema*.yaml, in order, inlined as the CLI does (in a fresh schema)."""
    phases = []
    for name in ("migrate-schema.yaml", "migrate-schema-acknowledged.yaml"):
        document = load_mapping((EXAMPLES / name).read_text(), name)
        document["spec"] = {**inline_directory(document["spec"], EXAMPLES), "schemaName": schema}
        document["metadata"]["idempotencyKey"] = uuid.uuid4().hex[:16]
        phases.append((await run(client, queue, parse_request(document))).phase)

    assert [Phase.SUCCEEDED, Phase.SUCCEEDED] == phases
    assert 4 == len(await ledger(databases, schema))
    assert await exists(databases, f"{schema}.accounts_email_key")
