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
from temporalio.worker import Worker

from client.devstack import Stack
from client.runs import decide, start_run, wait_for
from contracts import search_attributes as sa
from contracts.phases import Phase
from contracts.run import Decision, DecisionInput, RunInput, RunState
from tests.identities import KEYRING
from tests.integration.test_rotate_credential import seeded_request
from worker.main import build_worker
from worker.settings import WorkerSettings

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


def worker_for(client: Client, settings: WorkerSettings, queue: str) -> Worker:
    """The production worker, on `queue`."""
    temporal = settings.temporal.model_copy(update={"task_queue": queue})
    return build_worker(client, settings.model_copy(update={"temporal": temporal}))


async def test_a_run_cancelled_before_its_first_task_shows_it_was_cancelled(
    stack: Stack, client: Client, worker_settings: WorkerSettings
) -> None:
    """Start and cancel in its first activation: the run reads its policy, keeps the cancel as Temporal's
    decision and ends cancelled before planning. It used to close as Temporal's Canceled with the
    caller's forged values standing."""
    _, _, _, request = await seeded_request(stack, "prod")
    queue = f"test-{uuid.uuid4().hex[:8]}"  # nobody polls it yet
    handle = await start_forged(client, queue, request)
    await handle.cancel()
    async with worker_for(client, worker_settings, queue):
        result = await handle.result()
    assert (Phase.CANCELLED, []) == (result.phase, result.changed), result.failure
    assert result.ending_decision is not None
    assert "temporal" == result.ending_decision.via
    described = shown(await handle.describe())
    expected = {sa.PHASE: "cancelled", sa.KIND: request.kind, sa.REQUESTER: "alice", sa.DRIFT: False, sa.PLAN_HASH: ""}
    assert expected == {name: described[name] for name in expected}
    events = json.loads((await handle.fetch_history()).to_json())["events"]
    markers = [e["markerRecordedEventAttributes"]["markerName"] for e in events if "markerRecordedEventAttributes" in e]
    assert 1 == markers.count("core_local_activity"), markers  # the policy read, not interrupted
    assert not any("ACTIVITY_TASK_SCHEDULED" in e["eventType"] for e in events), "it never planned"
    types = [e["eventType"] for e in events]
    assert types.index("EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED") < types.index(
        "EVENT_TYPE_WORKFLOW_TASK_STARTED"
    )
