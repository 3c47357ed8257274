"""A wait sees the run's close in its history, whatever happens to a read of the run meanwhile.

Temporal can hold a `state` query sent during a run's first workflow task until well after the
run closed (measured: a second, for a run of half a second). A wait drops such a read once the
history follower sees the completion, and takes the run's state from that event's result.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client

import client.runs as runs
from client.devstack import Stack, seed_role
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import RunState
from tests.identities import KEYRING
from tests.integration.test_rotate_credential import rotation_request


async def test_a_just_started_run_is_seen_closed_while_every_read_of_it_is_held(
    stack: Stack, client: Client, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    role, secret_id = f"r_{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret_id)
    request = parse_request(rotation_request(role, secret_id, environment="dev"))
    handle, new = await runs.start_run(client, request, task_queue=task_queue, keys=KEYRING)
    assert new
    reads = []

    async def held(handle: object) -> RunState:
        reads.append(handle)
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    monkeypatch.setattr(runs, "read_state", held)
    ended = await asyncio.wait_for(runs.wait_for(handle, lambda s: s.phase.terminal, timeout=60, just_started=True), 30)
    assert Phase.SUCCEEDED == ended.phase, ended.failure
    assert 1 == len(reads)  # the first read was held; the close came from the history
    assert ended == await handle.result()
