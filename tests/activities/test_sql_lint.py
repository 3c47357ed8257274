"""The migration linter on a corpus of safe and unsafe statements, and the SQL helpers around it."""

from __future__ import annotations

import pytest

from activities.sql_lint import (
    SEVERITY,
    MigrationSqlError,
    concurrent_index_name,
    expected_objects,
    lint,
    parse_statements,
    runs_outside_transaction,
)
from contracts.migrate_schema import LintRule, Severity

# Every migration below sets lock_timeout first, so only the rule under test shows up.
LOCK = "SET lock_timeout = '2s';\n"

R = LintRule
CORPUS: list[tuple[str, str, list[LintRule]]] = [
    # --- safe ---
    ("new table", "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)", []),
    ("index built concurrently", "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email)", []),
    ("index on a table created in the same migration", "CREATE TABLE t (a int); CREATE INDEX t_a ON t (a)", []),
    ("nullable column without default", "ALTER TABLE users ADD COLUMN nickname text", []),
    ("constant default", "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free'", []),
    ("stable default now()", "ALTER TABLE users ADD COLUMN seen_at timestamptz DEFAULT now()", []),
    (
        "foreign key NOT VALID",
        "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        [],
    ),
    ("check NOT VALID", "ALTER TABLE users ADD CONSTRAINT email_set CHECK (email <> '') NOT VALID", []),
    ("validate a constraint", "ALTER TABLE orders VALIDATE CONSTRAINT orders_user", []),
    ("unique through an existing index", "ALTER TABLE users ADD CONSTRAINT users_email UNIQUE USING INDEX ue", []),
    ("drop index concurrently if exists", "DROP INDEX CONCURRENTLY IF EXISTS users_email", []),
    ("drop a constraint if exists", "ALTER TABLE users DROP CONSTRAINT IF EXISTS email_set", []),
    ("data change", "UPDATE users SET plan = 'free' WHERE plan IS NULL", []),
    # --- unsafe and warnings ---
    ("index without CONCURRENTLY", "CREATE INDEX users_email ON users (email)", [R.CREATE_INDEX_NOT_CONCURRENTLY]),
    (
        "unique index without CONCURRENTLY",
        "CREATE UNIQUE INDEX users_email ON app.users (email)",
        [R.CREATE_INDEX_NOT_CONCURRENTLY],
    ),
    (
        "volatile default",
        "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
        [R.ADD_COLUMN_VOLATILE_DEFAULT],
    ),
    (
        "volatile default in an expression",
        "ALTER TABLE t ADD COLUMN r int DEFAULT (random() * 10)::int",
        [R.ADD_COLUMN_VOLATILE_DEFAULT],
    ),
    ("serial column", "ALTER TABLE users ADD COLUMN seq bigserial", [R.ADD_COLUMN_VOLATILE_DEFAULT]),
    ("identity column", "ALTER TABLE t ADD COLUMN n int GENERATED ALWAYS AS IDENTITY", [R.ADD_COLUMN_VOLATILE_DEFAULT]),
    (
        "default of unknown volatility",
        "ALTER TABLE users ADD COLUMN code text DEFAULT make_code()",
        [R.UNKNOWN_DEFAULT_VOLATILITY],
    ),
    ("set not null", "ALTER TABLE users ALTER COLUMN email SET NOT NULL", [R.SET_NOT_NULL]),
    (
        "foreign key validated under lock",
        "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)",
        [R.CONSTRAINT_WITHOUT_NOT_VALID],
    ),
    ("check validated under lock", "ALTER TABLE users ADD CHECK (email <> '')", [R.CONSTRAINT_WITHOUT_NOT_VALID]),
    (
        "unique constraint builds an index",
        "ALTER TABLE users ADD CONSTRAINT ue UNIQUE (email)",
        [R.UNIQUE_WITHOUT_INDEX],
    ),
    ("column type change", "ALTER TABLE users ALTER COLUMN id TYPE bigint", [R.COLUMN_TYPE_CHANGE]),
    (
        "several commands in one ALTER",
        "ALTER TABLE users ALTER COLUMN id TYPE bigint, ALTER COLUMN email SET NOT NULL",
        [R.COLUMN_TYPE_CHANGE, R.SET_NOT_NULL],
    ),
    ("drop table", "DROP TABLE users", [R.DROP_WITHOUT_IF_EXISTS, R.DROPS_DATA]),
    ("drop table if exists", "DROP TABLE IF EXISTS users", [R.DROPS_DATA]),
    ("drop index", "DROP INDEX users_email", [R.DROP_WITHOUT_IF_EXISTS]),
    ("drop column", "ALTER TABLE users DROP COLUMN nickname", [R.DROP_WITHOUT_IF_EXISTS, R.DROPS_DATA]),
    ("truncate", "TRUNCATE users", [R.DROPS_DATA]),
    (
        "CONCURRENTLY together with other statements",
        "ALTER TABLE users ADD COLUMN x int; CREATE INDEX CONCURRENTLY users_x ON users (x)",
        [R.CONCURRENTLY_WITH_OTHER_STATEMENTS],
    ),
    ("unnamed concurrent index", "CREATE INDEX CONCURRENTLY ON users (email)", [R.UNNAMED_CONCURRENT_INDEX]),
]


@pytest.mark.parametrize(("sql", "rules"), [(sql, rules) for _, sql, rules in CORPUS], ids=[c[0] for c in CORPUS])
def test_each_statement_of_the_corpus_has_its_expected_findings(sql: str, rules: list[LintRule]) -> None:
    findings = lint(LOCK + sql)

    assert rules == [f.rule for f in findings]
    assert all(f.severity is SEVERITY[f.rule] for f in findings)
    assert all(f.statement >= 2 for f in findings), "statement numbers count the SET as statement 1"


def test_the_corpus_is_large_and_covers_every_rule_but_lock_timeout() -> None:
    covered = {rule for _, _, rules in CORPUS for rule in rules}
    assert len(CORPUS) >= 15
    assert set(LintRule) - {LintRule.MISSING_LOCK_TIMEOUT} == covered


def test_a_migration_without_lock_timeout_gets_one_info_finding_for_the_whole_migration() -> None:
    findings = lint("CREATE TABLE t (a int); CREATE TABLE u (b int)")

    assert [(0, LintRule.MISSING_LOCK_TIMEOUT, Severity.INFO)] == [(f.statement, f.rule, f.severity) for f in findings]


def test_severities_block_only_what_holds_long_locks_or_breaks_retries() -> None:
    unsafe = {rule for rule, severity in SEVERITY.items() if severity is Severity.UNSAFE}

    assert set(LintRule) == set(SEVERITY)
    assert {
        R.CREATE_INDEX_NOT_CONCURRENTLY,
        R.ADD_COLUMN_VOLATILE_DEFAULT,
        R.SET_NOT_NULL,
        R.CONSTRAINT_WITHOUT_NOT_VALID,
        R.UNIQUE_WITHOUT_INDEX,
        R.COLUMN_TYPE_CHANGE,
        R.CONCURRENTLY_WITH_OTHER_STATEMENTS,
        R.UNNAMED_CONCURRENT_INDEX,
    } == unsafe


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("CREAT TABLE t (a int)", "does not parse"),
        ("BEGIN; CREATE TABLE t (a int); COMMIT", "controls the transaction"),
        ("SET lock_timeout = '1s'", "no statements"),
        ("-- only a comment", "no statements"),
    ],
)
def test_sql_opsctl_will_not_run_is_refused_with_the_reason(sql: str, problem: str) -> None:
    with pytest.raises(MigrationSqlError, match=problem):
        parse_statements(sql)


def test_statements_keep_their_text_and_concurrently_ones_run_outside_a_transaction() -> None:
    statements = parse_statements("SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON s.t (a);")

    assert ["SET lock_timeout = '2s'", "CREATE INDEX CONCURRENTLY i ON s.t (a)"] == [s.text for s in statements]
    assert runs_outside_transaction(statements)
    assert ("s", "i") == concurrent_index_name(statements[1])
    assert not runs_outside_transaction(parse_statements("CREATE INDEX i ON t (a)"))
    assert runs_outside_transaction(parse_statements("REINDEX INDEX CONCURRENTLY i"))
    assert runs_outside_transaction(parse_statements("VACUUM ANALYZE t"))
    assert not runs_outside_transaction(parse_statements("ANALYZE t"))


def test_expected_objects_follow_creates_drops_and_renames_across_migrations() -> None:
    migrations = [
        "CREATE TABLE t (a int); CREATE INDEX t_a ON t (a); ALTER TABLE t ADD COLUMN b int",
        "CREATE TABLE other.o (x int); CREATE TABLE gone (y int); CREATE INDEX gone_y ON gone (y)",
        "DROP TABLE gone; ALTER TABLE t ADD COLUMN c int; ALTER TABLE t RENAME COLUMN c TO d",
    ]

    described = [o.describe() for o in expected_objects(migrations, "app")]

    assert ["app.t", "app.t_a", "app.t.b", "other.o"] == described


def test_runs_whose_ids_share_63_characters_have_distinct_session_names() -> None:
    """PostgreSQL keeps 63 characters of application_name: the digest comes first, so one run never
    mistakes another's migration lock for its own earlier attempt."""
    from activities.migrate_schema import MAX_APPLICATION_NAME, application_name

    first, second = "MigrateSchema-prod-" + "x" * 60 + "-1", "MigrateSchema-prod-" + "x" * 60 + "-2"
    assert application_name(first) != application_name(second)
    assert len(application_name(first)) <= MAX_APPLICATION_NAME
    assert application_name(first) == application_name(first)
