"""With tracing off (the default) the CLI imports nothing of OpenTelemetry: startup stays cheap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported(*argv: str, **env: str) -> set[str]:
    """The top-level packages `opsctl ARGV` imported (`-X importtime` lists every module on stderr)."""
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "client.main", *argv],
        cwd=ROOT,
        env={**os.environ, "OPSCTL_CONFIG": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return {line.split("|")[-1].strip().split(".")[0] for line in ran.stderr.splitlines() if "|" in line}


def test_validate_imports_no_opentelemetry() -> None:
    modules = imported("validate", "-f", "examples/rotate-db-credential.yaml")
    assert "contracts" in modules
    assert {"opentelemetry", "telemetry"} & modules == set()


def test_a_command_that_talks_to_temporal_imports_no_opentelemetry_while_tracing_is_off() -> None:
    # Temporal is not there (a closed port): the command fails, after its imports.
    modules = imported("status", "some-run", OPSCTL_TEMPORAL_ADDRESS="127.0.0.1:9", OPSCTL_STATE_DIR="/nonexistent")
    assert "temporalio" in modules
    assert {"opentelemetry", "telemetry"} & modules == set()


def test_with_an_exporter_configured_the_command_imports_the_sdk() -> None:
    env = {
        "OPSCTL_TEMPORAL_ADDRESS": "127.0.0.1:9",
        "OPSCTL_STATE_DIR": "/nonexistent",
        "OPSCTL_TRACE_EXPORTER": "console",
    }
    assert "opentelemetry" in imported("status", "some-run", **env)
