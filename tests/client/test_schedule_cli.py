"""`opsctl schedule …` and `opsctl list --drift`: the CLI contract (exit codes, JSON shapes) on the real stack.

Argument mistakes are checked in-process (`client.main.run` with explicit streams: nothing reaches a
server); everything else runs `opsctl` as a subprocess against the session's stack and a worker on the
test's own task queue. Schedules a test makes are deleted after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shlex
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from client.devstack import Stack, seed_role
from client.main import run
from tests.client.conftest import ROOT, Ran, opsctl
from tests.client.test_examples import seed

SCHEDULE_FIELDS = {
    "schedule_id",
    "kind",
    "environment",
    "requester",
    "mode",
    "on_drift",
    "spec",
    "next_fire",
    "paused",
    "note",
    "last_run",
    "signed_until",
    "problem",
    "web_ui",
}
EXAMPLES = sorted((ROOT / "examples" / "schedules").glob("*.yaml"))


def rotation_document(tmp_path: Path, role: str, secret: str, environment: str = "prod", key: str = "") -> str:
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.yaml"
    metadata = f"  environment: {environment}\n" + (f"  idempotencyKey: {key}\n" if key else "")
    path.write_text(
        f"apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata:\n{metadata}"
        f"spec:\n  database: app\n  role: {role}\n  secretId: {secret}\n"
    )
    return str(path)


@pytest.fixture
def seeded(stack: Stack) -> tuple[str, str]:
    role, secret = f"k_{uuid.uuid4().hex[:8]}", f"sched-cli/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    return role, secret


@pytest.fixture
async def made(client: Client) -> AsyncIterator[list[str]]:
    ids: list[str] = []
    yield ids
    for schedule_id in ids:
        with contextlib.suppress(RPCError):  # the test deleted it itself
            await client.get_schedule_handle(schedule_id).delete()


async def eventually(probe: Callable[[], Awaitable[Ran]], ok: Callable[[Ran], bool], timeout: float = 45) -> Ran:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ran = await probe()
        if ok(ran) or asyncio.get_running_loop().time() > deadline:
            return ran
        await asyncio.sleep(0.5)


def offline(argv: list[str]) -> tuple[int, Any, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run([*argv, "--format", "json"], stdout=stdout, stderr=stderr)
    return code, json.loads(stdout.getvalue()), stderr.getvalue()


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file, alice: enough for the checks `schedule create` makes before it connects."""
    monkeypatch.setenv("OPSCTL_CONFIG", "")  # no user file
    monkeypatch.setenv("OPSCTL_USER", "alice")
    monkeypatch.setenv("OPSCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OPSCTL_TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: these never connect


@pytest.mark.usefixtures("identity")
@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--every", "3x"], 2, "--every '3x': write a duration such as 30d"),
        (["--every", "0s"], 2, "at least 1s"),
        (["--every", "400d"], 2, "at most 366d"),
        (["--cron", "0 3 * *"], 2, "give 5 fields"),
        (["--cron", "61 * * * *"], 2, "61 is outside the minute field"),
        (["--cron", "0 3 1 * 1"], 2, "not both"),
        ([], 2, "needs --every DURATION or --cron EXPR"),
        (["--every", "1h", "--on-drift", "submit"], 2, "--on-drift goes with --dry-run"),
        (["--every", "1h", "--reason", "x"], 2, "--reason goes with pause and resume"),
    ],
)
def test_schedule_create_refuses_a_bad_cadence_or_flag_with_exit_2_before_anything_else(
    tmp_path: Path, arguments: list[str], code: int, message: str
) -> None:
    document = rotation_document(tmp_path, "r", "s")
    exit_code, output, stderr = offline(["schedule", "create", "-f", document, *arguments])
    assert code == exit_code
    assert {"error", "exit_code"} == set(output)
    assert message in output["error"]["message"]
    assert f"error: {output['error']['message']}" in stderr


@pytest.mark.usefixtures("identity")
@pytest.mark.parametrize(
    ("text", "code", "field"),
    [
        (
            "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata: {environment: prod}\n"
            "spec: {database: app, role: r, secretId: s, force: true}\n",
            3,
            "spec.force",
        ),
        ("apiVersion: opsctl/v1\nkind: Nope\nmetadata: {}\nspec: {}\n", 2, "kind"),
        (
            "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata: {environment: moon}\n"
            "spec: {database: app, role: r, secretId: s}\n",
            3,
            "metadata.environment",
        ),
    ],
)
def test_schedule_create_validates_the_document_like_validate(tmp_path: Path, text: str, code: int, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    exit_code, output, _ = offline(["schedule", "create", "-f", str(path), "--every", "1h"])
    assert (code, field) == (exit_code, output["error"].get("field", ""))


@pytest.mark.usefixtures("identity")
def test_schedule_create_refuses_a_schedule_whose_runs_would_all_be_refused_unsigned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key for the requester where signatures are required (prod): exit 2 at once, not a refusal at every fire."""
    monkeypatch.setenv("OPSCTL_KEYS_DIR", str(tmp_path / "no-keys"))
    monkeypatch.setenv("OPSCTL_USER", "mallory")
    exit_code, output, _ = offline(["schedule", "create", "-f", rotation_document(tmp_path, "r", "s"), "--every", "1h"])
    assert 2 == exit_code
    assert "no key for mallory: prod requires signed requests" in output["error"]["message"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schedule", "create", "--every", "1h"], "needs -f DOC"),
        (["schedule", "pause"], "needs the schedule's ID"),
        (["schedule", "trigger"], "needs the schedule's ID"),
        (["schedule", "list", "X"], "takes no ID"),
        (["schedule", "create", "SOME-ID", "-f", "doc.yaml", "--every", "1h"], "takes no ID"),
        (["schedule", "delete", "X", "--every", "1h"], "does not take --every"),
    ],
)
def test_schedule_actions_say_what_they_take_with_exit_2(argv: list[str], message: str) -> None:
    exit_code, output, _ = offline(argv)
    assert 2 == exit_code
    assert message in output["error"]["message"]


async def test_schedule_create_list_pause_resume_trigger_delete_have_stable_shapes_and_exit_codes(
    cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str], made: list[str]
) -> None:
    document = rotation_document(tmp_path, *seeded)
    created = await opsctl(cli_env, "schedule", "create", "-f", document, "--every", "30d", "--format", "json")
    assert 0 == created.code, created.stderr
    assert {"schedule", "created"} == set(created.json())
    schedule = created.json()["schedule"]
    made.append(schedule_id := schedule["schedule_id"])
    assert SCHEDULE_FIELDS == set(schedule)
    assert (True, "every 30d", "apply", None, "alice", False, "") == (
        created.json()["created"],
        schedule["spec"],
        schedule["mode"],
        schedule["on_drift"],
        schedule["requester"],
        schedule["paused"],
        schedule["problem"],
    )
    assert schedule["next_fire"]
    assert schedule["signed_until"]
    assert schedule["last_run"] is None

    again = await opsctl(cli_env, "schedule", "create", "-f", document, "--every", "30d", "--format", "json")
    assert (0, False) == (again.code, again.json()["created"]), "the same document and cadence: the same schedule"
    other = await opsctl(cli_env, "schedule", "create", "-f", document, "--every", "7d", "--format", "json")
    assert 2 == other.code
    assert f"schedule {schedule_id} already exists" in other.json()["error"]["message"]

    listed = await eventually(
        lambda: opsctl(cli_env, "schedule", "list", "--format", "json"),
        lambda ran: schedule_id in {s["schedule_id"] for s in ran.json()["schedules"]},
    )
    assert 0 == listed.code
    assert {"schedules"} == set(listed.json())
    (row,) = [s for s in listed.json()["schedules"] if s["schedule_id"] == schedule_id]
    assert SCHEDULE_FIELDS == set(row)
    text = await opsctl(cli_env, "schedule", "list")
    assert re.search(rf"^{re.escape(schedule_id)}\s+RotateDbCredential\s+prod\s+apply\s+every 30d", text.stdout, re.M)

    paused = await opsctl(cli_env, "schedule", "pause", schedule_id, "--reason", "change freeze", "--format", "json")
    assert 0 == paused.code, paused.stderr
    assert {"schedule"} == set(paused.json())
    assert (True, None, "change freeze") == tuple(paused.json()["schedule"][k] for k in ("paused", "next_fire", "note"))
    resumed = await opsctl(cli_env, "schedule", "resume", schedule_id, "--format", "json")
    assert (0, False) == (resumed.code, resumed.json()["schedule"]["paused"])
    assert resumed.json()["schedule"]["next_fire"]

    fired = await opsctl(cli_env, "schedule", "trigger", schedule_id, "--format", "json")
    assert 0 == fired.code, fired.stderr
    assert {"schedule", "run_id", "run_web_ui"} == set(fired.json())
    run_id = fired.json()["run_id"]
    assert run_id.startswith(f"{schedule_id}-20")
    assert run_id == fired.json()["schedule"]["last_run"]["run_id"]
    waiting = await eventually(lambda: opsctl(cli_env, "status", run_id, "--format", "json"), lambda r: r.code == 7)
    assert 7 == waiting.code, "a scheduled prod apply waits for approval, like any"
    assert schedule_id == waiting.json()["scheduled"]["schedule_id"]
    status = await opsctl(cli_env, "status", run_id)
    assert f"Scheduled   by schedule {schedule_id} (every 30d)" in status.stdout

    skipped = await opsctl(cli_env, "schedule", "trigger", schedule_id, "--format", "json")
    assert 4 == skipped.code, "the previous run is open: overlap policy skip"
    assert f"run {run_id} of schedule {schedule_id} is still open" in skipped.json()["error"]["message"]

    deleted = await opsctl(cli_env, "schedule", "delete", schedule_id, "--format", "json")
    assert (0, {"schedule_id": schedule_id, "deleted": True}) == (deleted.code, deleted.json())
    assert 7 == (await opsctl(cli_env, "status", run_id)).code, "its open run goes on"
    for action in ("pause", "resume", "trigger", "delete"):
        gone = await opsctl(cli_env, "schedule", action, schedule_id, "--format", "json")
        assert 2 == gone.code
        assert f"no schedule '{schedule_id}'" == gone.json()["error"]["message"]
        assert "opsctl schedule list" in gone.json()["error"]["hint"]


async def test_an_every_2s_dry_run_schedule_fires_by_itself_and_list_drift_shows_its_runs(
    cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str], made: list[str]
) -> None:
    """A dry run of a rotation always has a plan with changes: every fire records drift."""
    document = rotation_document(tmp_path, *seeded, environment="dev")
    created = await opsctl(cli_env, "schedule", "create", "-f", document, "--every", "2s", "--dry-run", "-o", "json")
    assert 0 == created.code, created.stderr
    schedule = created.json()["schedule"]
    made.append(schedule_id := schedule["schedule_id"])
    assert ("dry_run", "record") == (schedule["mode"], schedule["on_drift"])

    def mine(ran: Ran) -> list[dict[str, Any]]:
        return [row for row in ran.json()["runs"] if row["run_id"].startswith(f"{schedule_id}-")]

    drifting = await eventually(
        lambda: opsctl(cli_env, "list", "--drift", "--format", "json"), lambda ran: len(mine(ran)) >= 2
    )
    assert 0 == drifting.code
    assert "OpsctlDrift = true" in drifting.json()["query"]
    runs = mine(drifting)
    assert len({row["run_id"] for row in runs}) == len(runs) >= 2, "each fire is its own run"
    paused = await opsctl(cli_env, "schedule", "pause", schedule_id, "-o", "json")
    assert 0 == paused.code
    result = await opsctl(cli_env, "result", runs[0]["run_id"], "--format", "json")
    assert 10 == result.code, "a dry run that found changes"
    assert (True, "") == (result.json()["scheduled"]["drift"], result.json()["scheduled"]["submitted"])
    text = await opsctl(cli_env, "result", runs[0]["run_id"])
    assert "Drift       yes" in text.stdout
    assert "drift: the plan has" in text.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
async def test_an_example_schedule_runs_as_its_comment_says(
    stack: Stack, cli_env: dict[str, str], made: list[str], example: Path
) -> None:
    """The commands in the example's comment, run as written (with --format json): create, trigger, and what
    the fire does — a prod rotation waits for approval; a weekly sweep's dry run finds drift, submits its apply."""
    comment = [line.removeprefix("#").strip() for line in example.read_text().splitlines() if line.startswith("#")]
    commands = [shlex.split(line.split("  #")[0])[1:] for line in comment if line.startswith("opsctl ")]
    for line in comment:
        if line.startswith(".venv/bin/python examples/seed.py"):
            await seed(stack, shlex.split(line)[2:])
    if example.name.startswith("rotate"):
        await seed(stack, ["rotation"])
    create = next(argv for argv in commands if argv[:2] == ["schedule", "create"])
    created = await opsctl(cli_env, *create, "--format", "json")
    assert 0 == created.code, created.stderr
    made.append(schedule_id := created.json()["schedule"]["schedule_id"])
    trigger = next(argv for argv in commands if argv[:2] == ["schedule", "trigger"])
    assert schedule_id == trigger[2], "the comment triggers the schedule it created"
    fired = await opsctl(cli_env, *trigger, "--format", "json")
    assert 0 == fired.code, fired.stderr
    run_id = fired.json()["run_id"]

    if created.json()["schedule"]["mode"] == "apply":
        waiting = await eventually(lambda: opsctl(cli_env, "status", run_id, "-o", "json"), lambda r: r.code == 7)
        assert 7 == waiting.code
        return
    checked = await eventually(lambda: opsctl(cli_env, "status", run_id, "-o", "json"), lambda r: r.code == 10)
    assert 10 == checked.code, checked.stdout
    assert f"{run_id}-apply" == checked.json()["scheduled"]["submitted"]
    listed = await eventually(
        lambda: opsctl(cli_env, "list", "--drift", "-o", "json"),
        lambda ran: run_id in {row["run_id"] for row in ran.json()["runs"]},
    )
    assert run_id in {row["run_id"] for row in listed.json()["runs"]}
    submitted = await eventually(
        lambda: opsctl(cli_env, "status", f"{run_id}-apply", "-o", "json"), lambda r: r.code == 7
    )
    assert 7 == submitted.code, "the drift's apply waits for a second person"
    assert "alice" == submitted.json()["requester"]
