"""Commands about runs: plan, apply, approve, reject, cancel, resolve, status, result, list."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from client.commands.documents import read_request
from client.config import Config, load_config
from client.render import Output, run_output, table
from contracts.failures import ExitCode, OpsctlError
from contracts.phases import Phase
from contracts.run import Decision, DecisionInput, Mode, ResolveInput, RunState

if TYPE_CHECKING:
    from client.keys import Keyring
    from contracts.request import Request

Progress = Callable[[str], None]


def execute(args: argparse.Namespace, progress: Progress) -> Output:
    if args.command == "list":
        _check_filters(args)
    if args.command in ("plan", "apply"):  # a bad document is exit 2 or 3 even while Temporal is down
        args.request = read_request(args.file, args.as_user, args.state_dir)
    config = load_config(args.as_user, args.state_dir)
    command: Callable[..., Any] = globals()[f"cmd_{args.command}"]
    result: Output = asyncio.run(_with_client(command, args, config, progress))
    return result


def _check_filters(args: argparse.Namespace) -> None:
    """Unknown filter values are mistakes, not empty results."""
    from contracts.kinds import KINDS

    filters = [("--phase", args.phase, [p.value for p in Phase]), ("--kind", args.kind, list(KINDS))]
    for flag, value, known in filters:
        if value and value not in known:
            raise OpsctlError(ExitCode.INVALID_INPUT, f"{flag} {value!r} is not one of: {', '.join(known)}")


async def _with_client(
    command: Callable[..., Any], args: argparse.Namespace, config: Config, progress: Progress
) -> Output:
    from client.runs import connect

    client = await connect(config)
    output: Output = await command(client, args, config, progress)
    return output


def _reporter(progress: Progress) -> Callable[[RunState], None]:
    """Print each phase and each apply step once, in order, however coarse the polling is."""
    said: set[str] = set()

    def report(state: RunState) -> None:
        events: list[tuple[datetime, int, int, str, str]] = []
        for phase, entered in state.phase_times.items():
            line = f"[{phase}]"
            if phase == Phase.AWAITING_APPROVAL.value and state.phase is Phase.AWAITING_APPROVAL:
                deadline = f"{state.approval_deadline:%Y-%m-%d %H:%M:%S} UTC" if state.approval_deadline else "?"
                line += (
                    f" waiting for someone other than {state.requester} to approve (deadline {deadline})\n"
                    f"    opsctl approve {state.workflow_id} --plan-hash {state.plan_hash}"
                )
            if phase == Phase.WAITING_FOR_WINDOW.value and state.frozen_until:
                line += f" a change freeze is in force until {state.frozen_until:%Y-%m-%d %H:%M} UTC"
            if phase == Phase.AWAITING_REVIEW.value and state.review_deadline:
                line += f" the emergency's post-incident review is due by {state.review_deadline:%Y-%m-%d %H:%M} UTC"
            if phase != Phase.VALIDATING.value:
                # At equal times a phase that opens apply comes before the steps, others after.
                rank = 0 if phase in _BEFORE_STEPS else 3
                events.append((entered, rank, 0, f"{phase}@{entered.isoformat()}", line))
        total = state.progress.total or len(state.steps)
        for number, step in enumerate(state.steps, 1):
            if step.finished is None:
                line = f"[applying] step {number}/{total}: {step.name} …"
                events.append((step.started, 1, 2 * number, f"step {number}", line))
            else:
                took = _duration((step.finished - step.started).total_seconds())
                line = f"[applying] step {number}/{total}: {step.name} — done in {took}"
                events.append((step.finished, 1, 2 * number + 1, f"step {number} done", line))
        for *_, key, line in sorted(events):
            if key not in said:
                said.add(key)
                progress(line)
        for activity in state.live:
            line = f"[{state.phase.value}] {activity.describe()}"
            if line not in said:  # heartbeats change: print each new reading once
                said.add(line)
                progress(line)

    return report


_BEFORE_STEPS = {Phase.PLANNING.value, Phase.AWAITING_APPROVAL.value, Phase.REPLANNING.value, Phase.APPLYING.value}


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


async def cmd_plan(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from client.runs import start_run, wait_for

    request: Request = args.request
    handle, _ = await start_run(
        client, request, task_queue=config.task_queue, mode=Mode.DRY_RUN, keys=_keys(config, request, progress)
    )
    progress(f"planning on the worker (dry run {handle.id}) …")
    state = await wait_for(
        handle, lambda s: s.phase.terminal or s.phase is Phase.NEEDS_REVIEW, timeout=args.timeout, say=progress
    )
    if not state.phase.terminal:
        raise OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"no plan within {args.timeout:.0f}s (phase {state.phase.value})",
            hint="is a worker running? `opsctl dev status`",
        )
    return run_output(state, config.web_ui(handle.id), all_sql=args.full)


async def cmd_apply(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from client.runs import UNANSWERED_FOR, start_run, wait_for

    request: Request = args.request
    emergency = _emergency(args)
    keys = _keys(config, request, progress)
    args.submitting = True  # for Ctrl-C's message: from here on the run may exist
    handle, new = await start_run(client, request, task_queue=config.task_queue, emergency=emergency, keys=keys)
    args.submitted = True
    if not new:
        earlier = await wait_for(handle, lambda _: True, timeout=UNANSWERED_FOR)  # a busy worker: ask again
        if earlier.request.spec_hash() != request.spec_hash():
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"idempotencyKey {request.metadata.idempotency_key!r} already names run {handle.id}, "
                "submitted with a different request (kind, environment or spec)",
                hint="use a new idempotencyKey for a new request; the same key only ever means the same request",
            )
    if new:
        how = " as an EMERGENCY (break-glass; a post-incident review follows)" if emergency else ""
        progress(f"submitted {handle.id} as {request.metadata.requester}{how}")
    else:
        progress(f"attached to {handle.id}: this request was submitted before (same idempotency key or spec)")
    progress(f"Web UI: {config.web_ui(handle.id)}")
    until = _ended if args.wait else _settled
    state = await wait_for(handle, until, timeout=args.timeout, on_change=_reporter(progress), say=progress)
    if args.wait:  # without it, apply reports where the submitted run stands when the time is up
        _still_running(state, until, args.timeout)
    output = run_output(state, config.web_ui(handle.id), all_sql=args.full)
    output.extra_json["attached"] = not new
    return output


def _keys(config: Config, request: Request, progress: Progress) -> Keyring:
    """Your keyring; says so up front when the request will go unsigned."""
    keys = config.keyring()
    if keys.path(request.metadata.requester or "") is None:
        progress(
            f"note: no key for {request.metadata.requester}: the request goes unsigned, which only environments "
            "that do not require signatures accept (`opsctl keys init`)"
        )
    return keys


def _emergency(args: argparse.Namespace) -> str:
    """apply's break-glass reason ('' for a normal request); --emergency and --reason go together."""
    if not args.emergency:
        if args.reason:
            raise OpsctlError(
                ExitCode.INVALID_INPUT, "--reason goes with --emergency", hint="apply --emergency --reason TEXT"
            )
        return ""
    reason = (args.reason or "").strip()
    if not reason:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            "--emergency needs --reason TEXT: why this cannot wait for approval (kept in the run's record)",
        )
    return reason


def _ended(state: RunState) -> bool:
    """The outcome is known: the run ended, or only an emergency's post-incident review is open."""
    return state.phase.terminal or state.outcome is not None


def _settled(state: RunState) -> bool:
    """Without --wait, apply returns once a human or the clock is what the run waits for."""
    return state.phase.terminal or state.phase in _PEOPLE_ACT or state.phase is Phase.WAITING_FOR_WINDOW


def _still_running(state: RunState, until: Callable[[RunState], bool], timeout: float) -> None:
    """A wait that ran out while the run works on is not a success: exit 4, saying how to follow it.
    (A run waiting for a person reports that phase's own code: 7 or 8.)"""
    if until(state) or state.phase in _PEOPLE_ACT or state.phase is Phase.WAITING_FOR_WINDOW:
        return
    raise OpsctlError(
        ExitCode.DEPENDENCY_FAILURE,
        f"run {state.workflow_id} is still {state.phase.value} after {timeout:g}s of waiting; it goes on",
        hint=f"follow it with `opsctl result {state.workflow_id} --wait`, or wait longer with --timeout",
    )


# Phases in which the run waits for a person: waiting commands return there.
_PEOPLE_ACT = (Phase.AWAITING_APPROVAL, Phase.NEEDS_REVIEW, Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE)


async def _decide(
    client: Any, args: argparse.Namespace, config: Config, decision: Decision, input: DecisionInput
) -> Output:
    from client.runs import decide, handle_for

    handle = await handle_for(client, args.run)
    record, state = await decide(handle, decision, input, keys=config.keyring())
    output = run_output(state, config.web_ui(handle.id), report=False)
    verdict = "accepted" if record.accepted else "REFUSED"
    output.text = f"{decision.value} by {record.actor}: {verdict} — {record.reason}\n\n{output.text}"
    output.data = {"decision": record.model_dump(mode="json"), "run": output.data}
    output.exit_code = ExitCode.SUCCESS if record.accepted or _already(decision, state) else ExitCode.DENIED
    return output


def _already(decision: Decision, state: RunState) -> bool:
    """A cancel refused because one is already in effect did what its sender wanted (exit 0)."""
    return decision is Decision.CANCEL and state.cancel_request is not None


async def cmd_approve(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    input = DecisionInput(actor=config.user, plan_hash=args.plan_hash, comment=args.comment)
    return await _decide(client, args, config, Decision.APPROVE, input)


async def cmd_reject(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    return await _decide(client, args, config, Decision.REJECT, DecisionInput(actor=config.user, comment=args.reason))


async def cmd_cancel(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    return await _decide(client, args, config, Decision.CANCEL, DecisionInput(actor=config.user, comment=args.reason))


async def cmd_resolve(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    input = ResolveInput.model_validate({"actor": config.user, "comment": args.comment, "resolution": args.resolution})
    return await _decide(client, args, config, Decision(args.resolution), input)


async def cmd_status(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from client.runs import handle_for, read_state

    handle = await handle_for(client, args.run)
    return run_output(await read_state(handle), config.web_ui(handle.id), report=False)


async def cmd_result(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from client.runs import handle_for, wait_for

    handle = await handle_for(client, args.run)
    until = _ended if args.wait else (lambda _: True)
    reporter = _reporter(progress) if args.wait else lambda _: None
    state = await wait_for(handle, until, timeout=args.timeout, on_change=reporter, say=progress)
    _still_running(state, until, args.timeout)
    return run_output(state, config.web_ui(handle.id), all_sql=args.full)


async def cmd_list(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from contracts import search_attributes as sa

    filters = [
        f"{attribute} = '{value}'"
        for attribute, value in ((sa.PHASE, args.phase), (sa.KIND, args.kind), (sa.ENVIRONMENT, args.env))
        if value
    ]
    if args.drift:  # scheduled dry runs whose plan had changes
        filters.append(f"{sa.DRIFT} = true")
    query = " AND ".join([f"{sa.KIND} IS NOT NULL", *filters])
    rows = []
    async for execution in client.list_workflows(query, limit=args.limit):
        attributes = {key.name: value for key, value in execution.typed_search_attributes}
        rows.append(
            {
                "run_id": execution.id,
                "kind": attributes.get(sa.KIND, execution.workflow_type),
                "environment": attributes.get(sa.ENVIRONMENT, ""),
                "phase": attributes.get(sa.PHASE, ""),
                "requester": attributes.get(sa.REQUESTER, ""),
                "emergency": bool(attributes.get(sa.EMERGENCY, False)),
                "started": execution.start_time.strftime("%Y-%m-%d %H:%M:%S"),
                "plan_hash": attributes.get(sa.PLAN_HASH, ""),
            }
        )
    text = table(rows, ["run_id", "kind", "environment", "phase", "requester", "emergency", "started"])
    return Output({"runs": rows, "query": query}, text)
