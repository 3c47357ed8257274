"""What a run shows in Temporal's visibility: one upsert per activation at most, of what changed.

On the dev server (the time-skipping server has no custom search attributes).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from client.devstack import Stack
from client.runs import decide, start_run, wait_for
from contracts import search_attributes as sa
from contracts.phases import Phase
from contracts.run import Decision, DecisionInput, RunInput, RunState
from tests.identities import KEYRING
from tests.integration.test_rotate_credential import seeded_request

CHANGE_VERSION = "TemporalChangeVersion"  # Temporal's own, upserted with each patch marker


async def upserts_by_task(handle: WorkflowHandle[Any, RunState]) -> list[list[dict[str, Any]]]:
    """opsctl's upserts, grouped by the workflow task whose completion wrote them, in order."""
    history = json.loads((await handle.fetch_history()).to_json())["events"]
    tasks: list[list[dict[str, Any]]] = []
    for event in history:
        if event["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED":
            tasks.append([])
        attributes = event.get("upsertWorkflowSearchAttributesEventAttributes")
        if attributes is None:
            continue
        fields = attributes["searchAttributes"]["indexedFields"]
        values = {name: _decoded(payload) for name, payload in fields.items() if name != CHANGE_VERSION}
        if values:
            tasks[-1].append(values)
    return tasks


def _decoded(payload: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(payload["data"]))


def shown(described: Any) -> dict[str, Any]:
    return {key.name: value for key, value in described.typed_search_attributes if key.name in sa.SEARCH_ATTRIBUTES}


async def test_an_approved_rotation_upserts_once_per_task_and_only_what_changed(
    stack: Stack, client: Client, task_queue: str
) -> None:
    _, _, _, request = await seeded_request(stack, "prod")
    handle, _ = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    waiting = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    record, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=waiting.plan_hash), keys=KEYRING
    )
    assert record.accepted, record.reason
    result = await handle.result()
    assert Phase.SUCCEEDED == result.phase, result.failure

    tasks = await upserts_by_task(handle)
    assert all(len(upserts) <= 1 for upserts in tasks), tasks
    upserts = [upsert for task in tasks for upsert in task]
    assert set(sa.SEARCH_ATTRIBUTES) == set(upserts[0]), "the first upsert sets every attribute"
    seen: dict[str, Any] = {}
    for upsert in upserts:
        assert all(seen.get(name, object()) != value for name, value in upsert.items()), (upsert, seen)
        seen.update(upsert)
    phases = [upsert[sa.PHASE] for upsert in upserts if sa.PHASE in upsert]
    assert ["planning", "awaiting_approval", "replanning", "applying", "verifying", "succeeded"] == phases
    assert result.plan_hash == seen[sa.PLAN_HASH]
    assert seen == shown(await handle.describe())


FORGED = {sa.PHASE: "succeeded", sa.PLAN_HASH: "f" * 64, sa.KIND: "BackfillTable", sa.REQUESTER: "mallory"}


async def start_forged(client: Client, task_queue: str, request: Any) -> WorkflowHandle[Any, RunState]:
    """A raw start claiming another phase, plan, kind, requester and drift."""
    workflow_id = f"forged-{uuid.uuid4().hex[:8]}"
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(SearchAttributeKey.for_keyword(k), v) for k, v in FORGED.items()
    ]
    pairs.append(SearchAttributePair(SearchAttributeKey.for_bool(sa.DRIFT), True))
    return await client.start_workflow(
        request.kind,
        KEYRING.sign_request(RunInput(request=request), workflow_id),
        id=workflow_id,
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(pairs),
        result_type=RunState,
    )


async def test_a_callers_start_time_search_attributes_never_stand(
    stack: Stack, client: Client, task_queue: str
) -> None:
    """The run's first upsert sets its own values."""
    _, _, _, request = await seeded_request(stack, "dev")
    handle = await start_forged(client, task_queue, request)
    result = await handle.result()
    assert Phase.SUCCEEDED == result.phase, result.failure
    described = shown(await handle.describe())
    expected = {sa.PHASE: "succeeded", sa.PLAN_HASH: result.plan_hash, sa.KIND: request.kind, sa.DRIFT: False}
    assert expected == {name: described[name] for name in expected}
    assert request.metadata.requester == described[sa.REQUESTER]


async def test_a_run_cancelled_while_its_policy_loads_shows_it_was_cancelled(
    stack: Stack, client: Client, task_queue: str
) -> None:
    """Cancelled at once (in its first workflow task's policy read): it still ends through the
    lifecycle and sets its own values; it used to close as Temporal's Canceled with the forged ones."""
    _, _, _, request = await seeded_request(stack, "prod")
    handle = await start_forged(client, task_queue, request)
    await handle.cancel()
    result = await handle.result()
    assert (Phase.CANCELLED, []) == (result.phase, result.changed)
    described = shown(await handle.describe())
    expected = {sa.PHASE: "cancelled", sa.KIND: request.kind, sa.REQUESTER: "alice", sa.DRIFT: False}
    assert expected == {name: described[name] for name in expected}
