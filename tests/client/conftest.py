"""CLI test helpers: run `opsctl` as a subprocess against the session's real stack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client.devstack import Stack
from tests.identities import KEYS_DIR, POLICY_FILE

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def cli_env(stack: Stack, task_queue: str, tmp_path: Path) -> dict[str, str]:
    return opsctl_env(stack, task_queue, tmp_path)


@pytest.fixture
def encrypted_cli_env(stack: Stack, encrypted_task_queue: str, tmp_path: Path) -> dict[str, str]:
    """`opsctl` with the stack's payload encryption key, as `opsctl dev up` leaves it, on an encrypting worker."""
    return {**opsctl_env(stack, encrypted_task_queue, tmp_path), "OPSCTL_CODEC_KEYS_FILE": str(stack.codec_keys_path)}


def opsctl_env(stack: Stack, task_queue: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OPSCTL_TEMPORAL_ADDRESS": stack.temporal_address,
        # As `opsctl dev up` leaves it: status, list and apply's start go through the HTTP API.
        "OPSCTL_TEMPORAL_HTTP_ADDRESS": stack.temporal_http_address,
        "OPSCTL_TASK_QUEUE": task_queue,
        "OPSCTL_UI_URL": stack.ui_url,
        "OPSCTL_STATE_DIR": str(tmp_path / "state"),
        "OPSCTL_CONFIG": "",  # no user file
        "OPSCTL_USER": "alice",
        "OPSCTL_KEYS_DIR": str(KEYS_DIR),
        "OPSCTL_POLICY_FILE": str(POLICY_FILE),
    }


async def opsctl(env: dict[str, str], *argv: str) -> Ran:
    """Run `opsctl` as a separate process without blocking the in-process worker's event loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client.main",
        *argv,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
