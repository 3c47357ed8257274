"""The five operations as chaos sees them: a fresh target, a request, and a count of its side effects.

`prepare` makes a target nobody else touches (a role and secret, volumes with their own tag,
a table, a schema, an RDS source) and returns the request plus a `check` that counts every
side effect in PostgreSQL and through boto3 after the run: anything done twice, left undone
or broken is a problem, named in words.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from client.devstack import Stack, seed_role
from contracts.phases import Phase
from contracts.request import Request, parse_request
from contracts.run import RunState
from tests.integration.test_backfill_table import SETUP, backfill_request
from tests.integration.test_read_replica import replicas_of, seed_source
from tests.integration.test_rotate_credential import can_login

Check = Callable[[RunState], Awaitable[list[str]]]


@dataclass
class Prepared:
    request: Request
    check: Check
    secrets: list[str] = field(default_factory=list)  # values no history, log or output may contain


@dataclass(frozen=True)
class Operation:
    kind: str
    prepare: Callable[[Stack], Awaitable[Prepared]]
    # Every activity of the operation's run, and the points a fault can strike in it.
    steps: dict[str, tuple[str, ...]]
    # (items done, items in all) of a step that works through many: a `during` kill must land between.
    progress: Callable[[Stack, Prepared], Awaitable[tuple[int, int]]] | None = None


BEFORE_AFTER = ("before", "after")
ALL_POINTS = ("before", "during", "after")
# `during` strikes after this many committed writes of the step (default 1): a backfill after its
# progress table and two batches, a sweep after a few snapshots and deletions of its first batch.
DURING_WRITES = {"backfill_table.backfill": 3, "sweep_volumes.delete_batch": 5}


def request(kind: str, key: str, spec: dict[str, Any]) -> Request:
    return parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": kind,
            "metadata": {"environment": "dev", "requester": "alice", "idempotencyKey": f"chaos-{key}"},
            "spec": spec,
        }
    )


def succeeded(state: RunState) -> list[str]:
    problems = [] if state.phase is Phase.SUCCEEDED else [f"ended {state.phase.value}: {state.failure}"]
    return problems + [f"check failed: {c.name}: {c.detail}" for c in state.checks if not c.passed]


async def admin_sql(stack: Stack, query: str) -> list[asyncpg.Record]:
    password = stack.postgres.admin_password_file.read_text().strip()
    conn = await asyncpg.connect(
        host="127.0.0.1", port=stack.ports.postgres, database="app", user="postgres", password=password
    )
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    return int(found.group(1).replace(",", "")) if found else -1


# ---- RotateDbCredential ----------------------------------------------------------------------

SEEDING = asyncio.Lock()


async def prepare_rotation(stack: Stack) -> Prepared:
    tag = uuid.uuid4().hex[:8]
    role, secret_id = f"chaos_{tag}", f"chaos/{tag}"
    async with SEEDING:  # concurrent GRANTs on one database collide ("tuple concurrently updated")
        old_password = await asyncio.to_thread(seed_role, stack, role, secret_id)
    secrets = stack.aws("secretsmanager")

    async def check(state: RunState) -> list[str]:
        problems = succeeded(state)
        versions = secrets.list_secret_version_ids(SecretId=secret_id)["Versions"]
        if len(versions) != 2:
            problems.append(f"{len(versions)} secret versions, not 2: the rotation wrote more than one")
        current = json.loads(secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"])
        if not await can_login(stack, role, current["password"]):
            problems.append("AWSCURRENT does not log in: the credential is broken")
        if await can_login(stack, role, old_password):
            problems.append("the old password still logs in")
        prepared.secrets.append(current["password"])
        return problems

    prepared = Prepared(
        request("RotateDbCredential", tag, {"database": "app", "role": role, "secretId": secret_id}),
        check,
        [old_password],
    )
    return prepared


# ---- SweepStaleVolumes -----------------------------------------------------------------------

VOLUMES = 12


async def prepare_sweep(stack: Stack, volumes: int = VOLUMES) -> Prepared:
    tag = uuid.uuid4().hex[:8]
    ec2 = stack.aws("ec2")
    spec = [{"ResourceType": "volume", "Tags": [{"Key": "chaos", "Value": tag}]}]
    for _ in range(volumes):
        ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, TagSpecifications=spec)
    sweep = request(
        "SweepStaleVolumes",
        tag,
        {"olderThanDays": 0, "tagFilters": {"chaos": tag}, "batchSize": 4, "concurrency": 2, "snapshotFirst": True},
    )

    async def check(state: RunState) -> list[str]:
        problems = succeeded(state)
        left = ec2.describe_volumes(Filters=[{"Name": "tag:chaos", "Values": [tag]}])["Volumes"]
        if left:
            problems.append(f"{len(left)} volumes not deleted")
        snapshots = ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:opsctl:run", "Values": [state.workflow_id]}]
        )["Snapshots"]
        snapped = {t["Value"] for s in snapshots for t in s["Tags"] if t["Key"] == "opsctl:volume"}
        if len(snapshots) != volumes or len(snapped) != volumes:
            problems.append(f"{len(snapshots)} snapshots of {len(snapped)} volumes, not one of each of {volumes}")
        details = " ".join(change.detail for change in state.changed)
        counted = sum(int(n) for n in re.findall(r"(\d+) deleted", details))
        gone = sum(int(n) for n in re.findall(r"(\d+) already gone", details))
        snaps = sum(int(n) for n in re.findall(r"(\d+) snapshots", details))
        if (counted, gone, snaps) != (volumes, 0, volumes):
            problems.append(
                f"the result counts {counted} deleted, {gone} already gone, {snaps} snapshots; "
                f"{volumes} of each were deleted and snapshotted"
            )
        return problems

    return Prepared(sweep, check)


# ---- BackfillTable ---------------------------------------------------------------------------

ROWS = 2000


async def prepare_backfill(stack: Stack, rows: int = ROWS, rate: int = 4000) -> Prepared:
    table = f"chaos_{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(stack.psql, SETUP.format(t=table, rows=rows))
    backfill = backfill_request(table, batchSize=100, maxRowsPerSecond=rate)

    async def check(state: RunState) -> list[str]:
        problems = succeeded(state)
        [row] = await admin_sql(
            stack,
            f"SELECT count(*) FILTER (WHERE updates = 1) AS once, count(*) FILTER (WHERE updates > 1) AS again, "
            f"count(*) FILTER (WHERE email_lower IS DISTINCT FROM lower(email)) AS missed FROM {table}",
        )
        if (row["once"], row["again"], row["missed"]) != (rows, 0, 0):
            problems.append(
                f"rows updated once {row['once']}, more than once {row['again']}, not at all {row['missed']}"
            )
        counted = number(r"set on ([\d,]+) rows?", " ".join(change.detail for change in state.changed))
        if counted != rows:
            problems.append(f"the result counts {counted} rows; {rows} were changed")
        return problems

    return Prepared(backfill, check)


async def backfilled(stack: Stack, prepared: Prepared) -> int:
    """Rows the backfill has changed so far (for outage scenarios that strike part-way)."""
    [row] = await admin_sql(
        stack, f"SELECT count(*) AS n FROM {prepared.request.spec['table']} WHERE email_lower IS NOT NULL"
    )
    return int(row["n"])


async def backfill_progress(stack: Stack, prepared: Prepared) -> tuple[int, int]:
    [row] = await admin_sql(stack, f"SELECT count(*) AS n FROM {prepared.request.spec['table']}")
    return await backfilled(stack, prepared), int(row["n"])


async def sweep_progress(stack: Stack, prepared: Prepared) -> tuple[int, int]:
    tag = prepared.request.spec["tagFilters"]["chaos"]
    left = stack.aws("ec2").describe_volumes(Filters=[{"Name": "tag:chaos", "Values": [tag]}])["Volumes"]
    return VOLUMES - len(left), VOLUMES


# ---- MigrateSchema ---------------------------------------------------------------------------


async def prepare_migration(stack: Stack) -> Prepared:
    schema_name = f"chaos_{uuid.uuid4().hex[:8]}"
    migrations = [
        {"version": "0001_create", "sql": f"CREATE TABLE {schema_name}.events (id bigint PRIMARY KEY, note text);"},
        {"version": "0002_seed", "sql": f"INSERT INTO {schema_name}.events VALUES (1, 'once');"},
        {"version": "0003_index", "sql": f"CREATE INDEX CONCURRENTLY events_note ON {schema_name}.events (note);"},
    ]
    migrate = request(
        "MigrateSchema", schema_name, {"database": "app", "schemaName": schema_name, "migrations": migrations}
    )

    async def check(state: RunState) -> list[str]:
        problems = succeeded(state)
        ledger = await admin_sql(stack, f"SELECT version, run_id FROM {schema_name}.opsctl_schema_migrations")
        if sorted(r["version"] for r in ledger) != [m["version"] for m in migrations]:
            problems.append(f"ledger rows {sorted(r['version'] for r in ledger)}")
        [row] = await admin_sql(stack, f"SELECT count(*) AS n FROM {schema_name}.events")
        if row["n"] != 1:
            problems.append(f"the seed migration ran {row['n']} times")
        [index] = await admin_sql(
            stack,
            f"SELECT count(*) AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema_name}' "
            f"AND c.relname = 'events_note' AND i.indisvalid",
        )
        if index["n"] != 1:
            problems.append("the concurrent index is missing or invalid")
        applied = sorted(
            c.resource_id.rsplit("/", 1)[1] for c in state.changed if c.resource_type == "postgres:migration"
        )
        if applied != [m["version"] for m in migrations]:
            problems.append(f"the result lists the migrations {applied}, each must appear once")
        return problems

    return Prepared(migrate, check)


# ---- CreateReadReplica -----------------------------------------------------------------------


async def prepare_replica(stack: Stack) -> Prepared:
    source = await asyncio.to_thread(seed_source, stack)
    replica = request(
        "CreateReadReplica",
        source,
        {"sourceInstanceId": source, "instanceClass": "db.t3.small", "replicaInstanceId": f"{source}-ro"},
    )

    async def check(state: RunState) -> list[str]:
        problems = succeeded(state)
        replicas = await asyncio.to_thread(replicas_of, stack, source)
        if len(replicas) != 1:
            problems.append(f"{len(replicas)} replicas of {source}, not 1")
        return problems

    return Prepared(replica, check)


OPERATIONS = [
    Operation(
        "RotateDbCredential",
        prepare_rotation,
        {
            "rotate_credential.plan": BEFORE_AFTER,
            "rotate_credential.create_pending": ALL_POINTS,
            "rotate_credential.set_password": ALL_POINTS,
            "rotate_credential.test_login": BEFORE_AFTER,
            "rotate_credential.promote": ALL_POINTS,
            "rotate_credential.verify": BEFORE_AFTER,
        },
    ),
    Operation(
        "SweepStaleVolumes",
        prepare_sweep,
        {
            "sweep_volumes.plan": BEFORE_AFTER,
            "sweep_volumes.remaining": BEFORE_AFTER,
            "sweep_volumes.delete_batch": ALL_POINTS,
            "sweep_volumes.verify": BEFORE_AFTER,
        },
        sweep_progress,
    ),
    Operation(
        "BackfillTable",
        prepare_backfill,
        {
            "backfill_table.plan": BEFORE_AFTER,
            "backfill_table.backfill": ALL_POINTS,
            "backfill_table.verify": BEFORE_AFTER,
        },
        backfill_progress,
    ),
    Operation(
        "MigrateSchema",
        prepare_migration,
        {
            "migrate_schema.plan": BEFORE_AFTER,
            "migrate_schema.create_ledger": ALL_POINTS,
            "migrate_schema.apply_migration": ALL_POINTS,
            "migrate_schema.verify": BEFORE_AFTER,
        },
    ),
    Operation(
        "CreateReadReplica",
        prepare_replica,
        {"read_replica.plan": BEFORE_AFTER, "read_replica.create": ALL_POINTS, "read_replica.verify": BEFORE_AFTER},
    ),
]
