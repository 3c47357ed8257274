"""Every dev example runs on the embedded stack exactly as its comment says: seed, plan, apply.

With OPSCTL_RECORD_HISTORIES=1 the runs' histories are saved for the replay tests, so
those histories come from real runs of real activities.
"""

from __future__ import annotations

import asyncio
import os
import sys
from urllib.parse import quote

import pytest
from temporalio.client import Client

from client.devstack import Stack
from tests.client.conftest import ROOT, opsctl

HISTORIES = ROOT / "tests" / "workflows" / "histories"

# example document → the seed command its comment gives
DEV_EXAMPLES = {
    "rotate-db-credential-dev.yaml": ["rotation"],
    "sweep-stale-volumes.yaml": ["volumes", "30"],
    "sweep-stale-volumes-v2.yaml": ["volumes", "30"],
    "create-read-replica-dev.yaml": ["rds-source", "orders-db"],
    "migrate-schema.yaml": [],
    "backfill-table.yaml": ["backfill-table"],
}


async def seed(stack: Stack, what: list[str]) -> None:
    if not what:
        return
    process = await asyncio.create_subprocess_exec(
        sys.executable, "examples/seed.py", *what, "--state-dir", str(stack.state_dir), cwd=ROOT
    )
    assert 0 == await process.wait()


@pytest.mark.parametrize("example", list(DEV_EXAMPLES))
async def test_a_dev_example_runs_as_its_comment_says(
    stack: Stack, client: Client, cli_env: dict[str, str], example: str
) -> None:
    await seed(stack, DEV_EXAMPLES[example])
    path = str(ROOT / "examples" / example)
    planned = await opsctl(cli_env, "plan", "-f", path, "--format", "json")
    applied = await opsctl(cli_env, "apply", "-f", path, "--wait", "--timeout", "120", "--format", "json")

    assert 10 == planned.code, planned.stdout + planned.stderr
    assert 0 == applied.code, applied.stdout + applied.stderr
    assert "succeeded" == applied.json()["phase"]
    assert all(check["passed"] for check in applied.json()["checks"])
    if os.environ.get("OPSCTL_RECORD_HISTORIES"):
        await record(client, applied.json()["workflow_id"])


async def record(client: Client, workflow_id: str) -> None:
    """Save every run of the chain (continue-as-new included) as replayable JSON.

    Named `<workflow id>@<run>.json`: a replay needs the workflow id, which signatures cover (a schedule's
    fire has colons in its id: they are written %3A, which no file system refuses).
    """
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        history = await handle.fetch_history()
        name = quote(workflow_id, safe="")
        (HISTORIES / f"{name}@{execution.run_id[-8:]}.json").write_text(history.to_json())
