"""Figures for the sweep at scale: `python -m tests.bench_sweep [COUNT]` (default 10,000 volumes).

Starts its own embedded stack in a temp folder, creates COUNT stale volumes in moto,
sweeps them in dev and prints: wall time, volumes per second, how many runs the chain
took (continue-as-new) and the largest history of any run — which must stay far below
Temporal's 50,000-event limit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from temporalio.client import Client
from temporalio.worker import Worker

from activities.aws import AwsSettings
from activities.sweep_volumes import SweepVolumesActivities
from client.devstack import DEV_AWS_ENV, Ports, Stack
from contracts.request import parse_request
from contracts.run import Mode, RunInput, RunState
from tests.identities import policies, policy_activities
from worker.converter import DATA_CONVERTER
from worker.main import activity_methods
from workflows.sweep_volumes import SweepStaleVolumes


def create_volumes(endpoint: str, scope: str, count: int) -> None:
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
    tags = [{"ResourceType": "volume", "Tags": [{"Key": "bench", "Value": scope}]}]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, TagSpecifications=tags), range(count)
            )
        )


async def bench(count: int) -> None:
    os.environ.update(DEV_AWS_ENV)
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder), Ports.free())
        stack.up(worker=False)
        try:
            scope = uuid.uuid4().hex[:8]
            started = time.perf_counter()
            create_volumes(stack.aws_endpoint, scope, count)
            print(f"created {count} volumes in moto: {time.perf_counter() - started:.1f} s")
            client = await Client.connect(stack.temporal_address, data_converter=DATA_CONVERTER)
            # moto lists all volumes in one unpaged answer, slower than AWS's pages: be patient.
            sweep = SweepVolumesActivities(AwsSettings(endpoint_url=stack.aws_endpoint, read_timeout_seconds=900))
            request = parse_request(
                {
                    "apiVersion": "opsctl/v1",
                    "kind": "SweepStaleVolumes",
                    "metadata": {"environment": "dev", "requester": "bench", "idempotencyKey": scope},
                    "spec": {"olderThanDays": 0, "tagFilters": {"bench": scope}},
                }
            )
            wide = policies(dev={"requiredApprovals": 0, "requireSignatures": False, "maxDeletions": max(count, 1)})
            input = RunInput(request=request, mode=Mode.APPLY)
            async with Worker(
                client,
                task_queue=scope,
                workflows=[SweepStaleVolumes],
                activities=[*activity_methods(sweep), policy_activities(wide).resolve_policy],
            ):
                started = time.perf_counter()
                result: RunState = await client.execute_workflow(
                    SweepStaleVolumes.run, input, id=request.workflow_id(), task_queue=scope, result_type=RunState
                )
                took = time.perf_counter() - started
            runs = [e async for e in client.list_workflows(f"WorkflowId = '{request.workflow_id()}'")]
            largest = max(e.history_length for e in runs)
            print(f"sweep of {count} volumes: {result.phase.value} in {took:.1f} s ({count / took:.0f} volumes/s)")
            print(
                f"runs in the chain: {len(runs)} (continued as new {result.continued} times); "
                f"largest history: {largest} events"
            )
        finally:
            stack.down()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on the way out
    asyncio.run(bench(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
