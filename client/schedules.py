"""Talking to Temporal about schedules: create one (signed), read them back, pause, resume, trigger, delete.

A schedule is a Temporal Schedule, nothing home-made: its action starts the request's workflow
with one signed `RunInput`, Temporal fires it (each fire its own run, `<schedule id>-<fire time>`)
and skips a fire while the schedule's previous run is still open. opsctl writes a memo beside
it (kind, environment, requester, mode, cadence) so `schedule list` can say what it is; the
worker never reads the memo, only what Temporal itself records (`activities.schedules`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from client.keys import Keyring
from client.runs import _search_attributes
from contracts import markdown
from contracts.failures import ExitCode, FailureKind, OpsctlError
from contracts.request import Request
from contracts.run import Mode, RunInput
from contracts.schedules import CATCHUP_SECONDS, Cadence, OnDrift, Ranges, ScheduleGrant, describe_spec

MEMO_KEY = "opsctl"
TRIGGER_WITHIN = 10.0  # seconds `schedule trigger` waits for Temporal to say what the fire did

T = TypeVar("T")


class ScheduleMemo(BaseModel):
    """What opsctl writes beside a schedule, for people reading it (`schedule list`); the worker never trusts it."""

    kind: str
    environment: str
    requester: str
    mode: Mode
    on_drift: OnDrift | None = None  # dry runs only
    cadence: str  # as signed
    spec_hash: str  # the request's: the same document makes the same schedule
    signed_until: datetime | None = None  # None: unsigned (environments that do not require signatures)
    api_version: str = ""  # the request's contract version ('': written before versions were recorded, v1)


class LastRun(BaseModel):
    run_id: str
    fired_at: datetime  # the fire's nominal time
    started_at: datetime


class ScheduleView(BaseModel):
    """One opsctl schedule as `schedule list` and the other commands print it (its JSON is this model)."""

    schedule_id: str
    kind: str
    environment: str
    requester: str
    mode: Mode
    on_drift: OnDrift | None
    spec: str  # the cadence as Temporal runs it, in opsctl's words
    next_fire: datetime | None  # None while paused
    paused: bool
    note: str
    last_run: LastRun | None
    signed_until: datetime | None
    problem: str  # why its runs would be refused, or ''
    web_ui: str


def schedule_id_for(request: Request) -> str:
    """A request's schedule has the request's run id: one schedule per document (and its fires extend it)."""
    return request.workflow_id()


def temporal_spec(cadence: Cadence) -> ScheduleSpec:
    """The Temporal spec for a cadence: an interval, or the cron's calendar at second 0 (UTC)."""
    if cadence.every_seconds is not None:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=cadence.every_seconds))])
    assert cadence.calendar is not None

    def ranges(field: str) -> list[ScheduleRange]:
        values: Ranges = cadence.calendar[field] if cadence.calendar else ()
        return [ScheduleRange(start, end, step) for start, end, step in values]

    calendar = ScheduleCalendarSpec(
        second=[ScheduleRange(0)],
        minute=ranges("minute"),
        hour=ranges("hour"),
        day_of_month=ranges("day_of_month"),
        month=ranges("month"),
        day_of_week=ranges("day_of_week"),
    )
    return ScheduleSpec(calendars=[calendar])


async def create(
    client: Client,
    request: Request,
    cadence: Cadence,
    *,
    mode: Mode,
    on_drift: OnDrift,
    task_queue: str,
    keys: Keyring,
    lifetime: int,
    web_ui: Callable[[str], str],
) -> tuple[ScheduleView, bool]:
    """Create the request's schedule, its request signed for the schedule by the requester's key.
    Returns (the schedule, new); the same document and cadence again returns the existing one."""
    schedule_id = schedule_id_for(request)
    grant = ScheduleGrant(schedule_id=schedule_id, cadence=cadence.text, on_drift=on_drift)
    input = keys.sign_request(RunInput(request=request, mode=mode, schedule=grant), grant.scope, lifetime=lifetime)
    signed_until = datetime.fromtimestamp(input.signature.expires_at, UTC) if input.signature else None
    memo = ScheduleMemo(
        kind=request.kind,
        environment=request.metadata.environment,
        requester=request.metadata.requester or "",
        mode=mode,
        on_drift=on_drift if mode is Mode.DRY_RUN else None,
        cadence=cadence.text,
        spec_hash=request.spec_hash(),
        api_version=request.api_version,
        signed_until=signed_until,
    )
    action = ScheduleActionStartWorkflow(
        request.kind,
        input,
        id=schedule_id,  # Temporal appends each fire's time
        task_queue=task_queue,
        typed_search_attributes=_search_attributes(request, mode),
        static_summary=markdown.summary(request),
        static_details=markdown.request_details(request),
    )
    schedule = Schedule(
        action=action,
        spec=temporal_spec(cadence),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(seconds=CATCHUP_SECONDS)),
        state=ScheduleState(note=f"created by {memo.requester} with opsctl"),
    )
    try:
        await client.create_schedule(schedule_id, schedule, memo={MEMO_KEY: memo.model_dump(mode="json")})
    except ScheduleAlreadyRunningError:
        existing, recorded = await _described(client, schedule_id, web_ui)
        ignored = {"signed_until": None, "api_version": ""}
        same = recorded.model_copy(update=ignored) == memo.model_copy(update=ignored)
        if same and (recorded.api_version or "opsctl/v1") == request.api_version and not existing.problem:
            return existing, False
        if same:  # the same request, but its runs would be refused, or it was written in another version
            why = existing.problem or f"it holds the request as {recorded.api_version or 'opsctl/v1'}"
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"schedule {schedule_id} already exists for this request, but {why}",
                hint=f"delete it (`opsctl schedule delete {schedule_id}`) and create it again",
            ) from None
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"schedule {schedule_id} already exists ({existing.mode.value} {existing.spec}, requested by "
            f"{existing.requester}) with another request, cadence or mode",
            hint=f"delete it first (`opsctl schedule delete {schedule_id}`), or give this document another "
            "idempotencyKey",
        ) from None
    return await describe(client, schedule_id, web_ui), True


async def _guarded(schedule_id: str, call: Awaitable[T]) -> T:
    """A call on one schedule; an unknown id is a mistake (exit 2), as an unknown run is."""
    try:
        return await call
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"no schedule {schedule_id!r}",
                hint="list schedules with `opsctl schedule list`",
            ) from exc
        raise


async def _memo(handle: ScheduleHandle, schedule_id: str) -> ScheduleMemo:
    described = await _guarded(schedule_id, handle.describe())
    return _read_memo(schedule_id, await _memo_field(described))


async def _memo_field(described: Any) -> Any:
    """opsctl's memo field only, decoded alone: another application's fields may be in any encoding."""
    try:
        return await described.memo_value(MEMO_KEY, None)
    except Exception:  # undecodable (another codec, garbage): not an opsctl schedule
        return None


def _read_memo(schedule_id: str, memo: Any) -> ScheduleMemo:
    try:
        return ScheduleMemo.model_validate(memo)
    except ValidationError:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"schedule {schedule_id!r} is not an opsctl schedule",
            hint="opsctl manages the schedules `opsctl schedule create` made; use `temporal schedule` for others",
        ) from None


def _last_run(actions: Any) -> LastRun | None:
    results: list[ScheduleActionResult] = list(actions)
    for result in reversed(results):
        if isinstance(result.action, ScheduleActionExecutionStartWorkflow):
            return LastRun(run_id=result.action.workflow_id, fired_at=result.scheduled_at, started_at=result.started_at)
    return None


def _view(
    schedule_id: str,
    memo: ScheduleMemo,
    spec: str,
    *,
    state: Any,
    info: Any,
    web_ui: Callable[[str], str],
) -> ScheduleView:
    """`state` and `info`: a described schedule's, or a listed one's (the same fields, other types)."""
    paused = state.paused
    upcoming = list(info.next_action_times)
    return ScheduleView(
        schedule_id=schedule_id,
        kind=memo.kind,
        environment=memo.environment,
        requester=memo.requester,
        mode=memo.mode,
        on_drift=memo.on_drift,
        spec=spec,
        next_fire=upcoming[0] if upcoming and not paused else None,
        paused=paused,
        note=state.note or "",
        last_run=_last_run(info.recent_actions),
        signed_until=memo.signed_until,
        problem=_problem(memo, spec),
        web_ui=web_ui(schedule_id),
    )


def _problem(memo: ScheduleMemo, spec: str) -> str:
    """What makes the worker refuse this schedule's runs, as far as the client can tell."""
    if spec != memo.cadence:
        return f"it runs {spec} but its request was signed for {memo.cadence}: every run is refused"
    if memo.signed_until is not None and memo.signed_until <= datetime.now(UTC):
        return f"its signature expired at {memo.signed_until:%Y-%m-%d %H:%M} UTC: every run is refused"
    return ""


async def describe(client: Client, schedule_id: str, web_ui: Callable[[str], str]) -> ScheduleView:
    view, _ = await _described(client, schedule_id, web_ui)
    return view


async def _described(
    client: Client, schedule_id: str, web_ui: Callable[[str], str]
) -> tuple[ScheduleView, ScheduleMemo]:
    described = await _guarded(schedule_id, client.get_schedule_handle(schedule_id).describe())
    memo = _read_memo(schedule_id, await _memo_field(described))
    raw = described.raw_description.schedule
    spec = describe_spec(
        MessageToDict(raw.spec, preserving_proto_field_name=True),
        MessageToDict(raw.policies, preserving_proto_field_name=True),
    )
    view = _view(schedule_id, memo, spec, state=described.schedule.state, info=described.info, web_ui=web_ui)
    return view, memo


async def list_all(client: Client, web_ui: Callable[[str], str]) -> list[ScheduleView]:
    """opsctl's schedules (those with its memo), by id. Temporal's list is eventually consistent."""
    views = []
    async for entry in await client.list_schedules():
        memo = await _memo_field(entry)
        if memo is None or entry.info is None or entry.schedule is None:
            continue
        try:
            parsed = ScheduleMemo.model_validate(memo)
        except ValidationError:
            continue
        spec = describe_spec(MessageToDict(entry.raw_entry.info.spec, preserving_proto_field_name=True))
        views.append(_view(entry.id, parsed, spec, state=entry.schedule.state, info=entry.info, web_ui=web_ui))
    return sorted(views, key=lambda view: view.schedule_id)


async def pause(client: Client, schedule_id: str, reason: str, web_ui: Callable[[str], str]) -> ScheduleView:
    handle = client.get_schedule_handle(schedule_id)
    await _memo(handle, schedule_id)  # opsctl's own, and there
    await _guarded(schedule_id, handle.pause(note=reason or "paused with opsctl"))
    return await describe(client, schedule_id, web_ui)


async def resume(client: Client, schedule_id: str, reason: str, web_ui: Callable[[str], str]) -> ScheduleView:
    handle = client.get_schedule_handle(schedule_id)
    await _memo(handle, schedule_id)
    await _guarded(schedule_id, handle.unpause(note=reason or "resumed with opsctl"))
    return await describe(client, schedule_id, web_ui)


async def delete(client: Client, schedule_id: str) -> None:
    handle = client.get_schedule_handle(schedule_id)
    await _memo(handle, schedule_id)
    await _guarded(schedule_id, handle.delete())


async def trigger(client: Client, schedule_id: str, web_ui: Callable[[str], str]) -> tuple[ScheduleView, str]:
    """Fire the schedule now (paused or not); returns the run it started.

    The fire obeys the overlap policy: while the schedule's previous run is open it is skipped
    (a conflict, exit 4: retry when that run has ended). A fire is named by its second, and a
    second fire in the same second would be refused as a repeat of the first: this waits for the next.
    """
    handle = client.get_schedule_handle(schedule_id)
    await _memo(handle, schedule_id)
    before = await _guarded(schedule_id, handle.describe())
    seen = {_run_of(result) for result in before.info.recent_actions}
    skipped = before.info.num_actions_skipped_overlap
    last = max((result.scheduled_at for result in before.info.recent_actions), default=None)
    clock = datetime.now(UTC)
    if last is not None and last.replace(microsecond=0) >= clock.replace(microsecond=0):
        await asyncio.sleep(1.05 - clock.microsecond / 1e6)
    await _guarded(schedule_id, handle.trigger())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TRIGGER_WITHIN
    while True:
        now = await _guarded(schedule_id, handle.describe())
        started = [run for result in now.info.recent_actions if (run := _run_of(result)) not in seen]
        if started:
            return await describe(client, schedule_id, web_ui), started[-1][0]
        if now.info.num_actions_skipped_overlap > skipped:
            running = [
                run.workflow_id
                for run in now.info.running_actions
                if isinstance(run, ScheduleActionExecutionStartWorkflow)
            ]
            raise OpsctlError(
                FailureKind.CONFLICT,
                f"the fire was skipped: run {', '.join(running) or '(still open)'} of schedule {schedule_id} is "
                "still open, and a schedule never runs twice at once (overlap policy: skip)",
                hint="retry once that run has ended (`opsctl status RUN`)",
            )
        if loop.time() >= deadline:
            raise OpsctlError(
                ExitCode.DEPENDENCY_FAILURE,
                f"Temporal did not start a run of schedule {schedule_id} within {TRIGGER_WITHIN:.0f}s",
                hint="see the schedule in the Web UI, or `opsctl schedule list`",
            )
        await asyncio.sleep(0.2)


def _run_of(result: ScheduleActionResult) -> tuple[str, str]:
    action = result.action
    if isinstance(action, ScheduleActionExecutionStartWorkflow):
        return action.workflow_id, action.first_execution_run_id
    return "", ""
