"""A run as a person reads it in the Temporal Web UI: user metadata, rendered as markdown.

- `summary`: one line for the workflow list (static summary, set when the run starts);
- `request_details`: the request document (static details);
- `current_details`: what the run is doing now and what a person can do about it, kept up
  to date by the workflow (the plan while it awaits approval, progress while applying, the
  four answers once it has ended).

Pure functions of the request or the state. Everything a caller wrote (actors, comments,
spec values) is escaped, and every text is cut to Temporal's limits: a plan of 10,000
volumes shows counts and its first entries, with the full list one `opsctl` command away.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from contracts import kinds
from contracts.gate import still_needed
from contracts.phases import PHASE_WORDS, Phase
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.policy import Policy
from contracts.request import DocumentError, Request
from contracts.run import DecisionRecord, Resource, RunState
from contracts.words import plural, visible

PROVENANCE = (
    "*These current details are the workflow's own account, from its record. The summary and the "
    "details beside them were written by whoever started the run.*"
)
SUMMARY_BYTES = 200  # Temporal's limit for a static summary
DETAILS_BYTES = 20_000  # ... and for details; current details keep the same bound
PLAN_ROWS = 20  # plan actions shown in a table; `opsctl result` has them all
LISTED_IDS = 5  # ids shown per grouped action
LISTED = 20  # changed resources, warnings, decisions shown

# What each kind acts on, from its spec (document form, latest version): the list line's "what".
TARGETS = {
    "RotateDbCredential": "{role}@{database}",
    "CreateReadReplica": "replica of {sourceInstanceId}",
    "MigrateSchema": "{schemaName}@{database}",
    "SweepStaleVolumes": "EBS volumes older than {selector[olderThanDays]} days",
    "BackfillTable": "{database}.{table}.{setColumn}",
}


# ---- text that is safe to show ----------------------------------------------------------------


def fit(text: str, limit: int, more: str = "") -> str:
    """`text` cut to at most `limit` UTF-8 bytes, saying so (and where the rest is) if it was cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    note = f"\n\n… cut to fit Temporal's {limit:,}-byte limit{'; ' + more if more else ''}"
    cut = data[: limit - len(note.encode()) - 16].decode(errors="ignore")
    fences = [line.strip() for line in cut.splitlines() if re.fullmatch(r"\s*`{3,}\w*", line)]
    if len(fences) % 2:  # cut inside a code block: close it, so the note is not read as code
        cut += "\n" + fences[-1].rstrip("abcdefghijklmnopqrstuvwxyz")
    return cut + note


def inline(value: object, cell: bool = False) -> str:
    """A value as inline code, shown literally: its fence is longer than any backticks it holds.

    `cell`: inside a table row, where `|` must be escaped (elsewhere the escape would show).
    """
    text = visible(" ".join(str(value).split()))
    if not text:
        return "—"
    if cell:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_MARKUP = "\\`*_[]<>|~$"  # emphasis, code, links, HTML, tables, strike-through, math


def plain(value: object, keep: str = "") -> str:
    """Free text (a reason, a comment) on one line: markup, links, HTML and math characters escaped."""
    return _escape(visible(" ".join(str(value).split())), keep)


def _escape(text: str, keep: str = "") -> str:
    for char in _MARKUP:
        if char not in keep:
            text = text.replace(char, "\\" + char)
    # No URL and no e-mail address becomes a link (an address needs a dot after its @ to be one).
    return re.sub(r"@(?=[\w.-]*\.\w)", r"\\@", text.replace("://", "\\://"))


def prose(value: object) -> str:
    """Text written by opsctl that names commands in `backticks`: code stays code, the rest is escaped."""
    parts = " ".join(str(value).split()).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: nothing is code
        return plain(value)
    return "".join(inline(part) if index % 2 else _escape(part) for index, part in enumerate(parts))


def _code_block(text: str, language: str = "") -> list[str]:
    """A literal block whatever the text holds: the fence is longer than any run of backticks in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text.rstrip("\n"), fence]


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "—"


# ---- the request: summary and static details ----------------------------------------------------


def target(request: Request) -> str:
    """What a request acts on, in a few words (`app_user@app`)."""
    template = TARGETS.get(request.kind)
    if template is None:
        return ""
    try:  # an older version's spec reads as its latest form, which the template names
        spec = kinds.read_spec(request.kind, request.api_version, request.spec).model_dump(mode="json", by_alias=True)
    except DocumentError:
        spec = request.spec

    class Missing:
        def __getitem__(self, key: str) -> Missing:
            return self

        def __format__(self, spec: str) -> str:
            return "?"

    class Spec(dict[str, Any]):
        def __missing__(self, key: str) -> Missing:
            return Missing()

        def __getitem__(self, key: str) -> Any:
            value = super().__getitem__(key)
            return Spec(value) if isinstance(value, dict) else value

    return template.format_map(Spec(spec))


def summary(request: Request) -> str:
    """`RotateDbCredential app_user@app · prod · alice`: one line, at most 200 bytes.

    Rendered as markdown by the Web UI: what a caller wrote cannot become a link or markup
    (underscores stay, they are common in names and inert inside words).
    """
    requester = request.metadata.requester or "unsigned"
    line = f"{request.kind} {plain(target(request), keep='_')}".strip()
    line = f"{line} · {request.metadata.environment} · {plain(requester, keep='_')}"
    if len(line.encode()) <= SUMMARY_BYTES:
        return line
    return line.encode()[: SUMMARY_BYTES - 3].decode(errors="ignore") + "…"


def request_details(request: Request) -> str:
    """The request document as markdown: metadata, then the spec, long texts (SQL) as code blocks."""
    meta = request.metadata
    lines = [
        f"### {plain(request.kind)} · {inline(target(request))}",
        "",
        "| field | value |",
        "|---|---|",
        f"| environment | {inline(meta.environment, cell=True)} |",
        f"| requested by | {inline(meta.requester or 'unsigned', cell=True)} |",
        f"| idempotency key | {inline(meta.idempotency_key or 'the spec hash', cell=True)} |",
        f"| spec hash | {inline(request.spec_hash(), cell=True)} |",
    ]
    if meta.approval_timeout_seconds:
        lines.append(f"| approval timeout | {meta.approval_timeout_seconds:,} s (never longer than the policy's) |")
    lines += [f"| label {inline(key, cell=True)} | {inline(value, cell=True)} |" for key, value in meta.labels.items()]
    lines += ["", "#### Spec", *_spec_lines(request.spec, depth=0)]
    more = "the request is whole in the run's input (Input and Results)"
    return fit("\n".join(lines), DETAILS_BYTES, more)


def _spec_lines(value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    lines: list[str] = []
    items: Iterable[tuple[Any, Any]] = value.items() if isinstance(value, dict) else enumerate(value, 1)
    for key, item in items:
        if item is None or item == [] or item == {}:
            continue  # unset: the document did not use it
        label = f"**{plain(key)}**" if isinstance(key, str) else f"{key}."
        if isinstance(item, dict | list) and item:
            lines.append(f"{pad}- {label}")
            lines += _spec_lines(item, depth + 1)
        elif isinstance(item, str) and ("\n" in item or len(item) > 80):
            language = "sql" if key in ("sql", "expression", "predicate", "query") else ""
            lines.append(f"{pad}- {label}")
            lines += [pad + "  " + line for block in _code_block(item, language) for line in block.split("\n")]
        else:
            lines.append(f"{pad}- {label}: {inline(json.dumps(item) if not isinstance(item, str) else item)}")
    return lines


# ---- the state: current details -------------------------------------------------------------------


def current_details(state: RunState, policy: Policy | None) -> str:
    """What the run is doing now, and what a person can do about it."""
    verified = "signed" if state.requester_verified else "unsigned"
    lines = [
        f"## {PHASE_WORDS.get(state.phase, state.phase.value)}",
        f"{plain(state.kind)} {inline(target(state.request))} · {inline(state.environment)} · "
        f"requested by {inline(state.requester)} ({verified}) · {inline(state.mode.value)}",
    ]
    if state.emergency:
        lines += ["", f"**Emergency (break-glass)**: applied without prior approval: {plain(state.emergency)}"]
    if state.scheduled is not None:
        lines += ["", _scheduled(state)]
    lines += _voided(state.decisions)
    phase = state.phase
    if phase is Phase.AWAITING_APPROVAL:
        lines += _awaiting_approval(state, policy)
    elif phase is Phase.WAITING_FOR_WINDOW:
        lines += ["", f"Frozen until **{_when(state.frozen_until)}**; the plan is checked again then.", *_next(state)]
        lines += _approvals(state)
        lines += _plan_table(state)
    elif phase is Phase.NEEDS_REVIEW:
        lines += ["", "#### Why", "", *_bullets(state.uncertain or ["see the warnings"]), *_next(state)]
        lines += _progress(state)
    elif phase in (Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE):
        lines += ["", f"Review due by **{_when(state.review_deadline)}**.", *_review_commands(state, policy)]
        lines += _four_answers(state)
    elif phase.terminal:
        lines += _four_answers(state)
    else:
        lines += _progress(state)
        if phase in (Phase.PLANNING, Phase.REPLANNING) and state.plan is not None:
            lines += _plan_table(state)
    lines += _refusals(state.decisions, state.decisions_not_kept)
    lines += ["", PROVENANCE]
    return fit("\n".join(lines), DETAILS_BYTES, f"`opsctl result {state.workflow_id}` shows all")


def _scheduled(state: RunState) -> str:
    scheduled = state.scheduled
    assert scheduled is not None
    if scheduled.drift_of:
        return f"**Scheduled**: the apply of the drift that {inline(scheduled.drift_of)} found"
    line = f"**Scheduled** by {inline(scheduled.schedule_id)} ({plain(scheduled.cadence)})"
    if scheduled.submitted:
        line += f"; its drift's apply: {inline(scheduled.submitted)}"
    return line


def _awaiting_approval(state: RunState, policy: Policy | None) -> list[str]:
    approvers, needs = _quorum_so_far(state, policy)
    lines = [
        *_plan_table(state),
        "",
        f"- **Quorum**: {plain(state.quorum or 'none')} · **approved by**: "
        + (", ".join(inline(a) for a in approvers) or "nobody yet")
        + f" · **still needed**: {plain(needs)} (never {inline(state.requester)})",
        f"- **Deadline**: {_when(state.approval_deadline)} (then the run expires, changing nothing)",
        "",
        "**Approve** (a person other than the requester, after reading the plan above):",
        *_code_block(f"opsctl approve {state.workflow_id} --plan-hash {state.plan_hash} --as YOU", "sh"),
    ]
    signed = policy is None or policy.require_signatures
    lines += [
        "or with Temporal's own CLI, unsigned: "
        + (
            f"**refused (and recorded) here**, {inline(state.environment)} requires signed decisions, "
            "which `opsctl approve` makes with your key"
            if signed
            else f"{inline(state.environment)} accepts unsigned decisions"
        ),
        *_code_block(_signal_command(state, "approve"), "sh"),
    ]
    lines.append(f"Reject: `opsctl reject {state.workflow_id} --reason TEXT`")
    return lines


def _review_commands(state: RunState, policy: Policy | None) -> list[str]:
    _, needs = _quorum_so_far(state, policy)
    return [
        f"Still needed: {plain(needs)}.",
        *_code_block(f"opsctl approve {state.workflow_id} --plan-hash {state.plan_hash} --as YOU", "sh"),
    ]


def _quorum_so_far(state: RunState, policy: Policy | None) -> tuple[list[str], str]:
    """Who approved so far, and who is still needed, in words."""
    approvers = [d.actor for d in state.approvals]
    return approvers, still_needed(policy, approvers) if policy is not None else state.quorum


def _signal_command(state: RunState, name: str) -> str:
    body = json.dumps({"actor": "YOU", "plan_hash": state.plan_hash, "comment": "reviewed"})
    return f"temporal workflow signal --workflow-id {state.workflow_id} --name {name} --input '{body}'"


def _next(state: RunState) -> list[str]:
    return ["", f"**What to do**: {prose(state.next_action)}"] if state.next_action else []


def _bullets(items: Iterable[str], limit: int = LISTED) -> list[str]:
    shown = list(items)
    lines = [f"- {plain(item)}" for item in shown[:limit]]
    if len(shown) > limit:
        lines.append(f"- … and {len(shown) - limit:,} more")
    return lines


def _plan_table(state: RunState) -> list[str]:
    plan = state.plan
    if plan is None:
        return []
    changes = [a for a in plan.actions if a.action is not Action.NOOP]
    lines = [
        "",
        f"### Plan: {plain(plan.target)}",
        f"{_plan_counts(plan)} · plan hash `{state.plan_hash}`",
        "",
        "| # | action | resource | reason | rollback |",
        "|---|---|---|---|---|",
    ]
    for number, action in enumerate(plan.actions[:PLAN_ROWS], 1):
        lines.append(
            f"| {number} | {action.action.value} | {_resource_cell(action)} | {plain(action.reason)} | "
            f"{_rollback(action)} |"
        )
    if len(plan.actions) > PLAN_ROWS:
        lines.append(f"| … | | {len(plan.actions) - PLAN_ROWS:,} more actions | | |")
    lines += _migration_sql(state)
    if state.progress.total and state.planned_steps:
        more = state.progress.total - len(state.planned_steps)
        steps = " → ".join(plain(step) for step in state.planned_steps) + (f" → … {more:,} more" if more > 0 else "")
        lines += ["", f"**Apply in {plural(state.progress.total, 'step')}**: {steps}"]
    if len(changes) > PLAN_ROWS or any(len(a.resource_ids) > LISTED_IDS for a in plan.actions):
        lines.append(f"\nEvery resource: `opsctl result {state.workflow_id} --format json`")
    return lines


def _migration_sql(state: RunState) -> list[str]:
    """Each pending migration's SQL, from the signed request the run received, with its findings.

    This is what a reviewer approves: the static details beside it were written by whoever
    started the run and may differ; this comes from the run's own input and plan (checksum).
    """
    if state.plan is None or state.kind != "MigrateSchema":
        return []
    from contracts.migrate_schema import sql_by_version  # its models: only a migration's run builds them

    sql = sql_by_version(state.request.spec)
    lines: list[str] = []
    for action in state.plan.actions:
        version = action.resource_id.rsplit("/", 1)[-1]
        if action.action is Action.NOOP or version not in sql:
            continue
        checksum, transaction = action.observed.get("checksum", ""), action.observed.get("transaction", "")
        lines += ["", f"#### {plain(version)}", "", f"checksum `{checksum}` · in a transaction: {plain(transaction)}"]
        lines += ["", *_code_block(sql[version], "sql")]
        for finding in action.findings:
            where = f"statement {finding.statement}" if finding.statement else "the migration"
            accepted = f" (acknowledged: {plain(finding.note or 'no reason given')})" if finding.acknowledged else ""
            lines.append(
                f"- **{plain(finding.severity)}** {plain(finding.rule)} in {where}: {plain(finding.message)}{accepted}"
            )
    return lines


def _approvals(state: RunState) -> list[str]:
    approved = state.approvals
    if not approved:
        return []
    who = ", ".join(f"{inline(d.actor)} ({', '.join(d.groups) or 'approver'}, {_when(d.at)})" for d in approved)
    return ["", f"**Approved by**: {who}"]


def _plan_counts(plan: Plan) -> str:
    changing = [a for a in plan.actions if a.action is not Action.NOOP]
    resources = sum(a.count for a in changing)
    counts = f"{plural(len(changing), 'change')} to {plural(resources, 'resource')}"
    return counts + (f", {plural(plan.deletions, 'deletion')}" if plan.deletions else "")


def _resource_cell(action: PlannedAction) -> str:
    if not action.resource_ids:
        return f"{plain(action.resource_type)} {inline(action.resource_id, cell=True)}"
    shown = ", ".join(inline(i, cell=True) for i in action.resource_ids[:LISTED_IDS])
    more = len(action.resource_ids) - LISTED_IDS
    return f"{plural(action.count, plain(action.resource_type))}: {shown}" + (f" +{more:,} more" if more > 0 else "")


def _rollback(action: PlannedAction) -> str:
    if action.action is Action.NOOP:
        return "—"
    if not action.reversible:
        return "**not reversible**"
    return (
        "reversible; nothing to roll back"
        if action.rollback is Rollback.NONE
        else f"reversible ({action.rollback.value})"
    )


def _progress(state: RunState) -> list[str]:
    progress = state.progress
    if not state.steps:  # nothing applied yet: the plan says how many steps there will be
        return []
    total = progress.total or len(state.steps)
    current = progress.step or "—"
    lines = ["", f"- **Step {min(progress.done + 1, total)} of {total}**: {plain(current)}"]
    if progress.done >= total:
        lines[-1] = f"- **Every step done** ({progress.done} of {total}); the last: {plain(current)}"
    finished = [s for s in state.steps if s.finished is not None]
    if finished and progress.done < total:
        spent = sum((s.finished - s.started).total_seconds() for s in finished if s.finished)
        remaining = spent / len(finished) * (total - progress.done)
        lines.append(f"- ETA: about {_duration(remaining)} ({plural(total - progress.done, 'step')} to go)")
    running = state.steps[-1] if state.steps[-1].finished is None else None
    if running is not None:
        # Inside a step only its heartbeats know how far it got; the workflow sees them when it ends.
        lines.append(
            f"- This step started {_when(running.started)}; its live progress (rows, volumes): "
            f"`opsctl status {state.workflow_id}`"
        )
    lines += ["", "#### Changed so far", "", *(_resources(state.changed[-5:]) or ["- nothing yet"])]
    if len(state.changed) > 5:
        lines.append(f"- … and {len(state.changed) - 5:,} earlier")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _four_answers(state: RunState) -> list[str]:
    outcome = state.outcome or state.phase
    lines = ["", f"**Outcome**: {PHASE_WORDS.get(outcome, outcome.value)}"]
    if state.failure is not None:
        lines[-1] += f" — {plain(state.failure.kind.value)} in {plain(state.failure.step or 'validate')}: "
        lines[-1] += plain(state.failure.message)
    decided = state.ending_decision
    if decided is not None:
        comment = f": {plain(decided.comment)}" if decided.comment else ""
        lines[-1] += f" — {decided.decision.value} by {inline(decided.actor)} at {_when(decided.at)}{comment}"
    lines += [
        "",
        "#### What was requested",
        "",
        f"- {plain(state.kind)} {inline(target(state.request))} in {inline(state.environment)} by "
        f"{inline(state.requester)} ({state.mode.value})",
    ]
    if state.plan is not None:
        lines.append(f"- plan: {_plan_counts(state.plan)}, hash `{state.plan_hash}`")
    lines += _approvals(state)
    lines += ["", "#### What changed", "", *(_resources(state.changed) or ["- nothing"])]
    if state.checks:
        lines += ["", "#### Verified", ""]
        lines += [f"- {'ok' if c.passed else '**FAILED**'} {plain(c.name)}: {plain(c.detail)}" for c in state.checks]
    lines += ["", "#### What remains uncertain", "", *(_bullets(state.uncertain) or ["- nothing"])]
    lines += ["", "#### What can be done now", "", f"- {prose(state.next_action or 'nothing')}"]
    if state.warnings:
        lines += ["", "#### Warnings", "", *_bullets(state.warnings)]
    return lines


def _resources(items: list[Resource]) -> list[str]:
    lines = []
    for item in items[:LISTED]:
        external = f" → {inline(item.external_id)}" if item.external_id else ""
        detail = f" ({plain(item.detail)})" if item.detail else ""
        lines.append(f"- {plain(item.resource_type)} {inline(item.resource_id)}{external}{detail}")
    if len(items) > LISTED:
        lines.append(f"- … and {len(items) - LISTED:,} more")
    return lines


def _voided(decisions: list[DecisionRecord]) -> list[str]:
    voided = [d for d in decisions if d.voided]
    return [f"\n**Approval by {inline(d.actor)} voided**: {plain(d.voided)}; it no longer counts." for d in voided]


def _refusals(decisions: list[DecisionRecord], forgotten: int) -> list[str]:
    refused = [d for d in decisions if not d.accepted and not d.voided]
    if not refused and not forgotten:
        return []
    lines = ["", f"#### Refused attempts ({len(refused) + forgotten:,}; all are in the history)", ""]
    for d in refused[-5:]:
        lines.append(
            f"- {_when(d.at)} {d.decision.value} by {inline(d.actor)} ({d.via or 'signal'}): {plain(d.reason)}"
        )
    return lines
