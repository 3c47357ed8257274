"""`opsctl result --wait` rides out a Temporal server restart: the run goes on, and so does the wait.

A Temporal dev server of this test's own (its own port and SQLite file, so the session's stack
is untouched) is stopped and started again while the CLI follows a run on it.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from client.devstack import Stack, bin_dir, free_port, port_open, seed_role
from client.runs import decide, start_run, wait_for
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput
from contracts.search_attributes import SEARCH_ATTRIBUTES
from tests.client.conftest import ROOT
from tests.identities import KEYRING
from tests.integration.test_rotate_credential import rotation_request
from worker.converter import DATA_CONVERTER
from worker.main import build_worker
from worker.settings import WorkerSettings


class OwnServer:
    def __init__(self, folder: Path) -> None:
        self.port, self.ui = free_port(), free_port()
        self.db, self.process = folder / "temporal.db", None
        self.address = f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        binary = shutil.which("temporal", path=str(bin_dir()))
        assert binary is not None
        argv = [binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port), "--ui-port", str(self.ui)]
        argv += ["--db-filename", str(self.db), "--log-level", "error", "--headless"]
        for attribute, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{attribute}={kind}"]
        self.process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if port_open(self.port):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the test's own Temporal server did not start")

    async def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        await self.process.wait()


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[OwnServer]:
    server = OwnServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.returncode is None:
            await server.stop()


async def test_result_wait_rides_out_a_temporal_restart(
    own_server: OwnServer, stack: Stack, worker_settings: WorkerSettings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    client = await Client.connect(own_server.address, data_converter=DATA_CONVERTER)
    role, secret = "restart_user", "restart/secret"
    seed_role(stack, role, secret)
    settings = worker_settings.model_copy(
        update={"temporal": worker_settings.temporal.model_copy(update={"address": own_server.address})}
    )
    async with build_worker(client, settings):
        handle, _ = await start_run(
            client, parse_request(rotation_request(role, secret)), task_queue=settings.temporal.task_queue, keys=KEYRING
        )
        waiting = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
        env = {**cli_env, "OPSCTL_TEMPORAL_ADDRESS": own_server.address}
        follower = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "client.main",
            "result",
            handle.id,
            "--wait",
            "--until-approved",
            "--timeout",
            "120",
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert follower.stderr is not None
        # Once it follows the run (its first line, the phase it found): a loaded machine can take seconds to get there.
        first = await asyncio.wait_for(follower.stderr.readline(), timeout=60)
        await own_server.stop()  # the server goes away mid-wait ...
        await asyncio.sleep(12)
        await own_server.start()  # ... and comes back with the same database
        await wait_for(handle, lambda _: True, timeout=60)  # until the worker polls the new server
        record, _ = await decide(
            handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=waiting.plan_hash), keys=KEYRING
        )
        assert record.accepted
        out, err = await asyncio.wait_for(follower.communicate(), timeout=120)
    text = (first + err).decode()
    assert 0 == follower.returncode, text + out.decode()
    assert "lost Temporal" in text
    assert "Temporal answers again" in text
    assert "succeeded" in out.decode()
