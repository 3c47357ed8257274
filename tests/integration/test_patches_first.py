"""Queries during a run's first workflow task never leave it a history it cannot replay.

A `state` query that lands while the policy's local activity runs can split the first
workflow task in two. A patch decided after that local activity had its marker in the second
task, and replay then failed with TMPRL1100 (9 of 25 v1 sweeps under this query spam, before
admission decided its patches first). On the dev server: the time-skipping server runs each
workflow task differently.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer, Worker

from contracts.run import RunInput, RunState
from tests.identities import policy_activities
from tests.workflows.test_sweep_versions import V1_SPEC, FakeSweep, request
from worker.converter import DATA_CONVERTER
from workflows.admission import JUDGE_DEPRECATED_VERSIONS
from workflows.patches import FIRST_TASK, KEEPS_TEMPORAL_CANCELS
from workflows.sweep_volumes import SweepStaleVolumes

HISTORIES = Path(__file__).parents[1] / "workflows" / "histories"
# The patches a run records first, when admission decides its patches first: one of them, the newest.
DECIDING_FIRST = set(FIRST_TASK)

RUNS = 4


async def ask_state_until_closed(handle: WorkflowHandle[Any, RunState]) -> None:
    while True:
        with contextlib.suppress(Exception):  # before the first task completes, Temporal refuses queries
            await handle.query(SweepStaleVolumes.state)
        await asyncio.sleep(0.002)


def markers_of_the_first_task(events: list[dict[str, Any]]) -> list[str]:
    """Marker names before the run's first scheduled activity, patches named by their id."""
    names = []
    for event in events:
        if "ACTIVITY_TASK_SCHEDULED" in event["eventType"]:
            break
        marker = event.get("markerRecordedEventAttributes")
        if marker is None:
            continue
        if marker["markerName"] == "core_patch":
            data = marker["details"]["patch-data"]["payloads"][0]["data"]
            names.append(json.loads(base64.b64decode(data))["id"])
        else:
            names.append(marker["markerName"])
    return names


async def test_a_v1_sweep_queried_from_its_start_replays_and_decides_its_patches_before_the_policy(
    client: Client,
) -> None:
    queue = f"patches-{uuid.uuid4().hex[:8]}"
    fake = FakeSweep()
    replayer = Replayer(workflows=[SweepStaleVolumes], data_converter=DATA_CONVERTER)
    activities = [*fake.activities(), policy_activities().resolve_policy]
    async with Worker(client, task_queue=queue, workflows=[SweepStaleVolumes], activities=activities):
        for _ in range(RUNS):
            handle = await client.start_workflow(
                SweepStaleVolumes.run,
                RunInput(request=request("opsctl/v1", V1_SPEC)),
                id=f"patches-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
                result_type=RunState,
            )
            asking = asyncio.create_task(ask_state_until_closed(handle))
            try:
                await asyncio.wait_for(handle.result(), 30)
            finally:
                asking.cancel()
            history = await handle.fetch_history()
            events = json.loads(history.to_json())["events"]
            markers = markers_of_the_first_task(events)
            assert [KEEPS_TEMPORAL_CANCELS, JUDGE_DEPRECATED_VERSIONS, "core_local_activity"] == markers[:3], markers
            await replayer.replay_workflow(history)  # raises on nondeterminism


def test_every_recorded_history_that_decides_patches_first_has_no_patch_after_a_local_activity() -> None:
    """A patch added to admission later, but not to `decide_patches`, would show here once recorded."""
    checked = 0
    for path in sorted(HISTORIES.glob("*.json")):
        markers = markers_of_the_first_task(json.loads(path.read_text())["events"])
        if not DECIDING_FIRST & set(markers):
            continue  # recorded before patches were decided first
        checked += 1
        first_local = markers.index("core_local_activity") if "core_local_activity" in markers else len(markers)
        late = [m for m in markers[first_local:] if m != "core_local_activity"]
        assert [] == late, path.name
    assert checked >= 5, "every kind's example history, recorded with patches first"
