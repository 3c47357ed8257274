"""Metrics and traces come from a real worker run: what operators scrape is what happened."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from client.devstack import Stack, free_port, seed_role
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Mode, RunInput
from tests.integration.test_rotate_credential import rotation_request
from worker.converter import DATA_CONVERTER
from worker.main import WORKFLOWS, build_activities
from worker.settings import WorkerSettings
from worker.telemetry import metrics_runtime
from workflows.rotate_credential import RotateDbCredential


async def test_a_finished_run_is_counted_on_the_prometheus_endpoint(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(
        stack.temporal_address, data_converter=DATA_CONVERTER, runtime=metrics_runtime(address)
    )
    role, secret = f"m_{uuid.uuid4().hex[:8]}", f"metrics/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    request = parse_request(rotation_request(role, secret, "dev"))
    queue = f"metrics-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=build_activities(worker_settings)):
        result = await client.execute_workflow(
            RotateDbCredential.run, RunInput(request=request, mode=Mode.APPLY), id=f"metrics-{role}", task_queue=queue
        )
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://{address}/metrics").read().decode())
    counted = [line for line in body.splitlines() if line.startswith("opsctl_runs_finished{")]

    assert Phase.SUCCEEDED == result.phase
    assert 1 == len(counted)
    assert 'phase="succeeded"' in counted[0]
    assert counted[0].endswith(" 1")
