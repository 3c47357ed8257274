"""audit and explain: a run's record, read from its history, and what it means for you now."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.config import Config, config_for
from client.render import Output, one_line, table
from contracts.failures import ExitCode, OpsctlError
from contracts.phases import Phase
from contracts.run import Decision, DecisionRecord, RunState

Progress = Callable[[str], None]


def execute(args: argparse.Namespace, progress: Progress) -> Output:
    config = config_for(args)
    command = cmd_audit if args.command == "audit" else cmd_explain
    result: Output = asyncio.run(command(args, config))
    return result


async def _state(args: argparse.Namespace, config: Config) -> tuple[Any, RunState]:
    from client.runs import connect, handle_for, read_state

    client = await connect(config)
    return client, await read_state(await handle_for(client, args.run))


async def cmd_audit(args: argparse.Namespace, config: Config) -> Output:
    """The history is enough: a run nobody answers for (no worker, a raw start) is audited all the same."""
    from client.audit import read_trail
    from client.runs import connect, handle_for

    client = await connect(config)
    await handle_for(client, args.run)  # an unknown run is exit 2
    trail = await read_trail(client, args.run)
    if args.export:
        _export(Path(args.export), trail.workflow_id, [event.model_dump(mode="json") for event in trail.events])
    rows = [
        {
            "at": f"{event.at:%Y-%m-%d %H:%M:%S}",
            "what": event.kind.value,
            "who": one_line(event.actor),
            "summary": one_line(event.summary),
        }
        for event in trail.events
    ]
    head = (
        f"audit trail of {trail.workflow_id} ({trail.kind} in {trail.environment}, requested by {trail.requester})\n"
        f"plan hash: {trail.plan_hash or '—'}\n"
        f"{'closed: ' + str((trail.outcome or {}).get('phase')) if trail.closed else 'open: the run goes on'}\n"
        "read from the run's event history (`temporal workflow show --workflow-id "
        f"{trail.workflow_id}` shows the same events)\n"
    )
    text = head + "\n" + table(rows, ["at", "what", "who", "summary"])
    if trail.other_executions:
        text += (
            f"\n\nnot read: {len(trail.other_executions)} later execution(s) of this id that this run did not start "
            f"({', '.join(trail.other_executions)})"
        )
    if args.export:
        text += f"\n\nexported {len(trail.events)} events to {args.export} (JSON Lines)"
    return Output(trail.model_dump(mode="json"), text)


def _export(path: Path, workflow_id: str, events: list[dict[str, Any]]) -> None:
    try:
        with path.open("w", encoding="utf-8") as file:
            for event in events:
                file.write(json.dumps({"workflow_id": workflow_id, **event}, default=str) + "\n")
    except OSError as exc:
        raise OpsctlError(ExitCode.INVALID_INPUT, f"cannot write {path}: {exc.strerror or exc}") from exc


async def cmd_explain(args: argparse.Namespace, config: Config) -> Output:
    from client.runs import notes_after

    client, state = await _state(args, config)
    answers = explain(state)
    answers["notes"] += [
        _note_line(record) for record in await notes_after(client, state.workflow_id) if record.accepted
    ]
    lines = [
        f"{state.workflow_id}: {state.phase.value}",
        "",
        "What was requested:",
        f"  {answers['requested']}",
        "",
        "What changed:",
        *(f"  - {one_line(item)}" for item in answers["changed"] or ["nothing"]),
        "",
        "What remains uncertain:",
        *(f"  - {one_line(item)}" for item in answers["uncertain"] or ["nothing"]),
        "",
        "What can be done now:",
        *(f"  {step['command']}\n      {step['why']}" for step in answers["next"]),
    ]
    if answers["notes"]:
        lines += ["", "Notes:", *(f"  - {one_line(note)}" for note in answers["notes"])]
    lines += ["", f"Web UI: {config.web_ui(state.workflow_id)}"]
    return Output(
        {"workflow_id": state.workflow_id, "phase": state.phase.value, **answers, "exit_code": int(state.exit_code())},
        "\n".join(lines),
        state.exit_code(),
    )


def explain(state: RunState) -> dict[str, Any]:
    """The four answers, from the run's state: requested, changed, uncertain, and the commands to run next."""
    started = state.phase_times.get(Phase.VALIDATING.value)
    when = f" at {started:%Y-%m-%d %H:%M} UTC" if started else ""
    how = " as a dry run" if state.mode.value == "dry_run" else (" as an EMERGENCY" if state.emergency else "")
    requested = f"{state.requester} asked for {state.kind} in {state.environment}{when}{how}"
    changed = [f"{r.resource_type} {r.resource_id}" + (f" ({r.detail})" if r.detail else "") for r in state.changed]
    uncertain = list(state.uncertain)
    if state.failure and state.phase is not Phase.SUCCEEDED:
        uncertain.append(f"the run failed ({state.failure.kind.value}): {state.failure.message}")
    notes = [_note_line(d) for d in state.decisions if d.decision is Decision.NOTE and d.accepted]
    return {
        "requested": requested,
        "changed": changed,
        "uncertain": uncertain,
        "next": next_steps(state),
        "notes": notes,
    }


def _note_line(record: DecisionRecord) -> str:
    unsigned = "" if record.signed else " (unsigned)"
    return f"{record.actor}{unsigned} at {record.at:%Y-%m-%d %H:%M} UTC: {record.comment}"


def next_steps(state: RunState) -> list[dict[str, str]]:
    run, phase = state.workflow_id, state.phase
    watch = {"command": f"opsctl watch {run}", "why": "follow it live; it returns when someone must act"}
    note = {"command": f'opsctl note {run} "what you checked"', "why": "add to the run's record"}
    audit = {"command": f"opsctl audit {run}", "why": "every event of the run, from its history"}
    if phase is Phase.AWAITING_APPROVAL or phase in (Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE):
        others = f"someone other than {state.requester}"
        return [
            {
                "command": f"opsctl approve {run} --plan-hash {state.plan_hash} --as APPROVER",
                "why": f"{others} approves this exact plan",
            },
            {"command": f'opsctl reject {run} --reason "why"', "why": "nothing is changed"}
            if phase is Phase.AWAITING_APPROVAL
            else note,
            audit,
        ]
    if phase is Phase.NEEDS_REVIEW:
        return [
            {"command": f'opsctl resolve {run} --retry --comment "what you fixed"', "why": "run the failed step again"},
            {
                "command": f'opsctl resolve {run} --mark-done --comment "what you did by hand"',
                "why": "you finished the step yourself",
            },
            {
                "command": f'opsctl resolve {run} --abort --comment "why"',
                "why": "stop here; what was applied stays as it is",
            },
            audit,
        ]
    if not phase.terminal:
        return [
            watch,
            {
                "command": f'opsctl cancel {run} --reason "why"',
                "why": "stop at the next safe point, undoing applied steps",
            },
            note,
        ]
    if phase in (Phase.SUCCEEDED, Phase.NO_CHANGES, Phase.PLANNED):
        return [audit]
    return [
        {
            "command": f"opsctl rerun {run}",
            "why": "once the cause is fixed: a new run of the same request, linked to this one",
        },
        audit,
    ]
