"""Talking to Temporal about runs: start or attach, signal and read back, query, list.

Command bodies in `client.commands` call these; tests call them too. Heavy imports
(temporalio) happen here, and this module is only imported by commands that need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from client.config import Config
from client.keys import Keyring
from client.reading import Listed, NoAnswer, Pending, no_run, read_run
from contracts import markdown
from contracts.failures import ExitCode, FailureKind, OpsctlError
from contracts.request import Request
from contracts.run import (
    Decision,
    DecisionInput,
    DecisionRecord,
    Mode,
    ResolveInput,
    RunInput,
    RunState,
)
from encryption.codec import with_encryption

# How long a run may go unanswered (no worker polls its task queue) before a waiting command says
# so (exit 4): long enough for workers to come back after a restart of theirs or of the server.
UNANSWERED_FOR = 20.0
# After the server itself was away: its workers reconnect with a backoff of their own (seconds
# between tries, longer on a loaded machine), so they are given this long from its return.
UNANSWERED_AFTER_OUTAGE = 60.0
LIVE_INTERVAL = 1.0  # how often a waiting command looks at a running step's heartbeats (its live progress)
# While a run's history is quiet, a waiting command asks the server's health this often (no query,
# no read of the run): the history's long poll rides out a lost server silently, and a person
# following the run is told within this.
HEALTH_EVERY = 2.0
LONG_POLL = timedelta(seconds=3)  # how long one request for new history events is held at most


async def connect(config: Config) -> Client:
    """A client that encrypts what it sends and decrypts what it reads when keys are configured.

    Without keys it still recognises encrypted payloads, to say which key is missing (exit 2).
    With `trace_exporter` configured, its calls are traced (`client.tracing`).
    """
    converter = with_encryption(pydantic_data_converter, config.encryption_keys(), strict=True)
    traced: list[Any] = []
    if config.trace_exporter != "none":  # OpenTelemetry is imported only when a command is traced
        from client.tracing import interceptors

        traced = interceptors(config)
    try:
        return await Client.connect(
            config.temporal_address, namespace=config.namespace, data_converter=converter, interceptors=traced
        )
    except RuntimeError as exc:
        raise OpsctlError(
            FailureKind.DEPENDENCY_UNAVAILABLE,
            f"cannot reach Temporal at {config.temporal_address}: {exc}",
            hint="start the embedded stack with `opsctl dev up`, or set OPSCTL_TEMPORAL_ADDRESS",
        ) from exc


def _search_attributes(request: Request, mode: Mode) -> TypedSearchAttributes:
    """What `opsctl list` filters on from the first moment; the workflow sets them again as it believes them."""
    from contracts import search_attributes as sa

    values = sa.at_start(request.kind, request.metadata.environment, request.metadata.requester, mode.value)
    return TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword(k), v) for k, v in values.items()])


def run_id_for(request: Request, mode: Mode) -> str:
    """The workflow id: the request's identity; a dry run mutates nothing, so each one is its own."""
    workflow_id = request.workflow_id()
    return f"{workflow_id}-plan-{uuid.uuid4().hex[:8]}" if mode is Mode.DRY_RUN else workflow_id


async def start_run(
    client: Client,
    request: Request,
    *,
    task_queue: str,
    mode: Mode = Mode.APPLY,
    emergency: str = "",
    keys: Keyring | None = None,
    search_attributes: bool = True,
) -> tuple[WorkflowHandle[Any, RunState], bool]:
    """Start the run (signed by the requester's key, if `keys` has it), or attach to the one this
    request already started. Returns (handle, new)."""
    workflow_id = run_id_for(request, mode)
    input = RunInput(request=request, mode=mode, emergency=emergency)
    if keys is not None:
        input = keys.sign_request(input, workflow_id)
    try:
        handle: WorkflowHandle[Any, RunState] = await client.start_workflow(
            request.kind,
            input,
            id=workflow_id,
            task_queue=task_queue,
            result_type=RunState,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=_search_attributes(request, mode) if search_attributes else None,
            # What the Web UI's list and the run's page show first; the workflow keeps current details.
            static_summary=markdown.summary(request),
            static_details=markdown.request_details(request),
        )
    except WorkflowAlreadyStartedError:
        # Running or finished with the same identity: attach to it, never start a second one.
        return client.get_workflow_handle(workflow_id, result_type=RunState), False
    return handle, True


async def read_state(handle: WorkflowHandle[Any, RunState]) -> RunState:
    """The run's state: from the result if it finished, else from the `state` query (`client.reading`)."""
    return await read_run(SdkRun(handle))


async def _failure_message(converter: DataConverter, failure: Failure) -> str:
    """A failure's message, decrypted when the worker encrypted it (then the proto's says "Encoded failure")."""
    decoded = await converter.decode_failure(failure)
    return decoded.message if isinstance(decoded, FailureError) else str(decoded)


async def wait_for(
    handle: WorkflowHandle[Any, RunState],
    until: Callable[[RunState], bool],
    *,
    timeout: float,
    on_change: Callable[[RunState], None] = lambda _: None,
    interval: float = LIVE_INTERVAL,
    say: Callable[[str], None] = lambda _: None,
    just_started: bool = False,
) -> RunState:
    """Follow the run until `until(state)` holds or the timeout passes; report each change.

    The run's history is long-polled (`wait_new_event`): its state is read again the moment the
    run writes an event, so a phase change or the close is seen within milliseconds. A step's
    heartbeats (its live progress) write no event: while a step is running, the state is also read
    every `interval`; otherwise the server's health is asked every `HEALTH_EVERY` seconds, to say
    so when Temporal is lost. Once the follower sees the run complete, its state is the result in
    that event, and a read still in flight is dropped (`_read`).

    The follower starts before the first wait (a state that already answers needs none), or at
    once for a run `just_started`: that one is certainly still running.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    changed = asyncio.Event()
    completed: asyncio.Future[Payloads] = loop.create_future()
    followers: list[asyncio.Task[None]] = []

    def follow() -> None:
        if not followers:
            followers.append(asyncio.create_task(_follow_history(handle, changed, completed)))

    if just_started:
        follow()
    try:
        return await _wait_on_changes(handle, completed, until, changed, deadline, on_change, interval, say, follow)
    finally:
        for follower in followers:
            follower.cancel()
        if followers:  # a long poll the SDK is slow to let go of must not hold up an exit (Ctrl-C)
            await asyncio.wait(followers, timeout=1.0)
            for follower in followers:  # what it ended with is not this wait's business
                if follower.done() and not follower.cancelled():
                    follower.exception()


async def _read(
    handle: WorkflowHandle[Any, RunState], completed: asyncio.Future[Payloads], lost: Callable[[], None]
) -> RunState:
    """The run's state (`read_state`), unless the follower sees the run complete first: then the
    result in its completion event. A query still in flight is dropped: answering it after the
    close means a worker replaying the whole run, and one sent during the run's first workflow
    task can be held by Temporal until well after the close (a second, measured). The server still
    hands a dropped query to a worker (which says "Query not found" when it answers too late):
    dropping it saves the waiting command's time, not the worker's.

    While the read takes longer than HEALTH_EVERY, the server's health is asked, and `lost()`
    called when it does not answer: the SDK retries a read of a lost server silently for seconds."""
    if not completed.done():
        reading = asyncio.ensure_future(read_state(handle))
        try:
            while not (reading.done() or completed.done()):
                await asyncio.wait((reading, completed), timeout=HEALTH_EVERY, return_when=asyncio.FIRST_COMPLETED)
                if not (reading.done() or completed.done() or await _answers(handle)):
                    lost()
            if reading.done():
                return reading.result()
        finally:
            if not reading.done():  # dropped, or the wait itself cancelled: the read goes too
                reading.cancel()
                reading.add_done_callback(_forget)
    decoded = await handle._client.data_converter.decode(completed.result().payloads, [RunState])
    state: RunState = decoded[0]
    return state


def _forget(task: asyncio.Future[Any]) -> None:
    """What a dropped read ended with is nobody's business."""
    if not task.cancelled():
        task.exception()


async def _wait_on_changes(
    handle: WorkflowHandle[Any, RunState],
    completed: asyncio.Future[Payloads],
    until: Callable[[RunState], bool],
    changed: asyncio.Event,
    deadline: float,
    on_change: Callable[[RunState], None],
    interval: float,
    say: Callable[[str], None],
    follow: Callable[[], None],
) -> RunState:
    loop = asyncio.get_running_loop()
    seen: tuple[Any, ...] = ()
    unanswered_since: float | None = None
    lost_since: float | None = None
    patience = UNANSWERED_FOR

    def lost(why: str = "its health check does not answer") -> None:
        nonlocal lost_since, patience, unanswered_since
        patience, unanswered_since = UNANSWERED_AFTER_OUTAGE, None  # the workers' time counts from its return
        if lost_since is None:
            lost_since = loop.time()
            say(f"lost Temporal ({why}); the run goes on, retrying until it answers")

    while True:
        changed.clear()  # before reading: an event written while the state is read wakes the next round
        try:
            state = await _read(handle, completed, lost)
            unanswered_since, patience = None, UNANSWERED_FOR
            if lost_since is not None:
                say(f"Temporal answers again after {loop.time() - lost_since:.0f} s; still following {handle.id}")
                lost_since = None
        except RPCError as exc:
            _reraise_cancel()
            # The server restarting or a network blip does not end the run: keep asking until the timeout.
            if exc.status not in _SERVER_AWAY or loop.time() >= deadline:
                raise
            lost(exc.message or exc.status.name)
            await asyncio.sleep(min(2.0, max(interval, 0.1)))
            continue
        except OpsctlError as exc:
            _reraise_cancel()
            # A worker restarting does not end the run: ask again for a while before giving up.
            if exc.exit_code is not ExitCode.DEPENDENCY_FAILURE or loop.time() >= deadline:
                raise
            if unanswered_since is None:
                unanswered_since = loop.time()
                say(f"{exc.message}; asking again for up to {patience:.0f} s")
            if loop.time() - unanswered_since >= patience:
                raise
            await asyncio.sleep(max(interval, 1.0))
            continue
        live = [(a.details.get("done"), a.details.get("paused"), a.attempt) for a in state.live]
        fingerprint = (state.phase, len(state.decisions), [(s.name, s.finished) for s in state.steps], live)
        if fingerprint != seen:
            seen = fingerprint
            on_change(state)
        left = deadline - loop.time()
        if until(state) or left <= 0:
            return state
        follow()
        # Heartbeats write no event: while a step runs, look at its progress every `interval` too.
        # `asyncio.timeout`, not `wait_for`: on Python 3.11 a cancel (Ctrl-C) that lands as the event is
        # set is swallowed by `wait_for`, and the wait would go on until its --timeout.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(left, interval if state.live else HEALTH_EVERY)):
                await changed.wait()
        if not (changed.is_set() or state.live or await _answers(handle)):
            lost()


async def _answers(handle: WorkflowHandle[Any, RunState]) -> bool:
    """Does the server answer a health check (one try, not retried, within HEALTH_EVERY)?"""
    try:
        return await handle._client.service_client.check_health(timeout=timedelta(seconds=HEALTH_EVERY))
    except (RPCError, RuntimeError):
        _reraise_cancel()
        return False


def _reraise_cancel() -> None:
    """A call cancelled under us (Ctrl-C) can come back as an RPCError: it is the cancel, not a lost server."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _follow_history(
    handle: WorkflowHandle[Any, RunState],
    changed: asyncio.Event,
    completed: asyncio.Future[Payloads],
) -> None:
    """Set `changed` whenever the run (or the run it continued as) writes events; once it has
    closed, every HEALTH_EVERY seconds (a reset or a reused id is another run, with no event here).
    A completion sets `completed` to the run's result.

    The server holds each request until there is a new event (a long poll). When the server is
    away, waits and asks again from the last event seen; the reader says what it sees meanwhile.
    """
    run_id, last, token = handle.run_id, 0, None
    while True:
        current = handle._client.get_workflow_handle(handle.id, run_id=run_id)
        # Each long poll is cut short and asked again from where it was: a pending call holds up the
        # process's exit (a Ctrl-C) until it returns, and the SDK does not cut it when cancelled.
        events = current.fetch_history_events(
            wait_new_event=True, skip_archival=True, next_page_token=token, rpc_timeout=LONG_POLL
        )
        try:
            async for event in events:
                token = events.next_page_token
                if event.event_id <= last:
                    continue
                last = event.event_id
                changed.set()
                if event.HasField("workflow_execution_continued_as_new_event_attributes"):
                    run_id = event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                    last, token = 0, None
                    break
                if event.HasField("workflow_execution_completed_event_attributes") and not completed.done():
                    completed.set_result(event.workflow_execution_completed_event_attributes.result)
            else:
                # The run closed. A reset, or a new run under this id, goes on elsewhere: look now and then.
                while True:
                    await asyncio.sleep(HEALTH_EVERY)
                    changed.set()
        except RPCError as exc:
            _reraise_cancel()
            if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):  # "Timeout expired"
                token = events.next_page_token or token
                continue  # our own cut: no news, ask again
            changed.set()  # the reader asks, and says whether the server is away
            await asyncio.sleep(1.0)


# What an unreachable or restarting server answers (the SDK reconnects by itself once it is back).
_SERVER_AWAY = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


async def handle_for(client: Client, run: str) -> WorkflowHandle[Any, RunState]:
    handle = await find_run(client, run)
    if handle is None:
        raise no_run(run)
    return handle


async def find_run(client: Client, run: str) -> WorkflowHandle[Any, RunState] | None:
    """The run's handle, or None if Temporal has no run of that id."""
    handle: WorkflowHandle[Any, RunState] = client.get_workflow_handle(run, result_type=RunState)
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return handle


async def note_after(
    client: Client, state: RunState, input: DecisionInput, *, keys: Keyring, task_queue: str, timeout: float = 15.0
) -> DecisionRecord:
    """A note on a run that has ended: its own small workflow, whose result is the worker's verdict."""
    from contracts.run import NOTE_WORKFLOW

    input = keys.sign_decision(state.decision_scope, Decision.NOTE, input)
    try:
        record: DecisionRecord = await client.execute_workflow(
            NOTE_WORKFLOW,
            input,
            id=f"{state.workflow_id}:note:{input.attempt_id}",
            task_queue=task_queue,
            result_type=DecisionRecord,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            execution_timeout=timedelta(seconds=60),
            rpc_timeout=timedelta(seconds=timeout),
        )
        return record
    except (RPCError, RPCTimeoutOrCancelledError, FailureError) as exc:
        raise OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"the note was not recorded: {exc}",
            hint="a note is recorded by a worker: is one polling its task queue? `opsctl dev status`",
        ) from exc


def quoted(text: str) -> str:
    """A value inside a visibility query's single quotes."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


async def notes_after(client: Client, workflow_id: str) -> list[DecisionRecord]:
    """The notes kept for a run after it ended (their own workflows), oldest first."""
    from contracts.run import NOTE_WORKFLOW

    query = f"WorkflowType = '{NOTE_WORKFLOW}' AND WorkflowId STARTS_WITH '{quoted(workflow_id + ':note:')}'"
    records = []
    async for execution in client.list_workflows(query, limit=200):
        if execution.status is not WorkflowExecutionStatus.COMPLETED:
            continue
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id, result_type=DecisionRecord)
        try:
            records.append(await handle.result())
        except Exception:  # noqa: S112 - a note that cannot be read is no note
            continue
    return sorted(records, key=lambda record: record.at)


async def decide(
    handle: WorkflowHandle[Any, RunState],
    decision: Decision,
    input: DecisionInput,
    *,
    keys: Keyring | None = None,
    timeout: float = 15.0,
) -> tuple[DecisionRecord, RunState]:
    """Send a decision as an update (signed with the actor's key, if `keys` has it): the verdict comes back.

    The workflow records every attempt, accepted or refused, and returns its record; the state
    is read after it, so the output shows the run as the decision left it.
    """
    state = await read_state(handle)
    if state.phase.terminal:
        raise OpsctlError(
            ExitCode.DENIED,
            f"run {handle.id} has already ended: {state.phase.value}",
            hint="nothing can be decided on a finished run",
        )
    input = (keys or Keyring([])).sign_decision(state.decision_scope, decision, input)
    name = "resolve" if isinstance(input, ResolveInput) else decision.value
    try:
        # The attempt id is the update id: sending the same attempt again returns the same verdict.
        record: DecisionRecord = await handle.execute_update(
            name, input, id=input.attempt_id, result_type=DecisionRecord, rpc_timeout=timedelta(seconds=timeout)
        )
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:  # it ended between reading its state and deciding
            raise OpsctlError(
                ExitCode.DENIED, f"run {handle.id} has already ended", hint="nothing can be decided on a finished run"
            ) from exc
        raise OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"the run did not take the {decision.value}: {exc.message}",
            hint="a run answers through a worker: is one polling its task queue? `opsctl dev status`",
        ) from exc
    except (RPCTimeoutOrCancelledError, WorkflowUpdateFailedError) as exc:
        raise OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"the run did not answer the {decision.value} within {timeout:.0f}s ({exc})",
            hint="a run answers through a worker: is one polling its task queue? `opsctl dev status`",
        ) from exc
    state = await read_state(handle)
    return record, state


# ---- reading a run through the SDK: the transport of `client.reading` that needs no HTTP port ----


class SdkRun:
    """One run read through the SDK (`client.reading.RunReader`): decoded by the handle's own converter."""

    def __init__(self, handle: WorkflowHandle[Any, RunState]) -> None:
        self.handle = handle
        self.workflow_id = handle.id
        self._described: WorkflowExecutionDescription | None = None

    async def status(self) -> str:
        self._described = await self.handle.describe()
        return self._described.status.name.lower() if self._described.status else ""

    async def result(self) -> RunState:
        return await self.handle.result()

    async def query_state(self, timeout: float) -> RunState:
        try:
            state: RunState = await self.handle.query(
                "state", result_type=RunState, rpc_timeout=timedelta(seconds=timeout)
            )
        except RPCError as exc:
            raise NoAnswer(exc.message) from exc
        return state

    async def failure(self) -> tuple[str, str]:
        run_id = self._described.run_id if self._described is not None else None
        described = self.handle._client.get_workflow_handle(self.workflow_id, run_id=run_id)  # not a later run
        try:
            await described.result(follow_runs=False, rpc_timeout=timedelta(seconds=10))
        except WorkflowFailureError as exc:
            cause = exc.cause
            kind = (cause.type or "") if isinstance(cause, ApplicationError) else ""
            return kind, cause.message if isinstance(cause, FailureError) else str(cause)
        return "", ""

    async def pending(self) -> list[Pending]:
        assert self._described is not None, "status() reads the description first"
        converter = self.handle._client.data_converter  # the handle's own converter decodes its payloads
        return [
            Pending(
                activity_type=pending.activity_type.name,
                attempt=pending.attempt,
                details=await converter.decode(pending.heartbeat_details.payloads)
                if pending.heartbeat_details.payloads
                else [],
                last_failure=await _failure_message(converter, pending.last_failure)
                if pending.HasField("last_failure")
                else "",
            )
            for pending in self._described.raw_description.pending_activities
        ]


class SdkRuns:
    """The runs `status` and `list` read through the SDK (`client.reading.Runs`)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def reader(self, workflow_id: str) -> SdkRun:
        return SdkRun(await handle_for(self.client, workflow_id))

    async def listing(self, query: str, limit: int) -> list[Listed]:
        return [
            Listed(
                workflow_id=execution.id,
                workflow_type=execution.workflow_type,
                start_time=execution.start_time,
                attributes={key.name: value for key, value in execution.typed_search_attributes},
            )
            async for execution in self.client.list_workflows(query, limit=limit)
        ]
