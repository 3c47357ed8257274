"""The run as the Web UI shows it: summary, request details and current details, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import markdown
from contracts.phases import Phase
from contracts.plan import Action, Finding, Plan, PlannedAction, Rollback
from contracts.request import Request, parse_request
from contracts.run import (
    Check,
    Decision,
    DecisionRecord,
    Failure,
    FailureKind,
    Progress,
    Resource,
    RunState,
    StepRecord,
)
from tests.identities import policies

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HASH = "ab" * 32


def request(kind: str = "RotateDbCredential", requester: str = "alice", **spec: Any) -> Request:
    specs = {
        "RotateDbCredential": {"database": "app", "role": "app_user", "secretId": "demo/app_user"},
        "MigrateSchema": {
            "database": "app",
            "schemaName": "shop",
            "migrations": [{"version": "0001_a", "sql": "CREATE TABLE a (id int);\nCREATE INDEX ON a (id);"}],
        },
        "SweepStaleVolumes": {"olderThanDays": 30},
    }
    return parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": kind,
            "metadata": {"environment": "prod", "requester": requester, "labels": {"ticket": "CHG-1"}},
            "spec": {**specs[kind], **spec},
        }
    )


def action(resource_id: str = "demo/app_user", ids: list[str] | None = None, kind: Action = Action.MODIFY) -> Any:
    return PlannedAction(
        action=kind,
        resource_type="postgres:role" if ids is None else "ec2:volume",
        resource_id=resource_id,
        reason="set the role's password",
        reversible=ids is None,
        rollback=Rollback.COMPENSATE if ids is None else Rollback.NONE,
        resource_ids=ids or [],
    )


def state(phase: Phase = Phase.AWAITING_APPROVAL, **fields: Any) -> RunState:
    req = fields.pop("request", None) or request()
    plan = fields.pop("plan", None) or Plan(kind=req.kind, target="role app/app_user", actions=[action()])
    return RunState(
        workflow_id="RotateDbCredential-prod-CHG-1",
        kind=req.kind,
        mode="apply",
        environment="prod",
        requester="alice",
        requester_verified=True,
        phase=phase,
        request=req,
        plan=plan,
        plan_hash=HASH,
        quorum="1 approver other than the requester",
        approval_deadline=NOW + timedelta(hours=24),
        **fields,
    )


def decision(actor: str, accepted: bool, reason: str, **fields: Any) -> DecisionRecord:
    return DecisionRecord(
        decision=Decision.APPROVE,
        actor=actor,
        plan_hash=HASH,
        comment="",
        attempt_id="a1",
        accepted=accepted,
        reason=reason,
        at=NOW,
        **fields,
    )


def details(run: RunState) -> str:
    return markdown.current_details(run, policies().policy_for("prod"))


def test_the_summary_is_one_line_a_person_scans_in_a_list() -> None:
    assert "RotateDbCredential app_user@app · prod · alice" == markdown.summary(request())
    assert "MigrateSchema shop@app · prod · alice" == markdown.summary(request("MigrateSchema"))


def test_the_summary_stays_within_temporals_200_bytes_whatever_the_request_says() -> None:
    long = markdown.summary(request(requester="ä" * 128))  # the longest requester: 256 bytes
    assert len(long.encode()) <= markdown.SUMMARY_BYTES
    assert "\n" not in long
    assert long.endswith("…")


def test_the_request_details_show_every_spec_field_and_sql_as_code() -> None:
    text = markdown.request_details(request("MigrateSchema"))
    assert "| environment | `prod` |" in text
    assert "| label `ticket` | `CHG-1` |" in text
    assert "```sql\n      CREATE TABLE a (id int);\n      CREATE INDEX ON a (id);\n      ```" in text
    assert "**schemaName**: `shop`" in text


def test_a_caller_cannot_inject_markup_into_the_details() -> None:
    hostile = "x` | <script>alert(1)</script> **bold**"
    run = state(decisions=[decision(hostile, False, "refused *because*")])
    text = details(run)
    # A name is shown as code (literal text): its backtick cannot close the span and let markup out.
    assert "by `` x` | <script>alert(1)</script> **bold** `` (signal)" in text
    assert "refused \\*because\\*" in text


def test_awaiting_approval_shows_the_plan_the_hash_the_quorum_and_the_commands() -> None:
    text = details(state())
    assert "## Awaiting approval" in text
    assert "| 1 | modify | postgres:role `demo/app_user` | set the role's password | reversible (compensate) |" in text
    assert f"plan hash `{HASH}`" in text
    assert "**Quorum**: 1 approver other than the requester" in text
    assert "**approved by**: nobody yet" in text
    assert "**Deadline**: 2026-12-02 12:00:00 UTC" in text
    assert f"opsctl approve RotateDbCredential-prod-CHG-1 --plan-hash {HASH} --as YOU" in text
    assert "temporal workflow signal --workflow-id RotateDbCredential-prod-CHG-1 --name approve" in text
    assert "**refused (and recorded) here**, `prod` requires signed decisions" in text


def test_the_plan_in_the_ui_says_in_which_steps_apply_will_go() -> None:
    run = state(planned_steps=["create pending secret version", "set role password"])
    run.progress.total = 2
    assert "**Apply in 2 steps**: create pending secret version → set role password" in details(run)


def test_a_plan_of_ten_thousand_volumes_shows_counts_and_the_first_entries() -> None:
    ids = [f"vol-{n:017x}" for n in range(10_000)]
    groups = [action(f"batch {n}", ids[n * 100 : (n + 1) * 100], Action.DELETE) for n in range(100)]
    run = state(request=request("SweepStaleVolumes"), plan=Plan(kind="SweepStaleVolumes", target="EBS", actions=groups))
    text = details(run)
    assert len(text.encode()) <= markdown.DETAILS_BYTES
    assert "100 changes to 10,000 resources, 10,000 deletions" in text
    assert "vol-00000000000000000" in text
    assert ids[-1] not in text
    assert "| … | | 80 more actions | | |" in text
    assert "opsctl result RotateDbCredential-prod-CHG-1 --format json" in text


def test_a_voided_approval_is_explained_in_words() -> None:
    voided = decision("bob", False, "approved", voided="the re-plan found a different plan (aaa… → bbb…)")
    text = details(state(decisions=[voided]))
    assert "**Approval by `bob` voided**: the re-plan found a different plan (aaa… → bbb…)" in text
    assert "Refused attempts" not in text  # voided is not refused


def test_applying_shows_step_n_of_m_what_changed_and_an_eta() -> None:
    steps = [StepRecord(name="create pending secret version", started=NOW, finished=NOW + timedelta(seconds=10))]
    run = state(
        Phase.APPLYING,
        progress=Progress(step="set role password", done=1, total=4),
        steps=[*steps, StepRecord(name="set role password", started=NOW + timedelta(seconds=10))],
        changed=[Resource(resource_type="secretsmanager:secret", resource_id="demo/app_user")],
        phase_times={"applying": NOW},
    )
    text = details(run)
    assert "**Step 2 of 4**: set role password" in text
    assert "#### Changed so far\n\n- secretsmanager:secret `demo/app_user`" in text
    assert "This step started 2026-12-01 12:00:10 UTC; its live progress" in text
    assert "ETA: about 30 s (3 steps to go)" in text


def test_a_freeze_says_until_when_and_what_to_do() -> None:
    until = NOW + timedelta(hours=3)
    text = details(state(Phase.WAITING_FOR_WINDOW, frozen_until=until, next_action="wait, or cancel"))
    assert "Frozen until **2026-12-01 15:00:00 UTC**" in text
    assert "**What to do**: wait, or cancel" in text


def test_needs_review_says_why_and_what_to_do() -> None:
    run = state(Phase.NEEDS_REVIEW, uncertain=["verify: timed out"], next_action="opsctl resolve R --retry")
    text = details(run)
    assert "- verify: timed out" in text
    assert "**What to do**: opsctl resolve R --retry" in text


def test_a_finished_run_answers_the_four_questions() -> None:
    run = state(
        Phase.FAILED,
        failure=Failure(kind=FailureKind.AUTH, message="password authentication failed", step="test login"),
        checks=[Check(name="test login", passed=False, detail="refused")],
        uncertain=[],
        next_action="check the worker's credentials",
    )
    text = details(run)
    for heading in ("What was requested", "What changed", "What remains uncertain", "What can be done now"):
        assert f"#### {heading}" in text
    assert "**Outcome**: Failed — auth in test login: password authentication failed" in text
    assert "- **FAILED** test login: refused" in text
    assert "Awaiting approval" not in text
    assert "nobody yet" not in text


def test_no_changes_never_says_the_run_is_working() -> None:
    text = details(state(Phase.NO_CHANGES, next_action="nothing to do: the target is already as requested"))
    assert "## No changes needed" in text
    assert "working" not in text
    assert "approved by" not in text


def test_fit_cuts_on_a_character_boundary_and_says_where_the_rest_is() -> None:
    cut = markdown.fit("é" * 30_000, 1000, "see `opsctl result`")
    assert len(cut.encode()) <= 1000
    assert cut.endswith("see `opsctl result`")


FENCE_BREAKOUT = (
    "SET lock_timeout = '2s';\nSELECT $q$ ``` $q$;\nSELECT $x$\n~~~~\n<!--\n$x$;\n"
    "DROP TABLE IF EXISTS accounts_archive;\nSELECT $y$\n-->\n$y$;"
)


def test_sql_cannot_close_its_code_block_whatever_fences_it_holds() -> None:
    spec = {"migrations": [{"version": "0001_a", "sql": FENCE_BREAKOUT}]}
    text = markdown.request_details(request("MigrateSchema", **spec))
    opening = next(line.strip() for line in text.splitlines() if line.strip().startswith("````"))
    assert "````sql" == opening  # longer than the ``` inside
    block = text.split("````sql", 1)[1].split("````", 1)[0]
    assert "DROP TABLE IF EXISTS accounts_archive;" in block


def test_a_summary_cannot_become_a_link() -> None:
    line = markdown.summary(request(requester="[click](http://evil.example)"))
    assert "\\[click\\](http\\://evil.example)" in line
    assert "app_user@app" in line  # names keep their underscores


def test_math_and_markup_in_free_text_are_escaped_and_commands_stay_code() -> None:
    assert "costs \\$5 \\*now\\*" == markdown.plain("costs $5 *now*")
    assert "run `opsctl approve R --plan-hash H` \\*now\\*" == markdown.prose(
        "run `opsctl approve R --plan-hash H` *now*"
    )


def test_a_rejected_run_says_who_rejected_it_and_why() -> None:
    rejection = decision("carol", True, "rejected").model_copy(
        update={"decision": Decision.REJECT, "comment": "not now"}
    )
    text = details(state(Phase.REJECTED, decisions=[rejection]))
    assert "**Outcome**: Rejected — reject by `carol` at 2026-12-01 12:00:00 UTC: not now" in text


def test_refused_attempts_are_counted_with_those_the_state_no_longer_keeps() -> None:
    text = details(state(decisions=[decision("eve", False, "unsigned")], decisions_not_kept=11))
    assert "#### Refused attempts (12; all are in the history)" in text


def test_no_caller_text_becomes_a_link_or_a_terminal_escape() -> None:
    notice = "re-verify your key at https://evil.example/verify or mail help@evil.example \x1b[31m\u202e"
    text = details(state(decisions=[decision("eve\x1b[2J", False, notice)]))
    assert "https\\://evil.example/verify" in text
    assert "help\\@evil.example" in text
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "\\\\x1b\\[31m" in text  # shown, as its escape


def test_code_outside_tables_is_shown_exactly() -> None:
    assert "`email_lower || ''`" == markdown.inline("email_lower || ''")
    assert "`` a`b ``" == markdown.inline("a`b")
    assert "`a \\| b`" == markdown.inline("a | b", cell=True)
    assert "`opsctl resolve R --retry | --mark-done`" in markdown.prose("`opsctl resolve R --retry | --mark-done`")


def test_a_cut_inside_a_code_block_closes_it_before_the_note() -> None:
    cut = markdown.fit("intro\n```sql\n" + "SELECT 1;\n" * 5000 + "```", 2000, "see opsctl")
    assert cut.count("```") % 2 == 0
    assert cut.endswith("see opsctl")


def test_the_ui_shows_each_pending_migration_s_sql_from_the_run_s_own_request() -> None:
    """The static details are the starter's; what the approver reads in current details is the run's."""
    from tests.client.test_text_output import migration_run

    finding = Finding(statement=2, severity="warning", rule="drops_data", message="DROP TABLE old deletes data")
    run = migration_run("SET lock_timeout = '2s';\nDROP TABLE old;", [finding])
    text = details(run)
    assert "#### 0001\\_a" in text
    assert f"checksum `{'c' * 64}`" in text
    assert "```sql\nSET lock_timeout = '2s';\nDROP TABLE old;\n```" in text
    assert "- **warning** drops\\_data in statement 2: DROP TABLE old deletes data" in text


def test_a_finished_run_says_who_approved_it() -> None:
    approval = decision("bob", True, "approved", groups=["dba"])
    text = details(state(Phase.SUCCEEDED, decisions=[approval], next_action="nothing to do"))
    assert "**Approved by**: `bob` (dba, 2026-12-01 12:00:00 UTC)" in text
