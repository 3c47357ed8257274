"""Shell completion: the candidates come from the parser, the kinds, and the stack's recent runs."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from client.devstack import Stack
from client.main import build_parser, run
from tests.client.conftest import opsctl


def complete(*words: str) -> list[str]:
    stdout = io.StringIO()
    assert 0 == run(["__complete", *words], stdout=stdout, stderr=io.StringIO())
    return [line for line in stdout.getvalue().splitlines() if line]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([""], {"apply", "approve", "audit", "watch", "completion"}),
        (["ap"], {"apply", "approve"}),
        (["schema", "Ro"], {"RotateDbCredential"}),
        (["list", "--kind", "Sw"], {"SweepStaleVolumes"}),
        (["list", "--phase", "awaiting_a"], {"awaiting_approval"}),
        (["dev", "st"], {"status"}),
        (["-o", "j"], {"json"}),
        (["apply", "--unt"], {"--until-approved"}),
        (["--as", "bob", "explain", "--fo"], {"--format"}),
    ],
)
def test_candidates(words: list[str], expected: set[str]) -> None:
    assert expected <= set(complete(*words))
    assert all(candidate.startswith(words[-1]) for candidate in complete(*words))


def test_every_command_is_offered() -> None:
    commands = set(complete(""))
    parser = build_parser()
    assert {
        name for action in parser._actions if hasattr(action, "choices") and action.choices for name in action.choices
    } >= commands


async def test_run_ids_come_from_the_stack(
    monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    from tests.client.test_operator_commands import rotation

    planned = await opsctl(cli_env, "plan", "-f", rotation(tmp_path, stack), "-o", "json")
    run_id = planned.json()["workflow_id"]
    for name in ("OPSCTL_TEMPORAL_ADDRESS", "OPSCTL_CONFIG", "OPSCTL_STATE_DIR"):
        monkeypatch.setenv(name, cli_env[name])
    assert run_id in await asyncio.to_thread(complete, "status", run_id[:12])  # its own event loop, as in a shell


def test_no_server_means_no_run_ids_and_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("OPSCTL_CONFIG", "")
    assert [] == complete("status", "")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_script_is_valid_bash(tmp_path: Path) -> None:
    script = tmp_path / "opsctl.bash"
    stdout = io.StringIO()
    assert 0 == run(["completion", "bash"], stdout=stdout, stderr=io.StringIO())
    script.write_text(stdout.getvalue())
    checked = subprocess.run(
        [str(shutil.which("bash")), "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert 0 == checked.returncode, checked.stderr
    assert "complete -o filenames -F _opsctl opsctl" in stdout.getvalue()
