"""Shared fixtures: one real embedded stack per test session, on free ports in a temp folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from client.devstack import DEV_AWS_ENV, Ports, Stack
from tests.identities import stack_worker_settings
from worker.converter import DATA_CONVERTER
from worker.main import build_worker
from worker.settings import WorkerSettings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    os.environ.update(DEV_AWS_ENV)
    embedded = Stack(tmp_path_factory.mktemp("stack"), Ports.free())
    try:
        embedded.up(worker=False)
        yield embedded
    finally:  # also when `up` failed half-way: stop what it started
        embedded.down()


@pytest.fixture(scope="session")
def worker_settings(stack: Stack) -> WorkerSettings:
    return stack_worker_settings(stack)


@pytest.fixture(scope="session")
async def client(stack: Stack) -> Client:
    return await Client.connect(stack.temporal_address, data_converter=DATA_CONVERTER)


@pytest.fixture
async def task_queue(client: Client, worker_settings: WorkerSettings) -> AsyncIterator[str]:
    """The worker exactly as `python -m worker` builds it, on a fresh task queue."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    temporal = worker_settings.temporal.model_copy(update={"task_queue": queue})
    async with build_worker(client, worker_settings.model_copy(update={"temporal": temporal})):
        yield queue
