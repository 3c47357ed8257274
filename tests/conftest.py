"""Shared fixtures: one real embedded stack per test session, on free ports in a temp folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.client import Client

from client.config import Config
from client.devstack import DEV_AWS_ENV, Ports, Stack
from client.runs import connect as cli_connect
from tests.identities import stack_worker_settings
from worker.converter import DATA_CONVERTER
from worker.main import build_worker
from worker.main import connect as worker_connect
from worker.settings import CodecSettings, WorkerSettings


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


# ---- payload encryption: the stack's `opsctl dev up` made a key, its codec server decodes with it ----


@asynccontextmanager
async def encrypted_worker(
    settings: WorkerSettings, keys_file: Path, key_id: str = "", task_queue: str = ""
) -> AsyncIterator[str]:
    """A worker as `python -m worker` builds it with `codec.keys_file` in its settings (default: on a fresh queue)."""
    queue = task_queue or f"enc-{uuid.uuid4().hex[:8]}"
    temporal = settings.temporal.model_copy(update={"task_queue": queue})
    codec = CodecSettings(keys_file=str(keys_file), key_id=key_id)
    configured = settings.model_copy(update={"temporal": temporal, "codec": codec})
    async with build_worker(await worker_connect(configured), configured):
        yield queue


async def opsctl_client(stack: Stack, keys_file: Path | None, key_id: str = "") -> Client:
    """The client `opsctl` connects with (`client.runs.connect`), given a keys file or none."""
    config = Config(
        user="alice",
        state_dir=stack.state_dir,
        temporal_address=stack.temporal_address,
        namespace="default",
        task_queue="unused",
        ui_url=stack.ui_url,
        codec_keys_file=str(keys_file or ""),
        codec_key_id=key_id,
    )
    return await cli_connect(config)


@pytest.fixture(scope="session")
async def encrypted_client(stack: Stack) -> Client:
    return await opsctl_client(stack, stack.codec_keys_path)


@pytest.fixture
async def encrypted_task_queue(stack: Stack, worker_settings: WorkerSettings) -> AsyncIterator[str]:
    async with encrypted_worker(worker_settings, stack.codec_keys_path) as queue:
        yield queue
