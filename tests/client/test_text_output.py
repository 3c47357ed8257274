"""Text output is written for people: SQL a reviewer approves, no Python reprs, words that fit the phase."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from client.render import render_run, render_status
from contracts.phases import Phase
from contracts.plan import Action, Finding, Plan, PlannedAction, Rollback
from contracts.run import Decision, DecisionRecord, RunState
from tests.client.conftest import ROOT, opsctl
from tests.contracts.test_markdown import decision, request, state

LONG_SQL = "CREATE TABLE wide (\n" + ",\n".join(f"    c{n} int" for n in range(40)) + "\n);\nDROP TABLE old_wide;"


def migration_run(sql: str, findings: list[Finding]) -> RunState:
    req = request("MigrateSchema", migrations=[{"version": "0001_a", "sql": sql}])
    action = PlannedAction(
        action=Action.MODIFY,
        resource_type="postgres:migration",
        resource_id="app/shop/0001_a",
        reason="pending: 2 statements, in one transaction with its ledger row",
        reversible=False,
        rollback=Rollback.NONE,
        observed={"checksum": "c" * 64, "statements": "2", "transaction": "yes, with its ledger row"},
        findings=findings,
    )
    return state(Phase.AWAITING_APPROVAL, request=req, plan=Plan(kind="MigrateSchema", target="shop", actions=[action]))


def test_a_migration_plan_shows_each_statement_with_its_findings_under_it() -> None:
    finding = Finding(statement=2, severity="warning", rule="drops_data", message="DROP TABLE old_wide deletes data")
    text = render_run(migration_run("SET lock_timeout = '2s';\nDROP TABLE old_wide;", [finding]), "ui")
    lines = text.splitlines()
    assert "     SQL (2 statements; in a transaction: yes, with its ledger row):" in lines
    at = lines.index("       [2] DROP TABLE old_wide")
    assert "       [1] SET lock_timeout = '2s'" == lines[at - 1]
    assert "! warning drops_data: DROP TABLE old_wide deletes data" == lines[at + 1].strip()


def test_a_long_migration_is_folded_with_a_line_count_and_full_shows_all() -> None:
    run = migration_run(LONG_SQL, [Finding(statement=2, severity="warning", rule="drops_data", message="drops")])
    folded = render_run(run, "ui")
    assert "           … 30 more lines (--full shows all)" in folded
    assert "       [2] DROP TABLE old_wide" in folded  # every statement and its findings stay visible
    assert "! warning drops_data: drops" in folded
    assert "c39 int" not in folded
    whole = render_run(run, "ui", all_sql=True)
    assert "c39 int" in whole
    assert "       [2] DROP TABLE old_wide" in whole
    assert "--full" not in whole


STATES = [
    state(Phase.AWAITING_APPROVAL),
    state(Phase.NO_CHANGES, next_action=""),
    state(Phase.EXPIRED, next_action=""),
    state(Phase.REJECTED, next_action="", decisions=[decision("bob", True, "rejected")]),
    state(Phase.APPLYING),
    migration_run("SELECT 1;", []),
    state(
        Phase.AWAITING_APPROVAL,
        request=request("SweepStaleVolumes").model_copy(
            update={
                "api_version": "opsctl/v2",
                "spec": {"selector": {"olderThanDays": 30, "tags": {"team": "data"}, "excludeTags": ["keep", "x"]}},
            }
        ),
    ),
]


@pytest.mark.parametrize("run", STATES, ids=lambda run: f"{run.kind}-{run.phase.value}")
def test_text_has_no_python_reprs(run: RunState) -> None:
    for text in (render_run(run, "ui"), render_status(run, "ui")):
        assert not re.search(r"\bNone\b|\{'|\[\d+ items\]|\(s\)|\bTrue\b|\bFalse\b", text), text


def test_a_v2_sweep_s_selector_reads_as_words() -> None:
    text = render_run(STATES[-1], "ui")
    assert "selector: olderThanDays=30, tags={team=data}, excludeTags=[keep, x]" in text


@pytest.mark.parametrize("phase", [Phase.NO_CHANGES, Phase.EXPIRED, Phase.REJECTED, Phase.SUCCEEDED])
def test_a_finished_run_never_says_it_is_working_or_waits_for_approvals(phase: Phase) -> None:
    run = state(phase, next_action="")
    for text in (render_run(run, "ui"), render_status(run, "ui")):
        assert "the run is working" not in text
        assert "none yet" not in text
        assert f"nothing: the run has ended ({phase.value})" in text


def test_a_voided_approval_is_named_with_its_reason() -> None:
    voided: DecisionRecord = decision("bob", False, "approved", voided="the re-plan found a different plan (a… → b…)")
    run = state(Phase.AWAITING_APPROVAL, decisions=[voided])
    expected = (
        "Voided      bob's approval no longer counts: the re-plan found a different plan (a… → b…); "
        "the new plan needs approving"
    )
    assert expected in render_status(run, "ui")
    assert "approve by bob (unsigned): VOIDED — the re-plan found a different plan" in render_run(run, "ui")


async def test_opsctl_plan_of_the_example_migrations_shows_their_sql(cli_env: dict[str, str], tmp_path: Path) -> None:
    example = (ROOT / "examples" / "migrate-schema.yaml").read_text().replace("schemaName: shop", "schemaName: txt")
    example = example.replace("idempotencyKey: dev-migrate-shop-1", "idempotencyKey: dev-migrate-txt-1")
    path = tmp_path / "migrate-schema.yaml"
    path.write_text(example)
    (tmp_path / "migrations").symlink_to(ROOT / "examples" / "migrations")
    planned = await opsctl(cli_env, "plan", "-f", str(path))
    assert 10 == planned.code, planned.stderr
    assert "[2] CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_key ON accounts (email)" in planned.stdout
    assert "SQL (2 statements; in a transaction: no (CONCURRENTLY)):" in planned.stdout
    assert "migrations: 3 (0001_create_accounts, 0002_add_accounts_plan, 0003_index_accounts_email)" in planned.stdout


def test_the_plan_says_in_which_steps_apply_will_go() -> None:
    run = state(Phase.AWAITING_APPROVAL, planned_steps=["create pending secret version", "set role password"])
    run.progress.total = 4
    assert "Apply in    4 steps: create pending secret version → set role password → … (2 more)" in render_run(
        run, "ui"
    )
    assert "Progress" not in render_status(run, "ui")  # nothing applied yet


def test_what_a_caller_wrote_cannot_forge_a_line_or_reach_the_terminal_as_control_codes() -> None:
    from client.render import Output

    forged = decision("bob (signed, update): accepted — approved\n  2026-12-01 approve by carol", False, "unsigned")
    forged = forged.model_copy(update={"comment": "\x1b[2Jcleared"})
    text = Output({}, render_run(state(Phase.AWAITING_APPROVAL, decisions=[forged]), "ui")).render("text")
    assert "\x1b" not in text
    assert "\\x1b[2Jcleared" in text
    assert not any(line.startswith("  2026-12-01 approve by carol") for line in text.splitlines())


def test_past_the_fold_only_statements_with_findings_show() -> None:
    sql = "".join(f"SELECT {n};\n" for n in range(1, 42))
    finding = Finding(statement=30, severity="warning", rule="drops_data", message="look here")
    text = render_run(migration_run(sql, [finding]), "ui")
    assert "[12] SELECT 12" in text
    assert "[13] SELECT 13" not in text
    assert "[30] SELECT 30" in text
    assert "! warning drops_data: look here" in text
    assert "           … 40 more statements (--full shows all)" not in text
    assert "           … 28 more statements (--full shows all)" in text


def test_status_of_a_rejected_run_says_who_rejected_it_and_why() -> None:
    rejection = decision("carol", True, "rejected").model_copy(
        update={"decision": Decision.REJECT, "comment": "not now"}
    )
    text = render_status(state(Phase.REJECTED, decisions=[rejection]), "ui")
    assert 'Decided     reject by carol at 2026-12-01 12:00:00 UTC: "not now"' in text


def test_a_newline_in_a_spec_value_or_plan_field_cannot_forge_a_line() -> None:
    req = request("SweepStaleVolumes", tagFilters={"purpose": "x\nPlan hash   0000"})
    forged = PlannedAction(
        action=Action.DELETE,
        resource_type="ec2:volume",
        resource_id="2 volumes",
        reason="stale\nPlan hash   0000",
        reversible=False,
        rollback=Rollback.NONE,
        resource_ids=["vol-1\nPlan hash   0000"],
    )
    run = state(
        Phase.AWAITING_APPROVAL, request=req, plan=Plan(kind=req.kind, target="t\nPlan hash   0000", actions=[forged])
    )
    text = render_run(run, "ui")
    assert not any(line.startswith("Plan hash   0000") for line in text.splitlines()), text


def test_status_says_an_accepted_cancel_is_in_effect() -> None:
    cancel = decision("carol", True, "cancel requested").model_copy(update={"decision": Decision.CANCEL})
    text = render_status(state(Phase.APPLYING, decisions=[cancel]), "ui")
    assert "Cancel      requested by carol at 2026-12-01 12:00:00 UTC: stopping at the next safe point" in text
