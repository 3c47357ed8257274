"""The steps of MigrateSchema: plan from the ledger and the linter, apply one migration per step, verify.

The ledger (`<schema>.opsctl_schema_migrations`) is the source of truth for what is
applied. A transactional migration commits together with its ledger row, so a retried
step finds its own row and adopts it. A migration with a CONCURRENTLY statement runs
outside a transaction, statement by statement, and is recorded afterwards; a retry
adopts a valid index it built and rebuilds an invalid one a failed attempt left behind.
Every mutating session holds a session-level advisory lock for the database and schema,
and names its run in `application_name`, so a competing run can say who holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import classified, failure
from activities.postgres import Databases, classify_postgres, quote_ident
from activities.sql_lint import (
    MigrationSqlError,
    concurrent_index_name,
    expected_objects,
    lint,
    parse_statements,
    runs_outside_transaction,
)
from contracts.failures import FailureKind
from contracts.migrate_schema import LEDGER_TABLE, MigrateSchemaSpec, Severity, version_key
from contracts.plan import Action, Finding, Plan, PlannedAction, Rollback
from contracts.run import Check
from contracts.words import plural

APPLICATION_PREFIX = "opsctl "
LEDGER_RESOURCE = "postgres:table"
MIGRATION_RESOURCE = "postgres:migration"
MAX_APPLICATION_NAME = 63  # PostgreSQL truncates application_name to NAMEDATALEN - 1


def _int31(text: str) -> int:
    """A stable non-negative int4 from text: advisory lock keys that read the same in pg_locks."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


# Two-int advisory keys (objsubid 2 in pg_locks) never collide with the single-bigint keys others use.
LOCK_NAMESPACE = _int31("opsctl:migrate_schema")


def lock_keys(schema_name: str) -> tuple[int, int]:
    """The advisory lock of one migration set: advisory locks are per database, the schema is the set."""
    return LOCK_NAMESPACE, _int31(schema_name)


def application_name(workflow_id: str) -> str:
    """The session's name: a digest first, so two runs whose ids share their first 63 characters
    (PostgreSQL keeps no more) still tell their sessions apart; then as much of the id as fits."""
    digest = hashlib.sha256(workflow_id.encode()).hexdigest()[:12]
    return f"{APPLICATION_PREFIX}{digest}:{workflow_id}"[:MAX_APPLICATION_NAME]


class LedgerRow(BaseModel):
    version: str
    checksum: str
    run_id: str


class PlanMigrationsInput(BaseModel):
    spec: MigrateSchemaSpec


class MigrationStepInput(BaseModel):
    """One migration and where it goes; deliberately not the whole spec, to keep history small."""

    workflow_id: str
    database: str
    schema_name: str
    lock_timeout_seconds: int
    statement_timeout_seconds: int
    version: str = ""
    sql: str = ""
    checksum: str = ""


class StepResult(BaseModel):
    changed: bool
    applied_by: str = ""  # the run whose ledger row this is
    detail: str = ""


class VerifyMigrationsInput(BaseModel):
    spec: MigrateSchemaSpec
    applied_versions: list[str]  # what this run applied: their objects are probed


class VerifyMigrationsResult(BaseModel):
    checks: list[Check]


def ledger_name(schema_name: str) -> str:
    return f"{quote_ident(schema_name)}.{quote_ident(LEDGER_TABLE)}"


def plan_migrations(spec: MigrateSchemaSpec, ledger: list[LedgerRow] | None) -> Plan:
    """The plan from the spec and the ledger (None: no ledger yet). Pure; raises drift and unsafe."""
    if spec.directory is not None or not spec.migrations:
        raise failure(
            FailureKind.VALIDATION,
            "spec.directory must be inlined by the client before submission: the worker cannot read your disk",
        )
    applied = {row.version: row for row in ledger or []}
    place = f"{spec.database}/{spec.schema_name}"
    actions: list[PlannedAction] = []
    if ledger is None:
        actions.append(
            PlannedAction(
                action=Action.CREATE,
                resource_type=LEDGER_RESOURCE,
                resource_id=f"{place}.{LEDGER_TABLE}",
                reason="the ledger of applied migrations does not exist yet (nor, maybe, the schema)",
                reversible=True,
                rollback=Rollback.NONE,
                observed={"exists": "false"},
            )
        )
    drifted = [
        f"{m.version} (ledger {applied[m.version].checksum[:12]}…, now {m.sha256[:12]}…)"
        for m in spec.migrations
        if m.version in applied and applied[m.version].checksum != m.sha256
    ]
    if drifted:
        raise failure(
            FailureKind.VALIDATION,
            f"applied migrations changed since they ran: {', '.join(drifted)}; "
            "applied migrations are immutable: restore their SQL and add a new migration instead",
        )
    latest = max((version_key(v) for v in applied), default=None)
    acknowledged = {(a.version, a.rule): a.reason for a in spec.acknowledge}
    blocking: list[str] = []
    for migration in spec.migrations:
        resource_id = f"{place}/{migration.version}"
        if migration.version in applied:
            actions.append(
                PlannedAction(
                    action=Action.NOOP,
                    resource_type=MIGRATION_RESOURCE,
                    resource_id=resource_id,
                    reason="already applied (in the ledger with the same checksum)",
                    reversible=False,
                    rollback=Rollback.NONE,
                    observed={"checksum": migration.sha256, "applied_by": applied[migration.version].run_id},
                )
            )
            continue
        try:
            statements = parse_statements(migration.sql)
            findings = lint(migration.sql)
        except MigrationSqlError as exc:
            raise failure(FailureKind.VALIDATION, f"migration {migration.version} {exc}") from None
        outside = runs_outside_transaction(statements)
        observed = {
            "checksum": migration.sha256,
            "statements": str(len(statements)),
            "transaction": "no (CONCURRENTLY)" if outside else "yes, with its ledger row",
        }
        if latest is not None and version_key(migration.version) < latest:
            observed["order"] = "out of order: a later version is already applied"
        noted: list[Finding] = []
        for finding in findings:
            where = f"statement {finding.statement}" if finding.statement else "migration"
            accepted = (migration.version, finding.rule) in acknowledged
            if finding.severity is Severity.UNSAFE and not accepted:
                blocking.append(f"{migration.version} {finding.rule.value} ({where}): {finding.message}")
            noted.append(
                Finding(
                    statement=finding.statement,
                    severity=finding.severity.value,
                    rule=finding.rule.value,
                    message=finding.message,
                    acknowledged=accepted,
                    note=acknowledged.get((migration.version, finding.rule), ""),
                )
            )
        actions.append(
            PlannedAction(
                action=Action.MODIFY,
                resource_type=MIGRATION_RESOURCE,
                resource_id=resource_id,
                reason=f"pending: {plural(len(statements), 'statement')}, "
                + (
                    "outside a transaction, then its ledger row"
                    if outside
                    else "in one transaction with its ledger row"
                ),
                reversible=False,
                rollback=Rollback.NONE,
                observed=observed,
                findings=noted,
            )
        )
    if blocking:
        raise failure(
            FailureKind.UNSAFE,
            f"{plural(len(blocking), 'unsafe finding')} not acknowledged: {'; '.join(blocking)}. "
            "Fix the migration, or accept each one under spec.acknowledge as {version, rule, reason}",
        )
    requested = {m.version for m in spec.migrations}
    for row in sorted(applied.values(), key=lambda r: version_key(r.version)):
        if row.version not in requested:
            actions.append(
                PlannedAction(
                    action=Action.NOOP,
                    resource_type=MIGRATION_RESOURCE,
                    resource_id=f"{place}/{row.version}",
                    reason="in the ledger but not in this request: left alone",
                    reversible=False,
                    rollback=Rollback.NONE,
                    observed={"checksum": row.checksum, "applied_by": row.run_id},
                )
            )
    return Plan(kind="MigrateSchema", target=f"schema {spec.schema_name} of database {spec.database}", actions=actions)


class MigrateSchemaActivities:
    def __init__(self, databases: Databases) -> None:
        self._databases = databases

    async def _ledger(self, conn: Any, schema_name: str) -> list[LedgerRow] | None:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", ledger_name(schema_name)):
            return None
        rows = await conn.fetch(f"SELECT version, checksum, run_id FROM {ledger_name(schema_name)}")
        return [LedgerRow(**dict(row)) for row in rows]

    @asynccontextmanager
    async def _locked_session(self, input: MigrationStepInput) -> AsyncIterator[Any]:
        """A session named after the run, holding the migration set's advisory lock until it closes.

        Session-level, not transaction-level: CONCURRENTLY statements run outside any
        transaction and must stay under the lock too.
        """
        target = self._databases.target(input.database)
        # A migration statement may run for its whole statement_timeout (up to a day).
        conn = await self._databases.connect(target, command_timeout=input.statement_timeout_seconds + 30)
        try:
            await conn.execute("SELECT set_config('application_name', $1, false)", application_name(input.workflow_id))
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *lock_keys(input.schema_name)):
                raise await self._held_by_another(conn, input)
            yield conn
        finally:
            await conn.close()  # closing releases the advisory lock

    async def _held_by_another(self, conn: Any, input: MigrationStepInput) -> ApplicationError:
        holder = await conn.fetchrow(
            """SELECT a.pid, a.application_name, a.usename FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND l.classid::int8 = $1 AND l.objid::int8 = $2""",
            *lock_keys(input.schema_name),
        )
        place = f"{input.database}/{input.schema_name}"
        if holder is None:  # released between our attempt and the look-up: simply try again
            return failure(FailureKind.CONFLICT, f"the migration lock on {place} was busy")
        name = holder["application_name"] or ""
        if name == application_name(input.workflow_id):
            # Our own earlier attempt's session has not closed yet: it will, so retrying is right.
            return failure(FailureKind.CONFLICT, f"an earlier attempt of this run still holds the lock on {place}")
        who = (
            f"run {name.removeprefix(APPLICATION_PREFIX).partition(':')[2]}"
            if name.startswith(APPLICATION_PREFIX)
            else f"a session outside opsctl (application_name {name!r}, user {holder['usename']})"
        )
        # Another run is migrating this schema, typically for minutes: backing off for ~15 s
        # would not outlast it, and our plan is stale once it finishes. Fail now, resubmit later.
        return ApplicationError(
            f"{who} holds the migration lock on {place} (pid {holder['pid']}); resubmit when it has finished",
            type=FailureKind.CONFLICT.value,
            non_retryable=True,
        )

    @staticmethod
    async def _set_timeouts(conn: Any, input: MigrationStepInput, scope: str) -> None:
        await conn.execute(f"SET {scope} lock_timeout = '{input.lock_timeout_seconds}s'")
        await conn.execute(f"SET {scope} statement_timeout = '{input.statement_timeout_seconds}s'")
        await conn.execute(f"SET {scope} search_path TO {quote_ident(input.schema_name)}")

    @activity.defn(name="migrate_schema.plan")
    @classified(classify_postgres)
    async def plan(self, input: PlanMigrationsInput) -> Plan:
        """Read-only: the ledger as it is, every pending migration linted. Creates nothing."""
        spec = input.spec
        conn = await self._databases.connect(self._databases.target(spec.database))
        try:
            async with conn.transaction(readonly=True):
                ledger = await self._ledger(conn, spec.schema_name)
        finally:
            await conn.close()
        return plan_migrations(spec, ledger)

    @activity.defn(name="migrate_schema.create_ledger")
    @classified(classify_postgres)
    async def create_ledger(self, input: MigrationStepInput) -> StepResult:
        async with self._locked_session(input) as conn:
            if await self._ledger(conn, input.schema_name) is not None:
                return StepResult(changed=False, detail="the ledger already exists")
            async with conn.transaction():
                await self._set_timeouts(conn, input, "LOCAL")
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(input.schema_name)}")
                await conn.execute(
                    f"""CREATE TABLE IF NOT EXISTS {ledger_name(input.schema_name)} (
                        version text PRIMARY KEY, checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(), run_id text NOT NULL)"""
                )
        return StepResult(changed=True, detail="created the ledger table")

    @activity.defn(name="migrate_schema.apply_migration")
    @classified(classify_postgres)
    async def apply_migration(self, input: MigrationStepInput) -> StepResult:
        """Apply one migration and record it, or adopt the ledger row an earlier attempt wrote."""
        statements = parse_statements(input.sql)
        async with self._locked_session(input) as conn:
            ledger = await self._ledger(conn, input.schema_name)
            if ledger is None:
                raise failure(FailureKind.VALIDATION, f"the ledger {ledger_name(input.schema_name)} is missing")
            row = next((r for r in ledger if r.version == input.version), None)
            if row is not None:
                return self._adopt(input, row)
            record = f"INSERT INTO {ledger_name(input.schema_name)} (version, checksum, run_id) VALUES ($1, $2, $3)"
            if not runs_outside_transaction(statements):
                async with conn.transaction():
                    await self._set_timeouts(conn, input, "LOCAL")
                    await conn.execute(input.sql)
                    await conn.execute(record, input.version, input.checksum, input.workflow_id)
                return StepResult(changed=True, applied_by=input.workflow_id, detail="applied in one transaction")
            # Outside a transaction: each statement commits on its own, so session-level settings.
            await self._set_timeouts(conn, input, "SESSION")
            notes = []
            for statement in statements:
                index = concurrent_index_name(statement)
                if index is not None:
                    qualified = f"{quote_ident(index[0] or input.schema_name)}.{quote_ident(index[1])}"
                    valid = await conn.fetchval(
                        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", qualified
                    )
                    if valid:
                        notes.append(f"index {qualified} already built: adopted")
                        continue
                    if valid is False:  # a failed attempt left an invalid index: it must be rebuilt
                        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified}")
                        notes.append(f"dropped the invalid index {qualified} left by a failed attempt")
                await conn.execute(statement.text)
            await conn.execute(record, input.version, input.checksum, input.workflow_id)
        return StepResult(
            changed=True,
            applied_by=input.workflow_id,
            detail="; ".join(["applied outside a transaction (CONCURRENTLY)", *notes]),
        )

    @staticmethod
    def _adopt(input: MigrationStepInput, row: LedgerRow) -> StepResult:
        if row.checksum != input.checksum:
            raise failure(
                FailureKind.VALIDATION,
                f"migration {input.version} was applied by run {row.run_id} with another checksum since the plan",
            )
        if row.run_id == input.workflow_id:
            return StepResult(changed=True, applied_by=row.run_id, detail="recorded by an earlier attempt: adopted")
        return StepResult(changed=False, applied_by=row.run_id, detail=f"applied meanwhile by run {row.run_id}")

    @activity.defn(name="migrate_schema.verify")
    @classified(classify_postgres)
    async def verify(self, input: VerifyMigrationsInput) -> VerifyMigrationsResult:
        """The ledger holds every planned version with its checksum; what this run created exists."""
        spec = input.spec
        conn = await self._databases.connect(self._databases.target(spec.database))
        try:
            ledger = {row.version: row for row in await self._ledger(conn, spec.schema_name) or []}
            checks = []
            for migration in spec.migrations:
                row = ledger.get(migration.version)
                checks.append(
                    Check(
                        name=f"ledger {migration.version}",
                        passed=row is not None and row.checksum == migration.sha256,
                        detail=f"recorded by {row.run_id}, checksum {row.checksum[:12]}…" if row else "not recorded",
                    )
                )
            applied = [m.sql for m in spec.migrations if m.version in input.applied_versions]
            for expected in expected_objects(applied, spec.schema_name):
                checks.append(await self._probe_object(conn, expected))
        finally:
            await conn.close()
        return VerifyMigrationsResult(checks=checks)

    @staticmethod
    async def _probe_object(conn: Any, expected: Any) -> Check:
        relation = f"{quote_ident(expected.schema_name)}.{quote_ident(expected.name)}"
        if expected.column:
            found = await conn.fetchval(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) "
                "AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                relation,
                expected.column,
            )
            return Check(
                name=f"column {expected.describe()}", passed=bool(found), detail="exists" if found else "missing"
            )
        row = await conn.fetchrow(
            "SELECT c.relkind, i.indisvalid FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.oid = to_regclass($1)",
            relation,
        )
        if row is None:
            return Check(name=f"relation {expected.describe()}", passed=False, detail="missing")
        invalid = row["indisvalid"] is False
        detail = "an invalid index (a CONCURRENTLY build failed)" if invalid else "exists"
        return Check(name=f"relation {expected.describe()}", passed=not invalid, detail=detail)
