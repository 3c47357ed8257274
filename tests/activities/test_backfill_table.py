"""BackfillTable's pure parts: SQL fragment checks, the batch statements, throttle and resume math."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.backfill_table import (
    batch_count,
    batch_sql,
    range_done,
    throttle_delay,
    to_checkpoint,
)
from activities.sql_fragments import SqlFragmentError, check_expression, check_guard_query
from contracts.backfill_table import BackfillTableSpec
from workflows.backfill_table import backfill_timeout


def spec(**fields: object) -> BackfillTableSpec:
    base = {
        "database": "app",
        "table": "users",
        "keyColumn": "id",
        "setColumn": "email_lower",
        "expression": "lower(email)",
        "predicate": "email_lower IS NULL",
    }
    return BackfillTableSpec.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("fragment", "printed"),
    [
        ("lower(email)", "lower(email)"),
        ("lower(email) /* a comment */", "lower(email)"),
        ("coalesce(nick, '--') || '@x'", "COALESCE(nick, '--') || '@x'"),
        ("(SELECT name FROM teams t WHERE t.id = team_id)", "(SELECT name FROM teams AS t WHERE t.id = team_id)"),
        # Balanced parentheses that would escape a raw `AND (…)` stay one expression once re-printed.
        ("true) OR (1 = 1", "TRUE OR 1 = 1"),
    ],
)
def test_an_expression_is_run_as_reprinted_from_its_parse_tree(fragment: str, printed: str) -> None:
    assert printed == check_expression(fragment)


@pytest.mark.parametrize(
    ("fragment", "reason"),
    [
        ("1; DROP TABLE users", "does not parse"),
        ("1); DROP TABLE users; SELECT (1", "single expression"),
        ("1) FROM users WHERE (true", "exactly one expression"),
        ("1), (2", "exactly one expression"),
        ("1 -- the rest is a comment", "does not parse"),
        ("", "does not parse"),
        ("$1", "parameters"),
        ("pg_terminate_backend(42)", "pg_terminate_backend"),
        ("pg_catalog.set_config('role', 'x', false)", "set_config"),
        ("dblink_exec('x', 'DELETE FROM users')", "dblink_exec"),
        ("query_to_xml('DELETE FROM users', true, true, '')", "query_to_xml"),
        ("count(*) OVER ()", "window"),
        ("users.*", "*"),
        ("(SELECT id FROM users FOR UPDATE)", "lock rows"),
        ("(WITH gone AS (DELETE FROM users RETURNING id) SELECT count(*) FROM gone)", "modify data"),
    ],
)
def test_an_expression_that_is_not_one_safe_expression_is_refused(fragment: str, reason: str) -> None:
    with pytest.raises(SqlFragmentError, match=reason.replace("*", r"\*").replace("(", r"\(")):
        check_expression(fragment)


def test_a_guard_query_is_one_read_only_select() -> None:
    lag = "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0) FROM pg_stat_replication"
    assert "SELECT COALESCE(max(EXTRACT(EPOCH FROM replay_lag)), 0) FROM pg_stat_replication" == check_guard_query(lag)
    for bad in (
        "DELETE FROM users RETURNING 1",
        "SELECT 1; SELECT 2",
        "WITH d AS (DELETE FROM users RETURNING 1) SELECT count(*) FROM d",
        "SELECT 1 FROM users FOR UPDATE",
        "SELECT pg_sleep(60)",
    ):
        with pytest.raises(SqlFragmentError):
            check_guard_query(bad)


def test_batch_statements_quote_identifiers_and_bound_the_key_range() -> None:
    first = batch_sql(spec(table="app.users"), "bigint", first=True)
    later = batch_sql(spec(table="app.users"), "bigint", first=False)

    assert (
        'UPDATE "app"."users" SET "email_lower" = (lower(email)) WHERE "id" >= $1::text::bigint '
        'AND "id" <= $2::text::bigint AND (email_lower IS NULL)'
    ) == first.update
    assert '"id" > $1::text::bigint' in later.update
    assert later.upper_bound.endswith('ORDER BY "id" LIMIT $3) AS batch')


def test_the_spec_refuses_rewriting_its_own_key() -> None:
    with pytest.raises(ValueError, match="keyColumn and setColumn must differ"):
        spec(setColumn="id")


def test_batching_and_throttle_math() -> None:
    assert (1, 1, 2, 30) == (batch_count(1, 100), batch_count(100, 100), batch_count(101, 100), batch_count(3000, 100))
    # 500 rows at 100 rows/s must take 5 s: after 1 s of work, sleep 4 s; never a negative sleep.
    assert 4.0 == throttle_delay(500, 1.0, 100)
    assert 0.0 == throttle_delay(500, 9.0, 100)


def test_checkpoints_keep_the_key_s_type_and_end_at_the_range_s_maximum() -> None:
    assert (350, "a-key") == (to_checkpoint("350", "bigint"), to_checkpoint("a-key", "text"))
    assert (True, False, False) == (range_done(1000, "1000"), range_done(999, "1000"), range_done(None, "1000"))


def test_the_step_timeout_covers_the_throttled_duration_and_guard_pauses() -> None:
    assert timedelta(seconds=2 * 100 + 600) == backfill_timeout(spec(maxRowsPerSecond=100), 10_000)
    guarded = spec(maxRowsPerSecond=100, guard={"query": "SELECT 0", "maxValue": 1, "maxPauseSeconds": 60})
    assert timedelta(seconds=2 * 100 + 600 + 60) == backfill_timeout(guarded, 10_000)
