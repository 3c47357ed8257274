"""Commands about runs: plan, apply, approve, reject, cancel, resolve, status, result, list."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from client.config import Config, config_for
from client.render import Output, run_output, table
from contracts.failures import ExitCode, OpsctlError
from contracts.phases import Phase
from contracts.run import Decision, DecisionInput, Mode, ResolveInput, RunInput, RunState

if TYPE_CHECKING:
    from client.keys import Keyring
    from client.reading import Runs
    from contracts.request import Request

Progress = Callable[[str], None]


def execute(args: argparse.Namespace, progress: Progress) -> Output:
    if args.command == "list":
        _check_filters(args)
    config = config_for(args)
    if args.command in ("plan", "apply"):  # a bad document is exit 2 or 3 even while Temporal is down
        from client.commands.documents import read_request

        args.request = read_request(args.file, config, warn=lambda w: progress(f"warning: {w}"))
    if args.command == "apply":
        args.started = _start_over_http(args, config, progress)
    command: Callable[..., Any] = globals()[f"cmd_{args.command}"]
    if args.command in READS:
        http = _http_runs(config, getattr(args, "run", None))
        if http is not None:  # it blocks instead of awaiting: no event loop, no asyncio to import
            read: Output = _without_loop(command(http, args, config, progress))
            return read
    import asyncio

    result: Output = asyncio.run(_with_client(command, args, config, progress))
    return result


def _without_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The value of a coroutine that never waits for anything (the HTTP reader's: its I/O blocks)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the HTTP reader awaited something: it must block instead")


def _check_filters(args: argparse.Namespace) -> None:
    """Unknown filter values are mistakes, not empty results."""
    from contracts.kinds import KINDS

    filters = [("--phase", args.phase, [p.value for p in Phase]), ("--kind", args.kind, list(KINDS))]
    for flag, value, known in filters:
        if value and value not in known:
            from contracts.suggest import did_you_mean

            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"{flag} {value!r} is not one of: {', '.join(known)}{did_you_mean(value, known)}",
            )


# Commands that only read runs: given a `client.reading.Runs` of either transport instead of an SDK client.
READS = ("status", "list")


def _http_runs(config: Config, run: str | None) -> Runs | None:
    """Temporal's HTTP API when one is configured and its paths can name the run: `status` and `list`
    then import no SDK (it alone costs more than their budget). None: read through the SDK, as when
    a trace is asked for (it begins with the SDK client's span)."""
    if not config.temporal_http_address or config.trace_exporter != "none":
        return None
    from client.http_runs import HttpRuns, addressable

    return HttpRuns(config) if addressable(config.namespace) and (run is None or addressable(run)) else None


async def _with_client(
    command: Callable[..., Any], args: argparse.Namespace, config: Config, progress: Progress
) -> Output:
    from client.runs import SdkRuns, connect

    reads = args.command in READS
    if config.trace_exporter == "none":
        client = await _connect_after_start(connect, args, config)
        output: Output = await command(SdkRuns(client) if reads else client, args, config, progress)
        return output
    from client.tracing import command_span

    with command_span(config, args.command, _span_attributes(args)):  # one trace, down to every activity
        client = await connect(config)
        traced: Output = await command(SdkRuns(client) if reads else client, args, config, progress)
        return traced


async def _connect_after_start(connect: Callable[[Config], Any], args: argparse.Namespace, config: Config) -> Any:
    """The SDK client; when `apply` already started its run over HTTP, a failure to connect says so."""
    try:
        return await connect(config)
    except OpsctlError as exc:
        started = getattr(args, "started", None)
        if started is None:
            raise
        workflow_id = started[0]
        raise OpsctlError(
            exc.kind or exc.exit_code,
            f"run {workflow_id} was submitted and goes on, but following it failed: {exc.message}",
            hint=f"follow it with `opsctl result {workflow_id} --wait` once Temporal answers",
        ) from exc


def _span_attributes(args: argparse.Namespace) -> dict[str, str]:
    request: Request | None = getattr(args, "request", None)
    if request is None:
        return {"opsctl.run_id": getattr(args, "run", None) or ""}
    return {
        "opsctl.run_id": request.workflow_id() if args.command == "apply" else "",
        "opsctl.kind": request.kind,
        "opsctl.environment": request.metadata.environment,
    }


def _reporter(progress: Progress) -> Callable[[RunState], None]:
    """Print each phase and each apply step once, in order, however coarse the polling is; a long
    step's heartbeats as a live bar on a terminal, else as lines with the time it has left."""
    from client.progress import Eta

    said: set[str] = set()
    eta = Eta()
    bar: Callable[[str, str, float, float], bool] = getattr(progress, "bar", lambda *_: False)

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
            reading, of = activity.details.get("done"), activity.details.get("total")
            if isinstance(reading, int | float) and isinstance(of, int | float) and of > 0:
                seen_as = f"{activity.activity_type}#{activity.attempt}"
                label = f"{activity.step or activity.activity_type} ({activity.details.get('unit', '')})"
                if bar(seen_as, label, reading, of):
                    continue
                left = eta(seen_as, reading, of)
                line += f" — about {_duration(left)} left" if left is not None else ""
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
    existing = await _existing_run(client, request)
    if existing is not None:
        _same_request(existing, request)
        return _planned_before(existing, config)
    handle, new = await start_run(
        client, request, task_queue=config.task_queue, mode=Mode.DRY_RUN, keys=_keys(config, request, progress)
    )
    progress(f"planning on the worker (dry run {handle.id}) …")
    state = await wait_for(handle, _planned, timeout=args.timeout, say=progress, just_started=new)
    if not state.phase.terminal:
        raise OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"no plan within {args.timeout:.0f}s (phase {state.phase.value})",
            hint="is a worker running? `opsctl dev status`",
        )
    return run_output(state, config.web_ui(handle.id), all_sql=args.full)


def _planned(state: RunState) -> bool:
    return state.phase.terminal or state.phase is Phase.NEEDS_REVIEW


async def _existing_run(client: Any, request: Request) -> RunState | None:
    """The run this request already started, if any: `apply` would attach to it instead of starting one."""
    from client.runs import find_run, read_state

    handle = await find_run(client, request.workflow_id())
    return None if handle is None else await read_state(handle)


def _same_request(earlier: RunState, request: Request) -> None:
    """An idempotency key only ever means one request: another spec under it is refused (exit 2)."""
    if earlier.request.spec_hash() != request.spec_hash():
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"idempotencyKey {request.metadata.idempotency_key!r} already names run {earlier.workflow_id}, "
            "submitted with a different request (kind, environment or spec)",
            hint="use a new idempotencyKey for a new request; the same key only ever means the same request",
        )


def _planned_before(state: RunState, config: Config) -> Output:
    """`plan` of a request that already has its run: say what `apply` would really do (exit 10 only
    if that run may still change things)."""
    run = state.workflow_id
    if state.phase.terminal:
        note = (
            f"this request already ran: run {run} ended {state.phase.value}. `opsctl apply` would return that run "
            "and change nothing. To make the change again, give the document a new metadata.idempotencyKey."
        )
        code = ExitCode.SUCCESS
    else:
        note = (
            f"this request is already run {run}, now {state.phase.value}: `opsctl apply` would attach to it "
            f"(see `opsctl status {run}`); its plan is below."
        )
        code = ExitCode.SUCCESS if state.plan is not None and not state.plan.has_changes else ExitCode.CHANGES_PENDING
    output = run_output(state, config.web_ui(run), report=False)
    output.text = f"{note}\n\n{output.text}"
    output.data = {"existing_run": output.data, "note": note, "exit_code": int(code)}
    output.exit_code = code
    return output


async def cmd_apply(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from client.runs import UNANSWERED_FOR, start_run, wait_for

    request: Request = args.request
    emergency = _emergency(args)
    started = getattr(args, "started", None)
    if started is None:
        keys = _keys(config, request, progress)
        args.submitting = True  # for Ctrl-C's message: from here on the run may exist
        handle, new = await start_run(client, request, task_queue=config.task_queue, emergency=emergency, keys=keys)
        args.submitted = True
    else:  # started over HTTP before the SDK was imported (`_start_over_http`)
        workflow_id, run_id, new = started
        # As the SDK's start hands it back: the chain's first run, read and followed at its latest
        # (a continue-as-new or a reset goes on as another run of this id).
        handle = client.get_workflow_handle(workflow_id, first_execution_run_id=run_id or None, result_type=RunState)
    if not new:
        _same_request(await wait_for(handle, lambda _: True, timeout=UNANSWERED_FOR), request)  # busy: ask again
    if new:
        how = " as an EMERGENCY (break-glass; a post-incident review follows)" if emergency else ""
        progress(f"submitted {handle.id} as {request.metadata.requester}{how}")
    else:
        progress(f"attached to {handle.id}: this request was submitted before (same idempotency key or spec)")
    progress(f"Web UI: {config.web_ui(handle.id)}")
    until = _waiting(args) if args.wait else _settled
    state = await wait_for(
        handle, until, timeout=args.timeout, on_change=_reporter(progress), say=progress, just_started=new
    )
    if args.wait:  # without it, apply reports where the submitted run stands when the time is up
        _still_running(state, until, args.timeout)
    output = run_output(state, config.web_ui(handle.id), all_sql=args.full)
    output.extra_json["attached"] = not new
    return output


def _start_over_http(args: argparse.Namespace, config: Config, progress: Progress) -> tuple[str, str, bool] | None:
    """apply through Temporal's HTTP API when one is configured: the run is going while the SDK is
    imported to follow it (`client.http_start`). Returns (workflow id, run id, new), or None to
    start through the SDK, as when a trace is asked for (it begins with the SDK client's span)."""
    request: Request = args.request
    workflow_id = request.workflow_id()  # an apply's run id (`client.runs.run_id_for`)
    if not config.temporal_http_address or config.trace_exporter != "none":
        return None
    from client.http_runs import addressable

    if not (addressable(config.namespace) and addressable(workflow_id)):
        return None
    from client.http_start import start

    emergency = _emergency(args)
    keys = _keys(config, request, progress)
    input = keys.sign_request(RunInput(request=request, mode=Mode.APPLY, emergency=emergency), workflow_id)
    args.submitting = True  # for Ctrl-C's message: from here on the run may exist
    run_id, new = start(config, input, workflow_id, config.task_queue)
    args.submitted = True
    return workflow_id, run_id, new


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


async def cmd_rerun(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    """A new run of a failed run's request, by you, linked to it both ways."""
    import hashlib

    from client.runs import handle_for, read_state
    from contracts.request import RERUN_LABEL

    earlier = await read_state(await handle_for(client, args.run))
    run = earlier.workflow_id
    if not earlier.phase.terminal:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"run {run} is still {earlier.phase.value}: it goes on",
            hint=f"follow it with `opsctl watch {run}`, or stop it first with `opsctl cancel {run} --reason …`",
        )
    if earlier.mode is Mode.DRY_RUN:
        raise OpsctlError(ExitCode.INVALID_INPUT, f"{run} is a dry run", hint="plan again with `opsctl plan -f DOC`")
    if earlier.phase in (Phase.SUCCEEDED, Phase.NO_CHANGES):
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"run {run} ended {earlier.phase.value}: a rerun is for a run that did not succeed",
            hint="to make the same change again, apply the document with a new metadata.idempotencyKey",
        )
    if not earlier.requester_verified:  # e.g. a raw `temporal workflow start` that reused the id
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"run {run}'s request was not verified as signed by its requester ({earlier.requester}): "
            "a rerun signs it as yours, so it only repeats verified requests",
            hint="read it with `opsctl audit` and apply the document yourself if it is what you want",
        )
    key = f"rerun-{hashlib.sha256(run.encode()).hexdigest()[:16]}"  # the same earlier run: the same rerun
    labels = {**earlier.request.metadata.labels, RERUN_LABEL: run}
    metadata = earlier.request.metadata.model_copy(
        update={"idempotency_key": key, "requester": config.user, "labels": labels}
    )
    args.request = earlier.request.model_copy(update={"metadata": metadata})
    args.emergency, args.reason = False, None
    output = await cmd_apply(client, args, config, progress)
    output.extra_json["rerun_of"] = run
    return output


async def cmd_watch(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    """Follow a run live; return when it ends or when a person must act (unless --until-approved)."""
    from client.runs import handle_for, wait_for

    handle = await handle_for(client, args.run)
    until = _waiting(args)
    lines = _json_lines(progress) if args.format == "json" else _reporter(progress)
    state = await wait_for(handle, until, timeout=args.timeout, on_change=lines, say=progress)
    _still_running(state, until, args.timeout)
    output = run_output(state, config.web_ui(handle.id), report=state.phase.terminal)
    output.compact = args.format == "json"  # the last JSON line: the run as it stands
    return output


def _waiting(args: argparse.Namespace) -> Callable[[RunState], bool]:
    """What a waiting command (--wait, watch) waits for: the end, or a person who must act — at once for a
    review (exit 8), and for an approval unless --until-approved (then it waits on through it)."""
    if getattr(args, "until_approved", False):
        return lambda state: _ended(state) or state.phase is Phase.NEEDS_REVIEW
    return lambda state: _ended(state) or state.phase in _PEOPLE_ACT


def _json_lines(progress: Progress) -> Callable[[RunState], None]:
    """`watch -o json`: one JSON object per change, on stdout (progress itself stays off stdout)."""
    import json

    emit: Callable[[str], None] = getattr(progress, "emit", print)  # stdout: the result stream
    seen: set[str] = set()

    def report(state: RunState) -> None:
        event = {
            "event": "progress",
            "workflow_id": state.workflow_id,
            "phase": state.phase.value,
            "step": state.progress.step,
            "done": state.progress.done,
            "total": state.progress.total,
            "live": [activity.describe() for activity in state.live],
            "next_action": state.next_action,
        }
        line = json.dumps(event, default=str)
        if line not in seen:
            seen.add(line)
            emit(line)

    return report


async def cmd_note(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    """A note goes into the run's own history while it runs; after it ended, into a note of its own."""
    from client.runs import handle_for, note_after, read_state

    text = args.text.strip()
    if not text:
        raise OpsctlError(
            ExitCode.INVALID_INPUT, "the note is empty", hint=f'opsctl note {args.run} "what you saw or did"'
        )
    input = DecisionInput(actor=config.user, comment=text)
    state = await read_state(await handle_for(client, args.run))
    if not state.phase.terminal:
        return await _decide(client, args, config, Decision.NOTE, input)
    record = await note_after(client, state, input, keys=config.keyring(), task_queue=config.task_queue)
    verdict = "accepted" if record.accepted else "REFUSED"
    said = f"note by {record.actor}: {verdict} — {record.reason} (kept with run {state.workflow_id}, which has ended)"
    return Output(
        {"decision": record.model_dump(mode="json"), "run": state.workflow_id},
        said,
        ExitCode.SUCCESS if record.accepted else ExitCode.DENIED,
    )


async def cmd_status(runs: Runs, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from client.reading import read_run

    reader = await runs.reader(args.run)
    return run_output(await read_run(reader), config.web_ui(reader.workflow_id), report=False)


async def cmd_result(client: Any, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from client.runs import handle_for, wait_for

    handle = await handle_for(client, args.run)
    until = _waiting(args) if args.wait else (lambda _: True)
    reporter = _reporter(progress) if args.wait else lambda _: None
    state = await wait_for(handle, until, timeout=args.timeout, on_change=reporter, say=progress)
    _still_running(state, until, args.timeout)
    return run_output(state, config.web_ui(handle.id), all_sql=args.full)


async def cmd_list(runs: Runs, args: argparse.Namespace, config: Config, progress: Progress) -> Output:
    from contracts import search_attributes as sa

    words = (
        (sa.PHASE, args.phase),
        (sa.KIND, args.kind),
        (sa.ENVIRONMENT, args.env),
        (sa.REQUESTER, args.requester),
        (sa.RERUN_OF, args.rerun_of),
    )
    filters = [f"{attribute} = '{value}'" for attribute, value in words if value]
    if args.since:
        filters.append(f"StartTime >= '{args.since.isoformat()}'")
    if args.emergency:
        filters.append(f"{sa.EMERGENCY} = true")
    if not (args.dry_runs or args.drift):  # drift is found by dry runs; a run from before OpsctlMode has none
        filters.append(f"({sa.MODE} IS NULL OR {sa.MODE} != '{Mode.DRY_RUN.value}')")
    if args.drift:  # scheduled dry runs whose plan had changes
        filters += [f"{sa.DRIFT} = true", f"{sa.MODE} = '{Mode.DRY_RUN.value}'"]
    query = " AND ".join([f"{sa.KIND} IS NOT NULL", *filters])
    rows = []
    for execution in await runs.listing(query, args.limit):
        attributes = execution.attributes
        rows.append(
            {
                "run_id": execution.workflow_id,
                "kind": attributes.get(sa.KIND, execution.workflow_type),
                "environment": attributes.get(sa.ENVIRONMENT, ""),
                "phase": attributes.get(sa.PHASE, ""),
                "requester": attributes.get(sa.REQUESTER, ""),
                "emergency": bool(attributes.get(sa.EMERGENCY, False)),
                "dry_run": attributes.get(sa.MODE) == Mode.DRY_RUN.value,
                "rerun_of": attributes.get(sa.RERUN_OF, ""),
                "started": execution.start_time.strftime("%Y-%m-%d %H:%M:%S"),
                "plan_hash": attributes.get(sa.PLAN_HASH, ""),
            }
        )
    columns = ["run_id", "kind", "environment", "phase", "requester", "emergency", "started"]
    text = table(rows, [*columns, "dry_run"] if args.dry_runs else columns)
    return Output({"runs": rows, "query": query}, text)
