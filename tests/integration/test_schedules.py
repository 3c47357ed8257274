"""Scheduled runs on the real stack (Temporal dev server: the time-skipping one knows no schedules' search
attributes): each fire is a normal run through the same gate, a schedule's signature counts only for runs
that schedule started, a fire of the same time runs once, and a scheduled dry run is drift detection.

With OPSCTL_RECORD_HISTORIES=1 the drift test saves its runs' histories for the replay tests.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from temporalio.client import (
    Client,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from client import schedules
from client.devstack import Stack, seed_role
from client.runs import decide, start_run, wait_for
from contracts import search_attributes as sa
from contracts.failures import FailureKind
from contracts.phases import Phase
from contracts.request import Request, parse_request
from contracts.run import Decision, DecisionInput, Mode, RunInput, RunState
from contracts.schedules import Cadence, OnDrift, ScheduleGrant, every, fire_id
from tests.client.test_examples import record
from tests.identities import KEYRING, policy_document
from tests.integration.test_rotate_credential import can_login, rotation_request, secret_stages
from tests.integration.test_sweep_volumes import existing, make_volumes
from worker.main import build_worker
from worker.settings import WorkerSettings

T = TypeVar("T")
HOUR = every("1h")  # never fires by itself during a test: fires come from trigger and backfill
LIFETIME = 30 * 24 * 3600


def web_ui(schedule_id: str) -> str:
    return f"ui/{schedule_id}"


@pytest.fixture
async def made(client: Client) -> AsyncIterator[list[str]]:
    """Schedule ids a test created: deleted after it (their worker's task queue goes with the test)."""
    ids: list[str] = []
    yield ids
    for schedule_id in ids:
        await client.get_schedule_handle(schedule_id).delete()


async def create(
    client: Client,
    task_queue: str,
    made: list[str],
    request: Request,
    cadence: Cadence = HOUR,
    mode: Mode = Mode.APPLY,
    on_drift: OnDrift = OnDrift.RECORD,
) -> str:
    view, new = await schedules.create(
        client,
        request,
        cadence,
        mode=mode,
        on_drift=on_drift,
        task_queue=task_queue,
        keys=KEYRING,
        lifetime=LIFETIME,
        web_ui=web_ui,
    )
    assert new
    made.append(view.schedule_id)
    return view.schedule_id


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 30) -> T:
    """Ask until `ok` holds (visibility is eventually consistent); the last answer either way."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if ok(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.3)


async def fired(client: Client, schedule_id: str) -> tuple[str, RunState]:
    """Trigger the schedule; the run it started, once it settles (ended, or waiting for a person)."""
    _, run = await schedules.trigger(client, schedule_id, web_ui)
    state = await settled(client, run)
    return run, state


async def settled(client: Client, run: str) -> RunState:
    """The run's state once it ended or waits for a person (a backfilled fire may not have started yet)."""
    handle = client.get_workflow_handle(run, result_type=RunState)
    await eventually(lambda: _exists(client, run), bool, timeout=15)
    return await wait_for(handle, lambda s: s.phase.terminal or s.phase is Phase.AWAITING_APPROVAL, timeout=60)


async def _exists(client: Client, run: str) -> bool:
    try:
        await client.get_workflow_handle(run).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def rotation(stack: Stack, environment: str = "prod") -> tuple[Request, str, str]:
    role, secret = f"s_{uuid.uuid4().hex[:8]}", f"sched/{uuid.uuid4().hex[:8]}"
    password = seed_role(stack, role, secret)
    return parse_request(rotation_request(role, secret, environment)), secret, password


async def test_a_scheduled_prod_apply_waits_for_a_second_person_like_any_apply(
    stack: Stack, client: Client, task_queue: str, made: list[str]
) -> None:
    """Each fire is its own run (`<schedule id>-<fire time>`), signed by the schedule's requester, verified,
    held for approval: the requester cannot approve it, a second person can."""
    request, secret, password = rotation(stack)
    schedule_id = await create(client, task_queue, made, request)
    run, waiting = await fired(client, schedule_id)

    assert run.startswith(f"{schedule_id}-20")
    assert Phase.AWAITING_APPROVAL == waiting.phase, waiting.failure
    assert waiting.requester_verified, "the schedule's signature verified for the schedule's run"
    assert waiting.scheduled is not None
    assert (schedule_id, "every 1h", "") == (
        waiting.scheduled.schedule_id,
        waiting.scheduled.cadence,
        waiting.scheduled.drift_of,
    )
    handle = client.get_workflow_handle(run, result_type=RunState)
    own, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="alice", plan_hash=waiting.plan_hash), keys=KEYRING
    )
    assert not own.accepted
    assert own.reason.startswith("four-eyes")
    approval, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=waiting.plan_hash), keys=KEYRING
    )
    assert approval.accepted, approval.reason
    done = await handle.result()
    assert Phase.SUCCEEDED == done.phase
    assert not await can_login(stack, request.spec["role"], password)
    assert 2 == len(secret_stages(stack, secret)), "one rotation: one new secret version"


async def test_a_schedules_signed_input_started_by_hand_is_refused_whatever_it_claims(
    stack: Stack, client: Client, task_queue: str, made: list[str]
) -> None:
    """Copying a schedule's input into `temporal workflow start` — even with the fire's id and the search
    attributes Temporal's scheduler sets (any client may set them) — does not make a run the schedule's."""
    request, _, password = rotation(stack)
    schedule_id = await create(client, task_queue, made, request)
    described = await client.get_schedule_handle(schedule_id).describe()
    copied_payload = described.schedule.action.args[0]  # type: ignore[attr-defined]
    (copied,) = await client.data_converter.decode([copied_payload], [RunInput])
    assert copied.signature is not None, "the schedule's input carries alice's signature"

    now = datetime.now(UTC).replace(microsecond=0)
    claims = TypedSearchAttributes(
        [
            SearchAttributePair(SearchAttributeKey.for_keyword("TemporalScheduledById"), schedule_id),
            SearchAttributePair(SearchAttributeKey.for_datetime("TemporalScheduledStartTime"), now),
        ]
    )
    refused: RunState = await client.execute_workflow(
        request.kind,
        copied,
        id=fire_id(schedule_id, now),
        task_queue=task_queue,
        search_attributes=claims,
        result_type=RunState,
    )
    assert Phase.FAILED == refused.phase
    assert refused.failure is not None
    assert FailureKind.POLICY_DENIED == refused.failure.kind
    assert f"schedule {schedule_id} did not start" in refused.failure.message
    assert "planning" not in refused.phase_times
    # The same input as a drift's apply (mode apply) is refused too: only a child of the schedule's dry run is one.
    as_apply = copied.model_copy(update={"mode": Mode.APPLY})
    also: RunState = await client.execute_workflow(
        request.kind, as_apply, id=f"{schedule_id}-by-hand-apply", task_queue=task_queue, result_type=RunState
    )
    assert also.failure is not None
    assert "did not start" in also.failure.message
    assert await can_login(stack, request.spec["role"], password), "nothing was rotated"


async def test_an_edited_schedule_cannot_change_what_was_signed(
    stack: Stack, client: Client, task_queue: str, made: list[str]
) -> None:
    """Someone with schedule rights changes the cadence, or turns a signed dry run into an apply: the schedule's
    own runs are then refused before planning."""
    request, _, password = rotation(stack)
    schedule_id = await create(client, task_queue, made, request, mode=Mode.DRY_RUN, on_drift=OnDrift.SUBMIT)
    handle = client.get_schedule_handle(schedule_id)

    def faster(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update.description.schedule
        schedule.spec.intervals = [ScheduleIntervalSpec(every=timedelta(seconds=30))]
        return ScheduleUpdate(schedule=schedule)

    await handle.update(faster)
    await handle.pause()
    _, refused = await fired(client, schedule_id)
    assert refused.failure is not None
    assert "now runs every 30s, but its request was signed for every 1h" in refused.failure.message

    described = await handle.describe()
    (signed,) = await client.data_converter.decode([described.schedule.action.args[0]], [RunInput])  # type: ignore[attr-defined]

    def back_but_apply(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update.description.schedule
        schedule.spec.intervals = [ScheduleIntervalSpec(every=timedelta(hours=1))]
        action: Any = schedule.action
        action.args = [signed.model_copy(update={"mode": Mode.APPLY})]
        return ScheduleUpdate(schedule=schedule)

    await handle.update(back_but_apply)
    _, also = await fired(client, schedule_id)
    assert also.failure is not None
    assert "the request's signature: invalid signature" in also.failure.message
    assert "planning" not in also.phase_times
    assert await can_login(stack, request.spec["role"], password)


async def test_a_fire_of_the_same_time_twice_applies_once(
    stack: Stack, client: Client, task_queue: str, made: list[str]
) -> None:
    """Backfilling a fire time that already ran makes Temporal start that fire's workflow id again: the
    second execution is refused before planning, so the rotation happens once."""
    request, secret, _ = rotation(stack, environment="dev")
    schedule_id = await create(client, task_queue, made, request)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    run = fire_id(schedule_id, hour)
    window = ScheduleBackfill(start_at=hour - timedelta(seconds=1), end_at=hour + timedelta(seconds=1))
    handle = client.get_schedule_handle(schedule_id)

    await handle.backfill(window)
    first = await settled(client, run)
    await handle.backfill(window)

    async def executions() -> list[Any]:
        return [execution async for execution in client.list_workflows(f"WorkflowId = '{run}'")]

    both = await eventually(executions, lambda found: len(found) == 2)
    assert 2 == len(both)
    states = [await client.get_workflow_handle(run, run_id=e.run_id, result_type=RunState).result() for e in both]
    by_phase = sorted((state.phase.value, state.failure.kind.value if state.failure else "") for state in states)
    assert [("failed", "policy_denied"), ("succeeded", "")] == by_phase
    assert Phase.SUCCEEDED == first.phase
    assert 2 == len(secret_stages(stack, secret)), "one rotation: one new secret version"


def sweep_request(scope: str, environment: str = "prod") -> Request:
    return parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "SweepStaleVolumes",
            "metadata": {"environment": environment, "requester": "alice", "idempotencyKey": f"drift-{scope}"},
            "spec": {"olderThanDays": 0, "tagFilters": {"sweep-test": scope}},
        }
    )


async def test_a_scheduled_dry_run_records_drift_and_submits_its_apply_for_approval(
    stack: Stack, client: Client, task_queue: str, made: list[str]
) -> None:
    """Drift: the dry run's plan has changes → OpsctlDrift, and (--on-drift submit) an apply run that waits for
    a second person; while it is open, a later check submits no second one; once applied, no drift."""
    scope = uuid.uuid4().hex[:8]
    volumes = set(make_volumes(stack, scope, 3))
    schedule_id = await create(
        client, task_queue, made, sweep_request(scope), mode=Mode.DRY_RUN, on_drift=OnDrift.SUBMIT
    )
    check, drifted = await fired(client, schedule_id)
    assert Phase.PLANNED == drifted.phase
    assert drifted.scheduled is not None
    assert drifted.scheduled.drift
    apply_run = f"{check}-apply"
    assert apply_run == drifted.scheduled.submitted
    assert apply_run in drifted.next_action

    waiting = await settled(client, apply_run)
    assert Phase.AWAITING_APPROVAL == waiting.phase, waiting.failure
    assert ("alice", True, Mode.APPLY) == (waiting.requester, waiting.requester_verified, waiting.mode)
    assert waiting.scheduled is not None
    assert check == waiting.scheduled.drift_of
    listed = await eventually(
        lambda: _ids(client, f"{sa.DRIFT} = true AND WorkflowId STARTS_WITH '{schedule_id}-'"), lambda ids: check in ids
    )
    assert check in listed

    await asyncio.sleep(1.1)  # the next fire is another second: another run id
    second, again = await fired(client, schedule_id)
    assert second != check
    assert again.scheduled is not None
    assert apply_run == again.scheduled.submitted, "the open apply is named, no second one submitted"
    assert f"{second}-apply" not in await _ids(client, f"WorkflowId = '{second}-apply'")

    handle = client.get_workflow_handle(apply_run, result_type=RunState)
    approval, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=waiting.plan_hash), keys=KEYRING
    )
    assert approval.accepted, approval.reason
    assert Phase.SUCCEEDED == (await handle.result()).phase
    assert not existing(stack, scope) & volumes

    await asyncio.sleep(1.1)
    _, clean = await fired(client, schedule_id)
    assert clean.scheduled is not None
    assert (Phase.PLANNED, False, "") == (clean.phase, clean.scheduled.drift, clean.scheduled.submitted)
    not_drifting = await eventually(
        lambda: _ids(client, f"{sa.DRIFT} = false AND WorkflowId STARTS_WITH '{schedule_id}-'"),
        lambda ids: clean.workflow_id in ids,
    )
    assert clean.workflow_id in not_drifting
    if os.environ.get("OPSCTL_RECORD_HISTORIES"):  # the replay tests keep these paths deterministic
        for run in (check, apply_run, second, clean.workflow_id):
            await record(client, run)


async def test_a_check_whose_plan_is_larger_than_the_policy_allows_is_drift_that_is_never_submitted(
    stack: Stack, client: Client, worker_settings: WorkerSettings, made: list[str], tmp_path: Path
) -> None:
    """The plan deletes more than prod's blast radius: the check fails (policy_denied, as any dry run would)
    and is marked as drift, but submits no apply: that apply would be refused the same way."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy_document(prod={"requiredApprovals": 1, "maxDeletions": 1})))
    queue = f"blast-{uuid.uuid4().hex[:6]}"
    settings = worker_settings.model_copy(
        update={
            "policy_file": str(policy_file),
            "temporal": worker_settings.temporal.model_copy(update={"task_queue": queue}),
        }
    )
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 2)
    async with build_worker(client, settings):
        schedule_id = await create(
            client, queue, made, sweep_request(scope), mode=Mode.DRY_RUN, on_drift=OnDrift.SUBMIT
        )
        check, refused = await fired(client, schedule_id)
    assert refused.failure is not None
    assert (Phase.FAILED, FailureKind.POLICY_DENIED) == (refused.phase, refused.failure.kind)
    assert "the plan deletes 2 resources; prod allows 1 per run" in refused.failure.message
    assert refused.scheduled is not None
    assert (True, "") == (refused.scheduled.drift, refused.scheduled.submitted)
    assert check in await eventually(
        lambda: _ids(client, f"{sa.DRIFT} = true AND WorkflowId = '{check}'"), lambda ids: check in ids
    )
    assert not await _exists(client, f"{check}-apply")


async def test_a_manual_plan_records_no_drift_and_a_run_cannot_pose_as_a_drift_apply(
    stack: Stack, client: Client, task_queue: str
) -> None:
    """`opsctl plan` records no drift (OpsctlDrift false); a hand-made input naming a schedule that does not
    exist is refused."""
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 1)
    request = sweep_request(scope)
    handle, _ = await start_run(client, request, task_queue=task_queue, mode=Mode.DRY_RUN, keys=KEYRING)
    planned = await handle.result()
    assert (Phase.PLANNED, None) == (planned.phase, planned.scheduled)
    described = await handle.describe()
    # Every run sets OpsctlDrift itself (a caller's start-time value never stands): a manual plan, false.
    assert False is {key.name: value for key, value in described.typed_search_attributes}[sa.DRIFT]

    grant = ScheduleGrant(schedule_id=f"nope-{scope}", cadence="every 1h")
    forged = KEYRING.sign_request(RunInput(request=request, schedule=grant), grant.scope, lifetime=LIFETIME)
    refused: RunState = await client.execute_workflow(
        request.kind, forged, id=f"nope-{scope}-x", task_queue=task_queue, result_type=RunState
    )
    assert refused.failure is not None
    assert f"there is no schedule nope-{scope}" in refused.failure.message


async def _ids(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def test_a_schedule_edited_to_time_its_runs_out_or_triggered_alongside_has_its_runs_refused(
    stack: Stack, client: Client, task_queue: str, made: list[str]
) -> None:
    """A workflow timeout would stop an approved run mid-apply; an overlap override would run two at once."""
    request, _, _ = rotation(stack)
    schedule_id = await create(client, task_queue, made, request)
    handle = client.get_schedule_handle(schedule_id)
    first, waiting = await fired(client, schedule_id)
    assert Phase.AWAITING_APPROVAL == waiting.phase
    await asyncio.sleep(1.1)  # a fire a second later: its own id
    await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    alongside = await eventually(
        lambda: _ids(client, f"WorkflowId STARTS_WITH '{schedule_id}-'"), lambda ids: len(ids) >= 2
    )
    (second,) = alongside - {first}
    refused = await settled(client, second)
    assert refused.failure is not None
    assert f"another run of schedule {schedule_id} is open ({first})" in refused.failure.message
    await decide(
        client.get_workflow_handle(first, result_type=RunState),
        Decision.REJECT,
        DecisionInput(actor="bob", comment="test over"),
        keys=KEYRING,
    )

    def with_a_timeout(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update.description.schedule
        action: Any = schedule.action
        action.execution_timeout = timedelta(seconds=30)
        return ScheduleUpdate(schedule=schedule)

    await handle.update(with_a_timeout)
    await asyncio.sleep(1.1)
    _, timed = await fired(client, schedule_id)
    assert timed.failure is not None
    assert "started with a workflow timeout (0:00:30)" in timed.failure.message
    assert "planning" not in timed.phase_times


async def test_a_raw_start_with_a_workflow_timeout_is_refused_before_planning(
    stack: Stack, client: Client, task_queue: str
) -> None:
    request, _, _ = rotation(stack, "dev")
    run_id = f"timeout-{uuid.uuid4().hex[:8]}"
    input = KEYRING.sign_request(RunInput(request=request), run_id)
    refused: RunState = await client.execute_workflow(
        request.kind,
        input,
        id=run_id,
        task_queue=task_queue,
        result_type=RunState,
        execution_timeout=timedelta(minutes=10),
    )
    assert refused.failure is not None
    assert "started with a workflow timeout (0:10:00)" in refused.failure.message
    assert "planning" not in refused.phase_times


async def test_a_workflow_named_like_a_drift_apply_does_not_block_drift(
    stack: Stack, client: Client, task_queue: str, made: list[str]
) -> None:
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 1)
    schedule_id = await create(
        client, task_queue, made, sweep_request(scope), mode=Mode.DRY_RUN, on_drift=OnDrift.SUBMIT
    )
    decoy = await client.start_workflow("Nothing", id=f"{schedule_id}-2000-01-01T00:00:00Z-apply", task_queue="nowhere")
    try:
        check, drifted = await fired(client, schedule_id)
        assert drifted.scheduled is not None
        assert f"{check}-apply" == drifted.scheduled.submitted  # submitted: the decoy is nobody's apply
        await decide(
            client.get_workflow_handle(f"{check}-apply", result_type=RunState),
            Decision.REJECT,
            DecisionInput(actor="bob", comment="test over"),
            keys=KEYRING,
        )
    finally:
        await decoy.terminate()


async def test_a_memo_field_in_an_encoding_nobody_here_reads_is_no_opsctl_schedule() -> None:
    """Another application's schedule (its memo under another codec) never breaks `schedule list`."""
    from temporalio.api.common.v1 import Payload

    odd = Payload(metadata={"encoding": b"binary/other-app-encrypted"}, data=b"\x00")
    assert None is await schedules._memo_field(_WithMemo({"opsctl": odd}))


class _WithMemo:
    """A described schedule whose memo field is in an encoding this client cannot decode."""

    def __init__(self, fields: dict[str, object]) -> None:
        self.fields = fields

    async def memo_value(self, key: str, default: object) -> object:
        from temporalio.converter import DataConverter

        payload = self.fields.get(key)
        if payload is None:
            return default
        return DataConverter.default.payload_converter.from_payload(payload)  # type: ignore[arg-type]
