"""MigrateSchema's plan is a pure function of spec and ledger; the workflow reads its steps from it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.migrate_schema import LedgerRow, plan_migrations
from contracts.migrate_schema import MigrateSchemaSpec, checksum_of
from workflows.migrate_schema import pending_statements, step_timeout

CREATE = "SET lock_timeout = '1s'; CREATE TABLE t (a int)"
INDEX = "CREATE INDEX CONCURRENTLY t_a ON t (a)"


def spec(**extra: object) -> MigrateSchemaSpec:
    migrations = [{"version": "0001_t", "sql": CREATE}, {"version": "0002_t_a", "sql": INDEX}]
    return MigrateSchemaSpec.model_validate({"database": "app", "migrations": migrations, **extra})


def test_the_same_spec_and_ledger_always_give_the_same_plan_hash() -> None:
    ledger = [LedgerRow(version="0001_t", checksum=checksum_of(CREATE), run_id="r1")]

    assert plan_migrations(spec(), ledger).hash() == plan_migrations(spec(), list(ledger)).hash()
    assert plan_migrations(spec(), ledger).hash() != plan_migrations(spec(), None).hash()


def test_the_workflow_applies_what_the_plan_marks_pending_with_a_bounded_step_each() -> None:
    ledger = [LedgerRow(version="0001_t", checksum=checksum_of(CREATE), run_id="r1")]
    plan = plan_migrations(spec(statementTimeoutSeconds=10), ledger)

    assert {"0002_t_a": 1} == pending_statements(plan)
    assert timedelta(seconds=50) == step_timeout(spec(statementTimeoutSeconds=10), 1)


def test_a_changed_applied_migration_fails_validation_naming_it() -> None:
    ledger = [LedgerRow(version="0001_t", checksum="0" * 64, run_id="r1")]

    with pytest.raises(ApplicationError, match="0001_t") as raised:
        plan_migrations(spec(), ledger)
    assert "validation" == raised.value.type


def test_an_uninlined_directory_is_refused_by_the_worker() -> None:
    directory_spec = MigrateSchemaSpec.model_validate({"database": "app", "directory": "migrations"})

    with pytest.raises(ApplicationError, match="inlined by the client"):
        plan_migrations(directory_spec, None)


@pytest.mark.parametrize(
    ("migrations", "problem"),
    [
        ([{"version": "0002_b", "sql": "SELECT 1"}, {"version": "0001_a", "sql": "SELECT 1"}], "version order"),
        ([{"version": "0001_a", "sql": "SELECT 1"}, {"version": "0001_a", "sql": "SELECT 2"}], "unique"),
        ([{"version": "0001_a", "sql": "SELECT 1", "checksum": "0" * 64}], "checksum"),
    ],
)
def test_the_spec_refuses_unordered_duplicate_or_mis_checksummed_migrations(
    migrations: list[dict[str, str]], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        MigrateSchemaSpec.model_validate({"database": "app", "migrations": migrations})
