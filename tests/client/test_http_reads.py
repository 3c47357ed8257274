"""`status` and `list` read the same through Temporal's HTTP API as through the SDK.

Each case runs both commands twice on the session's real stack — once with no HTTP address (the
SDK, gRPC) and once with the stack's HTTP API and a gRPC address where nothing listens, so the
second really cannot have used the SDK — and the two must agree to the byte: text and JSON,
stdout and stderr, exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.rotate_credential import RotationStepInput, StepResult
from client.devstack import Stack, free_port
from encryption.keys import load_keys, new_key_entry
from tests.client.conftest import Ran, opsctl
from tests.client.test_cli import document
from tests.workflows.test_lifecycle import FakeRotation
from worker.converter import WorkflowInputCheck, data_converter
from workflows.rotate_credential import RotateDbCredential


def transports(env: dict[str, str], stack: Stack) -> tuple[dict[str, str], dict[str, str]]:
    """(through the SDK, through the HTTP API only)."""
    sdk = {**env, "OPSCTL_TEMPORAL_HTTP_ADDRESS": ""}
    nothing_there = f"127.0.0.1:{free_port()}"
    http = {
        **env,
        "OPSCTL_TEMPORAL_HTTP_ADDRESS": stack.temporal_http_address,
        "OPSCTL_TEMPORAL_ADDRESS": nothing_there,
    }
    return sdk, http


async def same(env: dict[str, str], stack: Stack, *argv: str) -> Ran:
    """Run `argv` through both transports, in text and in JSON; assert they agree; return the JSON run."""
    sdk, http = transports(env, stack)
    for fmt in ((), ("-o", "json")):
        through_sdk, through_http = await opsctl(sdk, *argv, *fmt), await opsctl(http, *argv, *fmt)
        assert (through_sdk.code, through_sdk.stdout, through_sdk.stderr) == (
            through_http.code,
            through_http.stdout,
            through_http.stderr,
        ), argv
    return through_http


@contextlib.asynccontextmanager
async def slow_promotions(client: Client, env: dict[str, str]) -> AsyncIterator[tuple[dict[str, str], asyncio.Event]]:
    """A fake rotation worker on `client` (whose converter may encrypt): promote fails its first attempt
    with a message, then heartbeats 3/10 rows until released."""
    release = asyncio.Event()

    @activity.defn(name="rotate_credential.promote")
    async def slow_promote(input: RotationStepInput) -> StepResult:
        if activity.info().attempt == 1:
            raise ApplicationError("the secret store said: slow down (role r)")
        while not release.is_set():  # the same reading, again and again: no heartbeat timeout, no new attempt
            activity.heartbeat({"done": 3, "total": 10, "unit": "rows", "checkpoint": 3})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 0.5)
        return StepResult(changed=True)

    fake = FakeRotation()
    activities = [a for a in fake.activities() if a != fake.promote] + [slow_promote]
    queue = f"http-{uuid.uuid4().hex[:6]}"
    checked = [WorkflowInputCheck()]
    async with Worker(
        client, task_queue=queue, workflows=[RotateDbCredential], activities=activities, interceptors=checked
    ):
        yield {**env, "OPSCTL_TASK_QUEUE": queue}, release


async def retrying_with_a_heartbeat(env: dict[str, str], run_id: str) -> None:
    """Until the run's promote step is on its second attempt and has heartbeated."""
    for _ in range(100):
        ran = await opsctl(env, "status", run_id, "-o", "json")
        if [a["attempt"] for a in ran.json().get("live", []) if a["details"]] == [2]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"promote never heartbeated on its second attempt: {ran.stdout}")


async def runs_and_reads(client: Client, env: dict[str, str], stack: Stack, tmp_path: Path) -> None:
    """A finished run, a running one with a live heartbeat after a failed attempt, a run nobody has:
    status of each and the list of them, through both transports."""
    since = datetime.now(UTC).isoformat()
    async with slow_promotions(client, env) as (worker_env, release):
        finished = document(tmp_path, "r", f"s-{uuid.uuid4().hex[:6]}", "dev")
        release.set()  # the first run goes straight through (after its failed attempt)
        done = await opsctl(worker_env, "apply", "-f", finished, "--wait", "--timeout", "60", "-o", "json")
        assert 0 == done.code, done.stderr
        release.clear()
        slow = document(tmp_path, "r", f"s-{uuid.uuid4().hex[:6]}", "dev")
        started = await opsctl(worker_env, "apply", "-f", slow, "--timeout", "1", "-o", "json")
        running = started.json()["workflow_id"]
        await retrying_with_a_heartbeat(worker_env, running)

        finished_status = await same(worker_env, stack, "status", done.json()["workflow_id"])
        running_status = await same(worker_env, stack, "status", running)
        listed = await same(worker_env, stack, "list", "--since", since)
        missing = await same(worker_env, stack, "status", f"no-such-run-{uuid.uuid4().hex[:6]}")
        raw = await client.start_workflow(  # what `temporal workflow start --input '{"request": 5}'` sends
            "RotateDbCredential",
            {"request": 5},
            id=f"raw-{uuid.uuid4().hex[:6]}",
            task_queue=worker_env["OPSCTL_TASK_QUEUE"],
        )
        with contextlib.suppress(WorkflowFailureError):
            await raw.result()
        refused = await same(worker_env, stack, "status", raw.id)
        release.set()

    assert (0, "succeeded") == (finished_status.code, finished_status.json()["phase"])
    [live] = running_status.json()["live"]
    assert (2, 3, "rows") == (live["attempt"], live["details"]["done"], live["details"]["unit"])
    assert "the secret store said: slow down (role r)" == live["last_failure"]
    assert {done.json()["workflow_id"], running} == {row["run_id"] for row in listed.json()["runs"]}
    assert 2 == missing.code
    assert "no run" in missing.json()["error"]["message"]
    assert 3 == refused.code  # refused before it began, and why: not "ended as failed"
    assert (
        f"run {raw.id} was refused before it began: the workflow input is not a RunInput: "
        "request: Input should be an object"
    ) in refused.json()["error"]["message"]


async def test_plain_runs_read_the_same_through_either_transport(
    client: Client, cli_env: dict[str, str], stack: Stack, tmp_path: Path
) -> None:
    await runs_and_reads(client, cli_env, stack, tmp_path)


async def test_encrypted_runs_read_the_same_through_either_transport(
    stack: Stack, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Every payload sealed (results, queries, heartbeats, the failure's message): decrypted alike."""
    keys = load_keys(str(stack.codec_keys_path))
    encrypting = await Client.connect(stack.temporal_address, data_converter=data_converter(keys))
    env = {**cli_env, "OPSCTL_CODEC_KEYS_FILE": str(stack.codec_keys_path)}
    await runs_and_reads(encrypting, env, stack, tmp_path)


async def test_without_the_run_s_key_both_transports_exit_2_naming_the_key_id(
    stack: Stack, cli_env: dict[str, str], tmp_path: Path
) -> None:
    keys = load_keys(str(stack.codec_keys_path))
    encrypting = await Client.connect(stack.temporal_address, data_converter=data_converter(keys))
    other = tmp_path / "other-keys"
    other.write_text(new_key_entry("someone-else"))
    async with slow_promotions(encrypting, cli_env) as (worker_env, release):
        release.set()
        sealed = {**worker_env, "OPSCTL_CODEC_KEYS_FILE": str(stack.codec_keys_path)}
        doc = document(tmp_path, "r", f"s-{uuid.uuid4().hex[:6]}", "dev")
        done = await opsctl(sealed, "apply", "-f", doc, "--wait", "--timeout", "60", "-o", "json")
        assert 0 == done.code, done.stderr
        for keys_file in (str(other), ""):  # another keyring; none at all
            ran = await same(
                {**worker_env, "OPSCTL_CODEC_KEYS_FILE": keys_file}, stack, "status", done.json()["workflow_id"]
            )
            assert 2 == ran.code
            assert "cannot decrypt a payload: key id 'dev-1' is not in this keyring" in ran.json()["error"]["message"]


@pytest.mark.parametrize("run_id", ["with space", "q?x=1&y=2", "pct%2F41", "ünïcødé-ids", "a:b;c@d~e", "a/b"])
async def test_run_ids_that_need_escaping_read_the_same(
    client: Client, cli_env: dict[str, str], stack: Stack, run_id: str
) -> None:
    """Percent-encoded in the HTTP path (a '/' cannot be: such a run is read through the SDK)."""
    workflow_id = f"{run_id}-{uuid.uuid4().hex[:6]}"
    handle = await client.start_workflow("NoSuchWorkflow", id=workflow_id, task_queue=f"nobody-{uuid.uuid4().hex}")
    await handle.terminate("ended outside opsctl")
    sdk, http = transports(cli_env, stack)
    if "/" in run_id:  # the HTTP API cannot name it: the SDK reads it, so its gRPC address must be right
        http["OPSCTL_TEMPORAL_ADDRESS"] = stack.temporal_address
    for fmt in ((), ("-o", "json")):
        through_sdk, through_http = (
            await opsctl(sdk, "status", workflow_id, *fmt),
            await opsctl(http, "status", workflow_id, *fmt),
        )
        assert (1, through_sdk.stdout, through_sdk.stderr) == (
            through_sdk.code,
            through_http.stdout,
            through_http.stderr,
        )
        assert 1 == through_http.code
    assert f"run {workflow_id} ended as terminated" in through_http.json()["error"]["message"]
