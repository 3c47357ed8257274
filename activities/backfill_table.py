"""The steps of BackfillTable: check the SQL, plan the key range, update in batches, verify.

The apply is one long activity: keyset batches (`key > last AND key <= upper`), each its
own short transaction, throttled to an average rate, paused while a guard is over its
threshold. Each batch's transaction also moves the run's row in the progress table
(`<schema>.opsctl_backfill_progress`: checkpoint, rows and batches so far), so what a
batch changed and what the run counts commit together: a retried attempt (killed worker,
outage, timeout, `resolve --retry`) goes on from the last committed batch and counts every
row exactly once. Heartbeats (`{"done", "total", "unit", "checkpoint"}`) are live progress only.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from activities import heartbeats
from activities.errors import classified, failure
from activities.postgres import LOCK_TIMEOUT, STATEMENT_TIMEOUT, Databases, classify_postgres, quote_ident
from activities.sql_fragments import SqlFragmentError, check_expression, check_guard_query
from contracts.backfill_table import BackfillTableSpec
from contracts.failures import FailureKind
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.run import Check

PLAN_STATEMENT_TIMEOUT = "120s"  # counting matching rows scans them once
GUARD_STATEMENT_TIMEOUT = "5s"
INTEGER_KEYS = {"smallint", "integer", "bigint"}  # checkpointed as JSON numbers, others as text
Checkpoint = int | str | None


def table_ident(table: str) -> str:
    return ".".join(quote_ident(part) for part in table.split("."))


# ---- batching math -------------------------------------------------------------------------


def batch_count(rows: int, batch_size: int) -> int:
    return math.ceil(rows / batch_size)


def throttle_delay(rows: int, elapsed: float, max_rows_per_second: int) -> float:
    """Seconds to sleep after a batch of `rows` that took `elapsed` s, so it took rows/rate s in all."""
    return max(0.0, rows / max_rows_per_second - elapsed)


def to_checkpoint(key_text: str, key_type: str) -> Checkpoint:
    return int(key_text) if key_type in INTEGER_KEYS else key_text


def range_done(checkpoint: Checkpoint, key_max: str) -> bool:
    """The last batch ended at the range's maximum. Both sides are PostgreSQL's own ::text forms."""
    return checkpoint is not None and str(checkpoint) == key_max


class BatchSql(BaseModel):
    """The statements of one batch, built from quoted identifiers and re-printed fragments."""

    upper_bound: str  # $1 lower key, $2 last key of the range, $3 batch size → the batch's last key
    update: str  # $1 lower key, $2 the batch's last key → "UPDATE n"


def batch_sql(spec: BackfillTableSpec, key_type: str, *, first: bool) -> BatchSql:
    table, key, column = table_ident(spec.table), quote_ident(spec.key_column), quote_ident(spec.set_column)
    expression, predicate = check_expression(spec.expression), check_expression(spec.predicate, "predicate")
    lower = (
        ">=" if first else ">"
    )  # the first batch includes the range's minimum; later ones start after the checkpoint
    keyed = f"{key} {lower} $1::text::{key_type} AND {key} <= $2::text::{key_type} AND ({predicate})"
    batch = f"SELECT {key} AS k FROM {table} WHERE {keyed} ORDER BY {key} LIMIT $3"
    return BatchSql(
        upper_bound=f"SELECT max(k)::text FROM ({batch}) AS batch",
        update=f"UPDATE {table} SET {column} = ({expression}) WHERE {keyed}",
    )


# ---- activity inputs and results -------------------------------------------------------------


class PlanBackfillInput(BaseModel):
    spec: BackfillTableSpec


class BackfillInput(BaseModel):
    """The approved plan's range: apply never widens it, even if new rows match meanwhile."""

    workflow_id: str
    spec: BackfillTableSpec
    key_type: str
    key_min: str
    key_max: str
    estimated_rows: int


class BackfillResult(BaseModel):
    rows_updated: int  # across all attempts
    rows_this_attempt: int
    batches_this_attempt: int
    attempt: int
    resumed_from: Checkpoint = None  # the checkpoint this attempt started after (None: from the start)
    checkpoint: Checkpoint = None  # the last key done
    paused_seconds: float = 0.0
    # This attempt's longest batch transaction (BEGIN → COMMIT): an upper bound on how long a batch
    # held its rows' locks.
    longest_batch_seconds: float = 0.0


class VerifyBackfillInput(BaseModel):
    spec: BackfillTableSpec
    key_type: str
    key_min: str
    key_max: str


# ---- progress, committed with each batch ----------------------------------------------------


PROGRESS_TABLE = "opsctl_backfill_progress"
PROGRESS_KEPT = "30 days"  # finished runs' rows are dropped after this long


def progress_table(schema_name: str) -> str:
    return f"{quote_ident(schema_name)}.{PROGRESS_TABLE}"


class ProgressSql(BaseModel):
    """The progress table's statements; every run's row is keyed by its workflow id and key range."""

    create: str
    read: str  # $1 run → (checkpoint, rows, batches)
    advance: str  # $1 run, $2 target, $3 checkpoint, $4 rows of this batch, $5 the range is done
    finish: str  # $1 run: no row of the range is left to backfill
    prune: str  # rows of finished ranges only: an open run's row stays, however old (a long needs_review)


def progress_sql(schema_name: str) -> ProgressSql:
    table = progress_table(schema_name)
    return ProgressSql(
        create=f"CREATE TABLE IF NOT EXISTS {table} (run text PRIMARY KEY, target text NOT NULL, "
        "checkpoint text NOT NULL, rows_done bigint NOT NULL, batches bigint NOT NULL, "
        "finished boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now())",
        read=f"SELECT checkpoint, rows_done, batches FROM {table} WHERE run = $1",
        advance=f"INSERT INTO {table} AS p (run, target, checkpoint, rows_done, batches, finished) "
        "VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (run) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, "
        "rows_done = p.rows_done + EXCLUDED.rows_done, batches = p.batches + 1, finished = EXCLUDED.finished, "
        "updated_at = now()",
        finish=f"UPDATE {table} SET finished = true, updated_at = now() WHERE run = $1",
        prune=f"DELETE FROM {table} WHERE finished AND updated_at < now() - interval '{PROGRESS_KEPT}'",
    )


def progress_key(input: BackfillInput) -> str:
    """One row per run and approved range: a re-planned range starts its own count."""
    return f"{input.workflow_id} [{input.key_min}, {input.key_max}]"


class BackfillActivities:
    def __init__(self, databases: Databases) -> None:
        self._databases = databases

    @activity.defn(name="backfill_table.plan")
    @classified(classify_postgres)
    async def plan(self, input: PlanBackfillInput) -> Plan:
        """Read-only: check the SQL, find the key's type and index, count matching rows and their key range."""
        spec = input.spec
        try:
            expression, predicate = check_expression(spec.expression), check_expression(spec.predicate, "predicate")
            guard = check_guard_query(spec.guard.query) if spec.guard else ""
        except SqlFragmentError as exc:
            raise failure(FailureKind.VALIDATION, str(exc)) from None
        table, key = table_ident(spec.table), quote_ident(spec.key_column)
        conn = await self._databases.connect(self._databases.target(spec.database))
        try:
            # READ ONLY: the fragments are evaluated here, and a function that writes fails instead.
            async with conn.transaction(readonly=True):
                await conn.execute(f"SET LOCAL statement_timeout = '{PLAN_STATEMENT_TIMEOUT}'")
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                key_type = await self._key_type(conn, spec)
                # Type-checks the expression against the column as the real UPDATE will; EXPLAIN runs nothing.
                await conn.execute(f"EXPLAIN {batch_sql(spec, key_type, first=True).update}", None, None)
                rows, key_min, key_max = await conn.fetchrow(
                    f"SELECT count(*), min({key})::text, max({key})::text FROM {table} WHERE ({predicate})"
                )
                if spec.guard:
                    await self._guard_value(conn, guard)
                schema_name = await self._progress_schema(conn, spec)
        finally:
            await conn.close()
        where = f"{spec.database}/{spec.table}"
        facts = {
            "table": spec.table,
            "key_column": spec.key_column,
            "key_type": key_type,
            "set_column": spec.set_column,
            "expression": expression,
            "predicate": predicate,
            "batch_size": str(spec.batch_size),
            "max_rows_per_second": str(spec.max_rows_per_second),
        }
        if spec.guard:
            facts.update(guard=guard, guard_max_value=str(spec.guard.max_value))
        if not rows:
            action = PlannedAction(
                action=Action.NOOP,
                resource_type="postgres:table",
                resource_id=where,
                reason=f"no rows match the predicate ({predicate}): nothing to backfill",
                reversible=True,
                rollback=Rollback.NONE,
                observed={**facts, "matching_rows": "0"},
            )
            return Plan(kind="BackfillTable", target=f"table {where}", actions=[action])
        # The order of magnitude is approved (hashed): rows growing tenfold needs a new approval,
        # ordinary growth of a live table does not.
        facts["rows_order_of_magnitude"] = f"1e{len(str(rows)) - 1}"
        action = PlannedAction(
            action=Action.MODIFY,
            resource_type="postgres:table",
            resource_id=where,
            reason=f"set {spec.set_column} = {expression} where {predicate}, "
            f"in key order of {spec.key_column}, {spec.batch_size} rows per transaction",
            reversible=False,  # the overwritten values are not kept
            rollback=Rollback.NONE,
            observed=facts,
        )
        # The size of the work is an estimate of a table that may be live: shown to the
        # reviewer as a noop (context, outside the plan hash), so new rows do not void the
        # approval. Apply walks the range of the latest plan; verify catches rows beyond it.
        estimate = PlannedAction(
            action=Action.NOOP,
            resource_type="postgres:table",
            resource_id=where,
            reason=f"estimate when planned: {rows} matching rows, key {spec.key_column} in [{key_min}, {key_max}]",
            reversible=True,
            rollback=Rollback.NONE,
            observed={
                "matching_rows": str(rows),
                "key_min": key_min,
                "key_max": key_max,
                "batches": str(batch_count(rows, spec.batch_size)),
                "min_duration_seconds": str(math.ceil(rows / spec.max_rows_per_second)),
                "progress_table": f"{schema_name}.{PROGRESS_TABLE}",
            },
        )
        return Plan(kind="BackfillTable", target=f"table {where}", actions=[action, estimate])

    async def _key_type(self, conn: Any, spec: BackfillTableSpec) -> str:
        table = table_ident(spec.table)
        if await conn.fetchval("SELECT to_regclass($1)", table) is None:
            raise failure(FailureKind.VALIDATION, f"table {spec.table!r} does not exist in {spec.database!r}")
        columns = dict(
            await conn.fetch(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname = ANY($2)",
                table,
                [spec.key_column, spec.set_column],
            )
        )
        for column in (spec.key_column, spec.set_column):
            if column not in columns:
                raise failure(FailureKind.VALIDATION, f"column {column!r} does not exist in table {spec.table!r}")
        indexed = await conn.fetchval(
            "SELECT EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = c.relam JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "WHERE i.indrelid = $1::regclass AND a.attname = $2 AND i.indkey[0] = a.attnum "
            "AND am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL)",
            table,
            spec.key_column,
        )
        if not indexed:
            raise failure(
                FailureKind.UNSAFE,
                f"no btree index leads with {spec.key_column!r}: every batch would scan the whole table",
            )
        return str(columns[spec.key_column])

    @staticmethod
    async def _progress_schema(conn: Any, spec: BackfillTableSpec) -> str:
        """The table's schema, where the run keeps its progress; refused if the role cannot keep it there."""
        schema_name, allowed = await conn.fetchrow(
            "SELECT n.nspname, CASE WHEN to_regclass(format('%I.%I', n.nspname, $2::text)) IS NULL "
            "THEN has_schema_privilege(n.oid, 'CREATE') ELSE "
            "has_table_privilege(format('%I.%I', n.nspname, $2::text), 'SELECT') "
            "AND has_table_privilege(format('%I.%I', n.nspname, $2::text), 'INSERT') "
            "AND has_table_privilege(format('%I.%I', n.nspname, $2::text), 'UPDATE') END "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
            table_ident(spec.table),
            PROGRESS_TABLE,
        )
        if not allowed:
            raise failure(
                FailureKind.VALIDATION,
                f"the backfill keeps its progress in {schema_name}.{PROGRESS_TABLE}, and this role may not: "
                f"grant it CREATE on schema {schema_name}, or create the table and grant SELECT, INSERT, UPDATE on it",
            )
        return str(schema_name)

    @staticmethod
    async def _guard_value(conn: Any, guard_sql: str) -> float | None:
        """The guard's one number (an interval counts in seconds); None if it returned NULL."""
        value = await conn.fetchval(guard_sql)
        if value is None:
            return None
        if isinstance(value, timedelta):
            return value.total_seconds()
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise failure(FailureKind.VALIDATION, f"the guard query returned {value!r}, not a number")
        return float(value)

    @activity.defn(name="backfill_table.backfill")
    @classified(classify_postgres)
    async def backfill(self, input: BackfillInput) -> BackfillResult:
        """Every batch of the approved range, resumed after the last committed batch."""
        info = activity.info()
        spec = input.spec
        first_sql, next_sql = batch_sql(spec, input.key_type, first=True), batch_sql(spec, input.key_type, first=False)
        guard = check_guard_query(spec.guard.query) if spec.guard else ""
        run = progress_key(input)
        conn = await self._databases.connect(self._databases.target(spec.database))
        try:
            # One session lock for the whole run: a second backfill of this table is a conflict.
            lock = f"opsctl:backfill:{spec.database}/{spec.table}"
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock):
                raise failure(FailureKind.CONFLICT, f"another operation holds the lock on {lock}")
            progress = progress_sql(await self._progress_schema(conn, spec))
            async with conn.transaction():  # concurrent CREATE IF NOT EXISTS can collide: one at a time
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('opsctl:backfill:progress'))")
                await conn.execute(progress.create)
                await conn.execute(progress.prune)
                committed = await conn.fetchrow(progress.read, run)
            # For every batch after this, set once for the session (two round trips fewer per batch).
            await conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'; SET statement_timeout = '{STATEMENT_TIMEOUT}'")
            checkpoint = None if committed is None else to_checkpoint(committed["checkpoint"], input.key_type)
            result = BackfillResult(
                rows_updated=0 if committed is None else committed["rows_done"],
                rows_this_attempt=0,
                batches_this_attempt=0,
                attempt=info.attempt,
                resumed_from=checkpoint,
                checkpoint=checkpoint,
            )
            while not range_done(result.checkpoint, input.key_max):
                if spec.guard:
                    result.paused_seconds += await self._wait_for_guard(conn, guard, spec, input, result)
                started = time.monotonic()
                sql = first_sql if result.checkpoint is None else next_sql
                lower = input.key_min if result.checkpoint is None else str(result.checkpoint)
                began = time.monotonic()
                async with conn.transaction():
                    upper = await conn.fetchval(sql.upper_bound, lower, input.key_max, spec.batch_size)
                    if upper is None:
                        await conn.execute(progress.finish, run)
                        break
                    status = await conn.execute(sql.update, lower, upper)
                    updated = int(status.split()[-1])
                    target, last = f"{spec.database}/{spec.table}", range_done(upper, input.key_max)
                    await conn.execute(progress.advance, run, target, upper, updated, last)
                result.longest_batch_seconds = max(result.longest_batch_seconds, time.monotonic() - began)
                result.rows_updated += updated
                result.rows_this_attempt += updated
                result.batches_this_attempt += 1
                result.checkpoint = to_checkpoint(upper, input.key_type)
                self._heartbeat(input, result)
                if range_done(result.checkpoint, input.key_max):
                    break  # no throttle sleep, no guard check after the last batch
                # Pace each batch on its own (work + sleep ≥ rows/rate): a slow batch or a guard
                # pause earns no credit, so the rate never bursts above the limit to catch up.
                delay = throttle_delay(updated, time.monotonic() - started, spec.max_rows_per_second)
                await self._sleep(delay, input, result)
        finally:
            await _close(conn)
        return result

    @activity.defn(name="backfill_table.progress")
    @classified(classify_postgres)
    async def progress(self, input: BackfillInput) -> int:
        """Read-only: the rows this run's batches committed, from the progress table (0: none yet)."""
        spec = input.spec
        conn = await self._databases.connect(self._databases.target(spec.database))
        try:
            schema_name = await self._progress_schema(conn, spec)
            if await conn.fetchval("SELECT to_regclass($1)", progress_table(schema_name)) is None:
                return 0
            committed = await conn.fetchrow(progress_sql(schema_name).read, progress_key(input))
        finally:
            await conn.close()
        return 0 if committed is None else int(committed["rows_done"])

    @staticmethod
    def _heartbeat(input: BackfillInput, result: BackfillResult, paused: str = "") -> None:
        details: dict[str, Any] = {"done": result.rows_updated, "total": input.estimated_rows, "unit": "rows"}
        if result.checkpoint is not None:
            details["checkpoint"] = result.checkpoint
        if paused:
            details["paused"] = paused
        heartbeats.report(details)

    async def _sleep(self, seconds: float, input: BackfillInput, result: BackfillResult, paused: str = "") -> None:
        """Sleep in short slices, heartbeating, so cancellation and a killed worker are noticed."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 1.0))
            self._heartbeat(input, result, paused)

    async def _wait_for_guard(
        self, conn: Any, guard_sql: str, spec: BackfillTableSpec, input: BackfillInput, result: BackfillResult
    ) -> float:
        """Block while the guard is over its threshold; returns the seconds paused."""
        assert spec.guard is not None
        started = time.monotonic()
        while True:
            async with conn.transaction(readonly=True):
                await conn.execute(f"SET LOCAL statement_timeout = '{GUARD_STATEMENT_TIMEOUT}'")
                value = await self._guard_value(conn, guard_sql)
            if value is not None and value <= spec.guard.max_value:
                return time.monotonic() - started
            paused = time.monotonic() - started
            if paused > spec.guard.max_pause_seconds:
                raise failure(
                    FailureKind.DEPENDENCY_UNAVAILABLE,
                    f"paused {paused:.0f}s, longer than maxPauseSeconds: guard value {value} > {spec.guard.max_value}",
                )
            reason = f"guard value {'none' if value is None else f'{value:g}'} > {spec.guard.max_value:g}"
            self._heartbeat(input, result, reason)
            await self._sleep(spec.guard.poll_seconds, input, result, reason)

    @activity.defn(name="backfill_table.verify")
    @classified(classify_postgres)
    async def verify(self, input: VerifyBackfillInput) -> list[Check]:
        """No row matches the predicate any more; rows outside the planned range are named apart."""
        spec = input.spec
        table, key = table_ident(spec.table), quote_ident(spec.key_column)
        predicate = check_expression(spec.predicate, "predicate")
        conn = await self._databases.connect(self._databases.target(spec.database))
        try:
            async with conn.transaction(readonly=True):
                await conn.execute(f"SET LOCAL statement_timeout = '{PLAN_STATEMENT_TIMEOUT}'")
                left, in_range = await conn.fetchrow(
                    f"SELECT count(*), count(*) FILTER (WHERE {key} BETWEEN $1::text::{input.key_type} "
                    f"AND $2::text::{input.key_type}) FROM {table} WHERE ({predicate})",
                    input.key_min,
                    input.key_max,
                )
        finally:
            await conn.close()
        detail = (
            "no row matches the predicate"
            if not left
            else f"{left} rows still match ({in_range} in the planned key range, {left - in_range} outside it)"
        )
        return [Check(name="no rows left to backfill", passed=not left, detail=detail)]


async def _close(conn: Any) -> None:
    """Close politely; a connection interrupted mid-query (cancelled attempt) is dropped instead."""
    try:
        await asyncio.wait_for(conn.close(), timeout=5)
    except Exception:  # the session ends either way; its advisory lock goes with it
        conn.terminate()
