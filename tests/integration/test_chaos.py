"""The reduced `make chaos`, inside the suite: real faults on the session's stack, counted side effects.

One SIGKILL per operation (during its main step's side effect), PostgreSQL stopped for a few
seconds under a backfill, a migration and a rotation, the AWS endpoint frozen under a sweep,
ten applies of one document at once, then a secret scan of everything those runs left. The
full campaign (every step, before/during/after, 60 s outages, the Temporal server killed,
50 callers, 10,000 fuzzed inputs) is `make chaos`; its figures are in the README.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from client.devstack import Stack
from tests.chaos import scenarios
from tests.chaos.operations import OPERATIONS
from tests.chaos.scenarios import Chaos
from worker.settings import WorkerSettings

MAIN_STEPS = {
    "RotateDbCredential": "rotate_credential.set_password",
    "SweepStaleVolumes": "sweep_volumes.delete_batch",
    "BackfillTable": "backfill_table.backfill",
    "MigrateSchema": "migrate_schema.apply_migration",
    "CreateReadReplica": "read_replica.create",
}


@pytest.fixture(scope="module")
def chaos(
    stack: Stack, client: Client, worker_settings: WorkerSettings, tmp_path_factory: pytest.TempPathFactory
) -> Chaos:
    return Chaos(stack, client, worker_settings, tmp_path_factory.mktemp("chaos"))


async def test_a_worker_killed_right_after_each_operation_s_side_effect_changes_everything_once(chaos: Chaos) -> None:
    points = [(op, MAIN_STEPS[op.kind], "during") for op in OPERATIONS]
    outcomes = await scenarios.kill_matrix(chaos, points, parallel=len(points))

    assert [] == [(o.kind, o.problems) for o in outcomes if o.problems]
    assert all(o.struck for o in outcomes)
    # Handed over by the 10 s heartbeat timeout, not the 60 s start-to-close one (a loaded CI machine adds seconds).
    assert all(o.recovery_seconds is not None and o.recovery_seconds < 45 for o in outcomes), [
        (o.kind, o.recovery_seconds) for o in outcomes
    ]


async def test_postgres_down_under_three_runs_and_aws_frozen_under_a_sweep_leave_exact_counts(chaos: Chaos) -> None:
    outcomes = [*await scenarios.postgres_outage(chaos, down_for=5), await scenarios.aws_freeze(chaos, frozen_for=5)]

    assert [] == [(o.kind, o.problems) for o in outcomes if o.problems]
    assert all(o.struck for o in outcomes)


async def test_ten_applies_of_one_document_at_once_are_one_run(chaos: Chaos) -> None:
    outcome = await scenarios.concurrent_applies(chaos, callers=10)
    assert [] == outcome.problems


async def test_no_history_log_or_output_of_those_runs_holds_a_secret(chaos: Chaos, stack: Stack) -> None:
    if not chaos.secrets:  # the tests above ran in another pytest-xdist worker: a killed rotation of its own
        rotation = next(op for op in OPERATIONS if op.kind == "RotateDbCredential")
        await scenarios.kill_matrix(chaos, [(rotation, MAIN_STEPS[rotation.kind], "during")], parallel=1)
    places, secrets, leaks = await scenarios.secret_scan(chaos, [chaos.workdir, stack.logs])

    assert [] == leaks
    assert secrets >= 3, "the old and new passwords of the rotations, and the admin's"
    assert places > len(set(chaos.workflow_ids)), "every run's histories, and the logs and outputs beside them"
    print(f"{places} histories and files searched for {secrets} secrets")


def test_the_campaign_s_figures_become_the_readme_section(tmp_path: Path) -> None:
    from tests.chaos import report

    figures = {
        "started": "2026-12-01 12:00 UTC",
        "wall_seconds": 600,
        "outcomes": [
            {"scenario": "worker SIGKILL", "kind": "BackfillTable", "fault": "x@during", "struck": True, "problems": []}
        ],
        "recovery": {"during": {"kills": 1, "median": 11.0, "max": 11.0}},
        "scan": {"places": 3, "secrets": 2, "leaks": []},
    }
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{report.BEGIN}\nold\n{report.END}\nafter\n")
    report.write_readme(readme, report.summary(figures))

    text = readme.read_text()
    assert "| worker SIGKILL | 1 | 1 of 1 | 0 |" in text
    assert "| during the side effect | 1 | 11.0 s | 11.0 s |" in text
    assert "old" not in text
    assert text.endswith(f"{report.END}\nafter\n")
    assert report.clean(figures)
