"""Output is a rendering of a result object: `--format json` prints the object, text renders it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contracts.failures import ExitCode
from contracts.phases import Phase
from contracts.plan import Action, Finding, PlannedAction, Rollback
from contracts.words import plural, visible

if TYPE_CHECKING:  # the run model pulls in signing (cryptography): commands that show runs import it
    from contracts.run import RunState


@dataclass
class Output:
    """What a command returns: the JSON object, its text form, and the exit code."""

    data: Any
    text: str
    exit_code: ExitCode = ExitCode.SUCCESS
    extra_json: dict[str, Any] = field(default_factory=dict)
    compact: bool = False  # JSON on one line: the last of a stream of JSON lines (`watch -o json`)

    def render(self, fmt: str) -> str:
        if fmt == "json":
            data = {**self.data, **self.extra_json} if isinstance(self.data, dict) else self.data
            return json.dumps(data, indent=None if self.compact else 2, sort_keys=False, default=str)
        return _CONTROL.sub(lambda match: repr(match.group())[1:-1], self.text)


# Terminal control characters (escape sequences, carriage returns) never reach a terminal as such,
# nor do lone surrogates (a file name or --as value that is not UTF-8): no encoding can write them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def one_line(text: str) -> str:
    """What a caller wrote (an actor, a comment), on one line: it cannot forge the next line of output."""
    return visible(text)


def run_json(state: RunState, web_ui: str) -> dict[str, Any]:
    data: dict[str, Any] = state.model_dump(mode="json")
    data["request"] = state.request.model_dump(mode="json", by_alias=True)
    data["exit_code"] = int(state.exit_code())
    data["retryable"] = state.retryable.value
    data["web_ui"] = web_ui
    return data


def run_output(state: RunState, web_ui: str, *, report: bool = True, all_sql: bool = False) -> Output:
    """The run as JSON, and as text: the whole report, or (report=False) its status."""
    text = render_run(state, web_ui, all_sql=all_sql) if report else render_status(state, web_ui)
    return Output(run_json(state, web_ui), text, state.exit_code())


def _spec_line(state: RunState) -> str:
    """The spec in one line, as the document wrote it; long values are summarised (JSON has them whole)."""

    def inner(value: object) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}={inner(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(inner(item) for item in value) + "]"
        return str(value).lower() if isinstance(value, bool) else str(value)

    def short(value: object) -> str:
        if isinstance(value, list):
            names = [one_line(str(item.get("version", "")) if isinstance(item, dict) else str(item)) for item in value]
            named = [name for name in names if name]
            listed = ", ".join(named[:3]) + (", …" if len(named) > 3 else "")
            return f"{len(value):,}" + (f" ({listed})" if listed else "")
        if isinstance(value, dict):  # nested ones too (a v2 sweep's selector): words, not Python reprs
            return one_line(", ".join(f"{k}={inner(v)}" for k, v in value.items()))
        if isinstance(value, bool):
            return "yes" if value else "no"
        text = one_line(str(value))
        return text if len(text) <= 60 and "\n" not in text else f"{text.splitlines()[0][:50]}… ({len(text):,} chars)"

    # Unset fields are left out: the document did not use them.
    return ", ".join(
        f"{key}: {short(value)}" for key, value in state.request.spec.items() if value not in (None, [], {})
    )


LISTED_IDS = 8  # ids shown per grouped action in text; JSON has them all
FOLDED_SQL_LINES = 12  # SQL lines shown per migration unless --full


def render_plan(state: RunState, all_sql: bool = False) -> list[str]:
    if state.plan is None:
        return [
            "Plan        " + ("none: the run ended before planning" if state.phase.terminal else "not computed yet")
        ]
    changes = [step for step in state.plan.actions if step.action is not Action.NOOP]
    lines = [
        f"Plan        {one_line(state.plan.target)}: {plural(len(changes), 'change')}",
        f"            plan hash {state.plan_hash}",
    ]
    sql = _migration_sql(state)
    for number, step in enumerate(state.plan.actions, 1):
        undo = _rollback(step)
        lines.append(f"  {number}. {step.action.value:<6} {one_line(step.resource_type)} {one_line(step.resource_id)}")
        lines.append(f"     why: {one_line(step.reason)}" + ("" if step.action is Action.NOOP else f"  [{undo}]"))
        if step.observed:
            facts = "; ".join(f"{key}={value}" for key, value in step.observed.items())
            lines.append(f"     observed: {one_line(facts)}")
        if step.resource_ids:
            shown = one_line(", ".join(step.resource_ids[:LISTED_IDS]))
            more = len(step.resource_ids) - LISTED_IDS
            lines.append(f"     {shown}" + (f" (+{more:,} more; --format json lists all)" if more > 0 else ""))
        version = step.resource_id.rsplit("/", 1)[-1]
        if step.action is not Action.NOOP and version in sql:
            lines += _statements(sql[version], step.findings, step.observed.get("transaction", ""), all_sql)
        elif step.findings:
            lines += [f"     {_finding(finding)}" for finding in step.findings]
    return lines + _apply_steps(state)


def _apply_steps(state: RunState) -> list[str]:
    """How apply will go, in the same steps `apply --wait` and `status` count."""
    total = state.progress.total
    if not total or not state.planned_steps:
        return []
    more = total - len(state.planned_steps)
    return [
        f"Apply in    {plural(total, 'step')}: "
        + " → ".join(state.planned_steps)
        + (f" → … ({more:,} more)" if more > 0 else "")
    ]


def _rollback(step: PlannedAction) -> str:
    if not step.reversible:
        return "not reversible"
    if step.rollback is Rollback.NONE:
        return "reversible; nothing to roll back automatically"
    return f"reversible: {step.rollback.value}"


def _migration_sql(state: RunState) -> dict[str, str]:
    """Version → SQL of the request's migrations (MigrateSchema), for showing what a plan runs."""
    from contracts.migrate_schema import sql_by_version

    return sql_by_version(state.request.spec) if state.kind == "MigrateSchema" else {}


def _finding(finding: Finding) -> str:
    accepted = f" [acknowledged{': ' + finding.note if finding.note else ''}]" if finding.acknowledged else ""
    return one_line(f"! {finding.severity} {finding.rule}: {finding.message}{accepted}")


def _statements(sql: str, findings: list[Finding], transaction: str, all_sql: bool) -> list[str]:
    """Every statement of a migration, numbered as the linter counts them, each finding under its statement."""
    from contracts.migrate_schema import split_statements

    try:
        statements = split_statements(sql)
    except ValueError:
        statements = [sql]
    how = f"; in a transaction: {transaction}" if transaction else ""
    lines = [f"     SQL ({plural(len(statements), 'statement')}{how}):"]
    budget, hidden = FOLDED_SQL_LINES, 0
    for number, statement in enumerate(statements, 1):
        # Past the budget, only statements with findings show (their first line); long bodies fold.
        concerns = [f for f in findings if f.statement == number]
        if not all_sql and budget <= 0 and not concerns:
            hidden += 1
            continue
        first, *rest = statement.strip().splitlines() or [""]
        shown = rest if all_sql else rest[: max(budget - 1, 0)]
        budget -= 1 + len(shown)
        lines += [f"     {f'[{number}]':>5} {first}", *(f"           {line}" for line in shown)]
        if len(shown) < len(rest):
            lines.append(f"           … {plural(len(rest) - len(shown), 'more line')} (--full shows all)")
        lines += [f"           {_finding(f)}" for f in concerns]
    if hidden:
        lines.append(f"           … {plural(hidden, 'more statement')} (--full shows all)")
    lines += [f"     {_finding(f)}" for f in findings if not 0 < f.statement <= len(statements)]
    return lines


def render_decisions(state: RunState) -> list[str]:
    if not state.decisions:
        if not state.required_approvals:
            return ["Approvals   not required in this environment"]
        if state.phase.terminal or state.phase not in _APPROVABLE:
            return ["Approvals   none"]
        return [f"Approvals   none yet: needs {state.quorum}"]
    lines = ["Decisions"]
    for record in state.decisions:
        verdict = "VOIDED" if record.voided else "accepted" if record.accepted else "REFUSED"
        reason = record.voided or record.reason
        comment = f' "{one_line(record.comment)}"' if record.comment else ""
        tags = ", ".join(
            ["signed" if record.signed else "unsigned", *([record.via] if record.via else []), *record.groups]
        )
        lines.append(
            f"  {record.at:%Y-%m-%d %H:%M:%S} {record.decision.value} by {one_line(record.actor)} ({tags}): "
            f"{verdict} — {one_line(reason)}{comment}"
        )
    if state.decisions_not_kept:
        lines.append(f"  … and {plural(state.decisions_not_kept, 'older refused attempt')} (in the run's history)")
    return lines


def _voided(state: RunState) -> list[str]:
    """Approvals that stopped counting, in words: whose, and why."""
    return [
        f"Voided      {one_line(record.actor)}'s approval no longer counts: {record.voided}"
        + ("; the new plan needs approving" if state.phase.value == "awaiting_approval" else "")
        for record in state.decisions
        if record.voided
    ]


def _next(state: RunState) -> str:
    if state.next_action:
        return state.next_action
    if state.phase.terminal:
        return f"nothing: the run has ended ({state.phase.value})"
    return "wait: the run is working"


_APPROVABLE = {Phase.AWAITING_APPROVAL, Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE}


def _waits(state: RunState) -> list[str]:
    """What a waiting run waits for, and until when: a freeze window, an emergency's review."""
    lines = []
    if state.emergency:
        lines.append(f"Emergency   applied without prior approval (break-glass): {state.emergency}")
    if state.frozen_until is not None and state.phase.value == "waiting_for_window":
        lines.append(f"Frozen      until {state.frozen_until:%Y-%m-%d %H:%M} UTC (change freeze), then re-planned")
    if state.review_deadline is not None and state.outcome is not None:
        lines.append(
            f"Review      post-incident review due {state.review_deadline:%Y-%m-%d %H:%M} UTC "
            f"(outcome so far: {state.outcome.value})"
        )
    return lines


def _scheduled(state: RunState) -> list[str]:
    """Which schedule started the run (verified by the workflow), and what its dry run found."""
    scheduled = state.scheduled
    if scheduled is None:
        return []
    fired = f", fired for {scheduled.scheduled_at:%Y-%m-%d %H:%M:%S} UTC" if scheduled.scheduled_at else ""
    if scheduled.drift_of:
        return [f"Scheduled   the apply of the drift {scheduled.drift_of} found (schedule {scheduled.schedule_id})"]
    lines = [f"Scheduled   by schedule {scheduled.schedule_id} ({scheduled.cadence}){fired}"]
    if state.mode.value == "dry_run" and state.phase.terminal and state.plan is not None:
        found = "yes" if scheduled.drift else "none"
        submitted = f"; apply run {scheduled.submitted}" if scheduled.submitted else ""
        lines.append(f"Drift       {found}{submitted}")
    return lines


def render_status(state: RunState, web_ui: str) -> str:
    lines = [
        f"Run         {state.workflow_id}",
        f"Phase       {state.phase.value}"
        + (
            f" (deadline {state.approval_deadline:%Y-%m-%d %H:%M:%S} UTC)"
            if state.phase.value == "awaiting_approval" and state.approval_deadline
            else ""
        ),
    ]
    lines += _scheduled(state)
    lines += _waits(state)
    cancel = state.cancel_request
    if cancel is not None and not state.phase.terminal:
        lines.append(
            f"Cancel      requested by {one_line(cancel.actor)} at {cancel.at:%Y-%m-%d %H:%M:%S} UTC: "
            "stopping at the next safe point, then undoing what was applied"
        )
    decided = state.ending_decision
    if decided is not None:
        comment = f': "{one_line(decided.comment)}"' if decided.comment else ""
        when = f"{decided.at:%Y-%m-%d %H:%M:%S} UTC"
        lines.append(f"Decided     {decided.decision.value} by {one_line(decided.actor)} at {when}{comment}")
    if state.steps:
        done = f"{state.progress.done}/{plural(state.progress.total, 'step')}"
        lines.append(f"Progress    {done} done — {state.progress.step}")
    lines += [f"Running     {activity.describe()}" for activity in state.live]
    lines += _voided(state)
    if state.continued:
        lines.append(f"History     continued as new {plural(state.continued, 'time')} (one run id, small histories)")
    if state.plan_hash:
        lines.append(f"Plan hash   {state.plan_hash}")
    lines.append(f"Next        {_next(state)}")
    lines.append(f"Web UI      {web_ui}")
    return "\n".join(lines)


def _resources(title: str, items: list[Any]) -> list[str]:
    if not items:
        return [f"{title:<11} nothing"]
    lines = [title]
    for item in items:
        external = f" → {item.external_id}" if item.external_id else ""
        detail = f" ({item.detail})" if item.detail else ""
        lines.append(f"  {item.resource_type} {item.resource_id}{external}{detail}")
    return lines


def render_run(state: RunState, web_ui: str, all_sql: bool = False) -> str:
    """The four answers: what was requested, what changed, what is uncertain, what to do now."""
    lines = [
        f"{state.kind} run {state.workflow_id}: {state.phase.value}",
        "",
        f"Requested   by {state.requester} in {state.environment} ({state.mode.value}): {_spec_line(state)}",
        *_scheduled(state),
        *_waits(state),
        *render_plan(state, all_sql),
        *render_decisions(state),
        *_voided(state),
        *_resources("Changed", state.changed),
    ]
    if state.checks:
        lines.append("Verified")
        lines += [f"  {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in state.checks]
    if state.failure is not None:
        lines.append(
            f"Failure     {state.failure.kind.value} in {state.failure.step or 'validate'}: "
            f"{state.failure.message} (retryable: {state.retryable.value})"
        )
    lines += [f"Warning     {one_line(warning)}" for warning in state.warnings]
    lines.append("Uncertain   " + ("; ".join(map(one_line, state.uncertain)) if state.uncertain else "nothing"))
    lines.append(f"Next        {_next(state)}")
    lines.append(f"Web UI      {web_ui}")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}

    def cell(value: Any) -> str:
        return ("yes" if value else "no") if isinstance(value, bool) else str(value)

    header = "  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()
    body = ["  ".join(cell(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join([header, *body])
