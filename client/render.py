"""Output is a rendering of a result object: `--format json` prints the object, text renders it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contracts.failures import ExitCode
from contracts.plan import Action

if TYPE_CHECKING:  # the run model pulls in signing (cryptography): commands that show runs import it
    from contracts.run import RunState


@dataclass
class Output:
    """What a command returns: the JSON object, its text form, and the exit code."""

    data: Any
    text: str
    exit_code: ExitCode = ExitCode.SUCCESS
    extra_json: dict[str, Any] = field(default_factory=dict)

    def render(self, fmt: str) -> str:
        if fmt == "json":
            data = {**self.data, **self.extra_json} if isinstance(self.data, dict) else self.data
            return json.dumps(data, indent=2, sort_keys=False, default=str)
        return self.text


def run_json(state: RunState, web_ui: str) -> dict[str, Any]:
    data: dict[str, Any] = state.model_dump(mode="json")
    data["request"] = state.request.model_dump(mode="json", by_alias=True)
    data["exit_code"] = int(state.exit_code())
    data["retryable"] = state.retryable.value
    data["web_ui"] = web_ui
    return data


def run_output(state: RunState, web_ui: str, *, full: bool = True) -> Output:
    text = render_run(state, web_ui) if full else render_status(state, web_ui)
    return Output(run_json(state, web_ui), text, state.exit_code())


def _spec_line(state: RunState) -> str:
    """The spec in one line: long values (inlined SQL, lists) are summarised; JSON has them whole."""

    def short(value: object) -> str:
        if isinstance(value, list):
            return f"[{len(value)} items]"
        text = str(value)
        return text if len(text) <= 60 and "\n" not in text else f"{text.splitlines()[0][:50]}… ({len(text)} chars)"

    return ", ".join(f"{key}={short(value)}" for key, value in state.request.spec.items())


LISTED_IDS = 8  # ids shown per grouped action in text; JSON has them all


def render_plan(state: RunState) -> list[str]:
    if state.plan is None:
        return ["Plan        not computed yet"]
    lines = [f"Plan        {state.plan.target}", f"            plan hash {state.plan_hash}"]
    for number, step in enumerate(state.plan.actions, 1):
        undo = "reversible: " + step.rollback.value if step.reversible else "not reversible"
        lines.append(f"  {number}. {step.action.value:<6} {step.resource_type} {step.resource_id}")
        lines.append(f"     why: {step.reason}" + ("" if step.action is Action.NOOP else f"  [{undo}]"))
        if step.observed:
            facts = ", ".join(f"{key}={value}" for key, value in step.observed.items())
            lines.append(f"     observed: {facts}")
        if step.resource_ids:
            shown = ", ".join(step.resource_ids[:LISTED_IDS])
            more = len(step.resource_ids) - LISTED_IDS
            lines.append(f"     {shown}" + (f" (+{more} more; --format json lists all)" if more > 0 else ""))
    return lines


def render_decisions(state: RunState) -> list[str]:
    if not state.decisions:
        if not state.required_approvals:
            return ["Approvals   not required in this environment"]
        if state.phase.terminal:
            return ["Approvals   none"]
        return [f"Approvals   none yet: needs {state.quorum}"]
    lines = ["Decisions"]
    for record in state.decisions:
        verdict = "accepted" if record.accepted else "REFUSED"
        comment = f' "{record.comment}"' if record.comment else ""
        tags = ", ".join(["signed" if record.signed else "unsigned", *record.groups])
        lines.append(
            f"  {record.at:%Y-%m-%d %H:%M:%S} {record.decision.value} by {record.actor} ({tags}): "
            f"{verdict} — {record.reason}{comment}"
        )
    return lines


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
    lines += _waits(state)
    if state.progress.total:
        lines.append(f"Progress    {state.progress.done}/{state.progress.total} steps — {state.progress.step}")
    lines += [f"Running     {activity.describe()}" for activity in state.live]
    if state.continued:
        lines.append(f"History     continued as new {state.continued} times (one run id, small histories)")
    if state.plan_hash:
        lines.append(f"Plan hash   {state.plan_hash}")
    lines.append(f"Next        {state.next_action or 'wait: the run is working'}")
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


def render_run(state: RunState, web_ui: str) -> str:
    """The four answers: what was requested, what changed, what is uncertain, what to do now."""
    lines = [
        f"{state.kind} run {state.workflow_id}: {state.phase.value}",
        "",
        f"Requested   by {state.requester} in {state.environment} ({state.mode.value}): {_spec_line(state)}",
        *_waits(state),
        *render_plan(state),
        *render_decisions(state),
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
    lines += [f"Warning     {warning}" for warning in state.warnings]
    lines.append("Uncertain   " + ("; ".join(state.uncertain) if state.uncertain else "nothing"))
    lines.append(f"Next        {state.next_action or 'wait: the run is working'}")
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
