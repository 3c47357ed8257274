"""`apply` starts its run through Temporal's HTTP API, as the SDK client would start it, before the SDK is imported.

On the session's real dev server: one request started through the SDK (`client.runs.start_run`)
and the same request started over HTTP (`client.http_start.start`) must leave the same start
event, field by field, and read the same through the CLI's encrypting client.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from client import http_start
from client.config import Config, load_config
from client.devstack import Stack, seed_role
from client.runs import connect, start_run
from contracts.request import Request, parse_request
from contracts.run import Mode, RunInput
from tests.client.conftest import ROOT, opsctl, opsctl_env
from tests.client.test_hot_paths import OTHER_KINDS
from tests.identities import KEYRING
from tests.integration.test_sweep_volumes import existing, make_volumes, sweep_worker
from worker.settings import WorkerSettings


@pytest.fixture
def config(stack: Stack) -> Config:
    """What `opsctl` reads for the stack: its HTTP address and its payload key among the rest."""
    os.environ.pop("OPSCTL_CONFIG", None)
    return load_config("alice", str(stack.state_dir))


@pytest.fixture
async def started(config: Config) -> AsyncIterator[list[WorkflowHandle[Any, Any]]]:
    """Runs on a task queue no worker polls (only their start is looked at), terminated afterwards."""
    handles: list[WorkflowHandle[Any, Any]] = []
    yield handles
    for handle in handles:
        await handle.terminate(reason="test_http_start: only its start was looked at")


def rotation(key: str) -> Request:
    return parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "RotateDbCredential",
            "metadata": {"environment": "dev", "requester": "alice", "idempotencyKey": key},
            "spec": {"database": "app", "role": "nobody", "secretId": "test/nobody"},
        }
    )


async def start_event(handle: WorkflowHandle[Any, Any]) -> HistoryEvent:
    async for event in handle.fetch_history_events():
        return event
    raise AssertionError("no events")


async def test_a_run_started_over_http_has_the_start_the_sdk_gives_it(
    config: Config, started: list[WorkflowHandle[Any, Any]]
) -> None:
    assert config.temporal_http_address, "the stack records its HTTP API"
    assert config.encryption_keys() is not None, "and its payload key"
    client = await connect(config)
    queue = f"http-start-{uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex[:8]
    by_sdk, new = await start_run(client, rotation(f"sdk-{key}"), task_queue=queue, keys=KEYRING)
    assert new
    request = rotation(f"http-{key}")
    workflow_id = request.workflow_id()
    signed = KEYRING.sign_request(RunInput(request=request, mode=Mode.APPLY), workflow_id)
    run_id, new = http_start.start(config, signed, workflow_id, queue)
    assert new
    assert run_id
    by_http = client.get_workflow_handle(workflow_id, run_id=run_id)
    started.extend([by_sdk, by_http])

    sdk, http = await start_event(by_sdk), await start_event(by_http)
    a, b = sdk.workflow_execution_started_event_attributes, http.workflow_execution_started_event_attributes
    assert (a.workflow_type, a.task_queue.name) == (b.workflow_type, b.task_queue.name)
    sealed = [p.metadata["encoding"] for p in (a.input.payloads[0], b.input.payloads[0])]
    assert [b"binary/encrypted"] * 2 == sealed
    assert {**a.search_attributes.indexed_fields} == {**b.search_attributes.indexed_fields}
    for metadata in (http.user_metadata.summary, http.user_metadata.details):
        assert b"binary/encrypted" == metadata.metadata["encoding"]

    converter = client.data_converter
    sdk_input: RunInput = (await converter.decode(a.input.payloads, [RunInput]))[0]
    http_input: RunInput = (await converter.decode(b.input.payloads, [RunInput]))[0]
    assert http_input == signed
    assert sdk_input.request.spec == http_input.request.spec
    sdk_meta, http_meta = await by_sdk.describe(), await by_http.describe()
    assert str(await sdk_meta.static_summary()).replace("sdk-", "http-") == await http_meta.static_summary()
    assert str(await sdk_meta.static_details()).replace("sdk-", "http-") == await http_meta.static_details()


async def test_the_same_request_again_is_not_a_second_start(
    config: Config, started: list[WorkflowHandle[Any, Any]]
) -> None:
    request = rotation(f"again-{uuid.uuid4().hex[:8]}")
    workflow_id, queue = request.workflow_id(), f"http-start-{uuid.uuid4().hex[:8]}"
    first = http_start.start(config, RunInput(request=request), workflow_id, queue)
    started.append((await connect(config)).get_workflow_handle(workflow_id))
    assert first[1]
    assert ("", False) == http_start.start(config, RunInput(request=request), workflow_id, queue)


SPY = f"""
OTHER_KINDS = {OTHER_KINDS!r}
import os, sys
import client.http_start as http_start
real = http_start.start
def spy(*args, **kwargs):
    print("sdk loaded at start:", "temporalio" in sys.modules, flush=True)
    print("other kinds at start:", sorted(set(OTHER_KINDS) & set(sys.modules)), flush=True)
    return real(*args, **kwargs)
http_start.start = spy
from client.main import main
main()
"""


async def test_apply_starts_its_run_before_it_imports_the_sdk(stack: Stack, task_queue: str, tmp_path: Path) -> None:
    role, secret_id = f"r_{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret_id)
    document = tmp_path / "rotation.yaml"
    document.write_text(
        "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata: {environment: dev}\n"
        f"spec: {{database: app, role: {role}, secretId: {secret_id}}}\n"
    )
    env = {**opsctl_env(stack, task_queue, tmp_path), "OPSCTL_TEMPORAL_HTTP_ADDRESS": stack.temporal_http_address}
    argv = ["-c", SPY, "apply", "-f", str(document), "--wait", "--format", "json"]
    process = await asyncio.create_subprocess_exec(  # the in-process worker goes on meanwhile
        sys.executable, *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    stdout = out.decode()
    assert "sdk loaded at start: False" in stdout, (stdout, err.decode())
    assert "other kinds at start: []" in stdout, stdout  # a rotation builds no migration's models
    assert 0 == process.returncode, err.decode()
    output = json.loads(stdout.split("\n", 2)[2])
    assert ("succeeded", False) == (output["phase"], output["attached"])


async def test_apply_started_over_http_follows_its_run_across_continue_as_new(
    stack: Stack, client: Client, worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    """A sweep of 30 volumes, 5 per batch, under a tiny history limit: several runs under one id."""
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 30)
    document = tmp_path / "sweep.yaml"
    spec = {"olderThanDays": 0, "tagFilters": {"sweep-test": scope}, "batchSize": 5}
    metadata = {"environment": "dev", "idempotencyKey": scope}
    document.write_text(
        json.dumps({"apiVersion": "opsctl/v1", "kind": "SweepStaleVolumes", "metadata": metadata, "spec": spec})
    )
    async with sweep_worker(client, worker_settings, history_event_limit=40) as queue:
        ran = await opsctl(
            opsctl_env(stack, queue, tmp_path), "apply", "-f", str(document), "--wait", "--format", "json"
        )
    assert 0 == ran.code, ran.stderr
    assert "succeeded" == ran.json()["phase"]
    assert set() == existing(stack, scope)
