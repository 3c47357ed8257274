"""The CLI contract: exit codes and JSON shapes, driven as a subprocess against the real stack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.rotate_credential import RotationStepInput, StepResult
from client.devstack import Stack, free_port, seed_role
from tests.client.conftest import ROOT, opsctl
from tests.workflows.test_lifecycle import FakeRotation
from workflows.rotate_credential import RotateDbCredential


def document(tmp_path: Path, role: str, secret: str, environment: str = "prod", extra: str = "") -> str:
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        f"apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata:\n  environment: {environment}\n{extra}"
        f"spec:\n  database: app\n  role: {role}\n  secretId: {secret}\n"
    )
    return str(path)


@pytest.fixture
def seeded(stack: Stack) -> tuple[str, str]:
    role, secret = f"c_{uuid.uuid4().hex[:8]}", f"cli/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    return role, secret


def test_help_is_fast_and_documents_the_exit_codes() -> None:
    started = time.monotonic()
    ran = subprocess.run([sys.executable, "-m", "client.main", "--help"], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.monotonic() - started
    assert 0 == ran.returncode
    assert "10 dry run found changes" in ran.stdout
    assert elapsed < 5, "help must not import the heavy libraries"  # generous: a cold interpreter


async def test_validate_accepts_a_good_document_with_a_stable_json_shape(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    ran = await opsctl(cli_env, "validate", "-f", document(tmp_path, "app_user", "s"), "--format", "json")
    assert 0 == ran.code, ran.stderr
    assert {"valid", "kind", "api_version", "run_id", "environment", "requester", "spec", "warnings"} == set(ran.json())
    assert [] == ran.json()["warnings"]
    assert "alice" == ran.json()["requester"]


@pytest.mark.parametrize(
    ("text", "code", "field"),
    [
        (
            "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata: {environment: prod}\n"
            "spec: {database: app, role: r, secretId: s, force: true}\n",
            3,
            "spec.force",
        ),
        (
            "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata: {environment: prod}\n"
            "spec: {database: app, secretId: s}\n",
            3,
            "spec.role",
        ),
        ("apiVersion: opsctl/v1\nkind: Nope\nmetadata: {}\nspec: {}\n", 2, "kind"),
        ("apiVersion: [broken\n", 2, ""),
    ],
)
async def test_invalid_documents_exit_2_or_3_naming_the_field(
    cli_env: dict[str, str], tmp_path: Path, text: str, code: int, field: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    ran = await opsctl(cli_env, "validate", "-f", str(path), "--format", "json")
    assert code == ran.code
    assert code == ran.json()["exit_code"]
    assert field == ran.json()["error"].get("field", "")
    assert "Traceback" not in ran.stderr
    assert f"error: {field}" in ran.stderr


async def test_a_requester_other_than_you_is_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = document(tmp_path, "r", "s", extra="  requester: mallory\n")
    ran = await opsctl(cli_env, "validate", "-f", path)
    assert 3 == ran.code
    assert "metadata.requester" in ran.stderr


async def test_missing_files_and_bad_arguments_exit_2(cli_env: dict[str, str]) -> None:
    assert 2 == (await opsctl(cli_env, "validate", "-f", "/no/such/file.yaml")).code
    assert 2 == (await opsctl(cli_env, "approve", "some-run")).code  # --plan-hash missing
    assert 2 == (await opsctl(cli_env, "schema", "Nope")).code


async def test_schema_prints_the_json_schema_of_a_kind(cli_env: dict[str, str]) -> None:
    ran = await opsctl(cli_env, "schema", "RotateDbCredential")
    schema = json.loads(ran.stdout)
    assert 0 == ran.code
    assert ["apiVersion", "kind", "metadata", "spec"] == schema["required"]
    assert {"database", "role", "secretId"} == set(schema["$defs"]["RotateDbCredentialSpec"]["properties"])


async def test_plan_is_a_dry_run_that_exits_10_when_it_would_change_things(
    cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str]
) -> None:
    ran = await opsctl(cli_env, "plan", "-f", document(tmp_path, *seeded), "--format", "json")
    assert 10 == ran.code, ran.stderr
    result = ran.json()
    assert "planned" == result["phase"]
    assert 3 == len(result["plan"]["actions"])
    assert 64 == len(result["plan_hash"])


async def test_the_two_person_flow_through_the_cli(
    cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str]
) -> None:
    """apply → 7, self-approval → 6, wrong hash → 6, approval → 0, result → 0, re-apply attaches."""
    path = document(tmp_path, *seeded)
    applied = await opsctl(cli_env, "apply", "-f", path, "--format", "json")
    assert 7 == applied.code, applied.stderr
    run = applied.json()
    expected_keys = {
        "schema_version",
        "workflow_id",
        "kind",
        "phase",
        "plan",
        "plan_hash",
        "decisions",
        "changed",
        "uncertain",
        "next_action",
        "exit_code",
        "retryable",
        "web_ui",
        "attached",
        "failure",
    }
    assert expected_keys <= set(run)
    assert ("awaiting_approval", False) == (run["phase"], run["attached"])
    run_id, plan_hash = run["workflow_id"], run["plan_hash"]

    own = await opsctl(cli_env, "approve", run_id, "--plan-hash", plan_hash, "--format", "json")
    assert 6 == own.code
    assert own.json()["decision"]["reason"].startswith("four-eyes")
    assert "update" == own.json()["decision"]["via"]  # the verdict came back from the workflow itself
    stale = await opsctl(cli_env, "approve", run_id, "--plan-hash", "f" * 64, "--as", "bob")
    assert 6 == stale.code
    assert "plan hash mismatch" in stale.stdout
    status = await opsctl(cli_env, "status", run_id)
    assert 7 == status.code
    ok = await opsctl(cli_env, "approve", run_id, "--plan-hash", plan_hash, "--as", "bob", "--comment", "lgtm")
    assert 0 == ok.code, ok.stdout + ok.stderr

    result = await opsctl(cli_env, "result", run_id, "--wait", "--timeout", "60", "--format", "json")
    assert 0 == result.code, result.stdout
    assert "succeeded" == result.json()["phase"]
    assert [True, True, True] == [c["passed"] for c in result.json()["checks"]]

    again = await opsctl(cli_env, "apply", "-f", path, "--format", "json")
    assert 0 == again.code
    assert (run_id, True) == (again.json()["workflow_id"], again.json()["attached"])
    listed = await opsctl(cli_env, "list", "--phase", "succeeded", "--env", "prod", "--format", "json")
    assert run_id in [row["run_id"] for row in listed.json()["runs"]]


async def test_reject_ends_the_run_as_denied(cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str]) -> None:
    run_id = (await opsctl(cli_env, "apply", "-f", document(tmp_path, *seeded), "--format", "json")).json()[
        "workflow_id"
    ]
    rejected = await opsctl(cli_env, "reject", run_id, "--reason", "wrong window", "--as", "bob")
    assert 0 == rejected.code
    result = await opsctl(cli_env, "result", run_id, "--wait", "--timeout", "30")
    assert 6 == result.code
    assert "wrong window" in result.stdout
    late = await opsctl(cli_env, "approve", run_id, "--plan-hash", "x", "--as", "bob")
    assert 6 == late.code
    assert "already ended" in late.stderr


async def test_a_partial_application_exits_5(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Two migrations, the second refers to a missing table: the first stays applied (no down scripts)."""
    schema = f"partial_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "migrate.yaml"
    path.write_text(
        "apiVersion: opsctl/v1\nkind: MigrateSchema\nmetadata: {environment: dev}\nspec:\n"
        f"  database: app\n  schemaName: {schema}\n  migrations:\n"
        "    - {version: '0001_t', sql: 'CREATE TABLE t (id bigint PRIMARY KEY)'}\n"
        "    - {version: '0002_missing', sql: 'ALTER TABLE no_such_table ADD COLUMN IF NOT EXISTS x text'}\n"
    )
    ran = await opsctl(cli_env, "apply", "-f", str(path), "--wait", "--format", "json")
    assert 5 == ran.code, ran.stdout + ran.stderr
    assert "partial_application" == ran.json()["failure"]["kind"]
    assert "unknown" == ran.json()["retryable"]


@pytest.mark.parametrize("http", [False, True], ids=["sdk", "http"])
async def test_an_unreachable_temporal_exits_4_with_a_hint(cli_env: dict[str, str], tmp_path: Path, http: bool) -> None:
    http_address = f"127.0.0.1:{free_port()}" if http else ""
    env = {
        **cli_env,
        "OPSCTL_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "OPSCTL_TEMPORAL_HTTP_ADDRESS": http_address,
    }
    ran = await opsctl(env, "status", "anything")
    assert 4 == ran.code
    assert "opsctl dev up" in ran.stderr


async def test_a_run_in_needs_review_exits_8(client: Client, cli_env: dict[str, str], tmp_path: Path) -> None:
    from temporalio.exceptions import ApplicationError

    fake = FakeRotation(failures={"promote": [ApplicationError("lost", type="unknown", non_retryable=True)]})
    queue = f"fake-{uuid.uuid4().hex[:6]}"
    env = {**cli_env, "OPSCTL_TASK_QUEUE": queue}
    async with Worker(client, task_queue=queue, workflows=[RotateDbCredential], activities=fake.activities()):
        ran = await opsctl(env, "apply", "-f", document(tmp_path, "r", "s", "dev"), "--format", "json")
        assert 8 == ran.code, ran.stdout
        run_id = ran.json()["workflow_id"]
        resolved = await opsctl(env, "resolve", run_id, "--abort", "--comment", "checked by hand", "--as", "carol")
        assert 0 == resolved.code
        final = await opsctl(env, "result", run_id, "--wait", "--timeout", "30", "--format", "json")
    assert 8 == final.code
    assert "failed" == final.json()["phase"]


async def test_a_run_ended_outside_opsctl_is_an_unexpected_failure(
    client: Client, cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str]
) -> None:
    run_id = (await opsctl(cli_env, "apply", "-f", document(tmp_path, *seeded), "--format", "json")).json()[
        "workflow_id"
    ]
    await client.get_workflow_handle(run_id).terminate("operator pulled the plug")
    ran = await opsctl(cli_env, "status", run_id)
    assert 1 == ran.code
    assert "terminated" in ran.stderr


@contextlib.asynccontextmanager
async def promoting_slowly(
    client: Client, cli_env: dict[str, str]
) -> AsyncIterator[tuple[dict[str, str], asyncio.Event]]:
    """A fake rotation worker whose promote step heartbeats 3/10 rows and waits until released."""
    release = asyncio.Event()

    @activity.defn(name="rotate_credential.promote")
    async def slow_promote(input: RotationStepInput) -> StepResult:
        activity.heartbeat({"done": 3, "total": 10, "unit": "rows", "checkpoint": 3})
        await release.wait()
        return StepResult(changed=True)

    fake = FakeRotation()
    activities = [a for a in fake.activities() if a != fake.promote] + [slow_promote]
    queue = f"slow-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[RotateDbCredential], activities=activities):
        yield {**cli_env, "OPSCTL_TASK_QUEUE": queue}, release


async def test_status_shows_a_long_step_s_progress_from_its_heartbeats(
    client: Client, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A running step's heartbeat details (done/total/unit/checkpoint) appear in status."""
    async with promoting_slowly(client, cli_env) as (env, release):
        doc = document(tmp_path, "r", f"s{env['OPSCTL_TASK_QUEUE']}", "dev")
        started = await opsctl(env, "apply", "-f", doc, "--timeout", "2", "--format", "json")
        run_id = started.json()["workflow_id"]
        status = await opsctl(env, "status", run_id, "--format", "json")
        text = await opsctl(env, "status", run_id)
        release.set()
        final = await opsctl(env, "result", run_id, "--wait", "--timeout", "30")
    live = status.json()["live"]
    assert [("rotate_credential.promote", 3, "rows")] == [
        (a["activity_type"], a["details"]["done"], a["details"]["unit"]) for a in live
    ]
    assert "3/10 rows — checkpoint 3" in text.stdout
    assert 0 == final.code


async def test_looser_inputs_are_refused_too(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A key given twice (exit 2), an environment without a policy (exit 3), an unknown filter (exit 2)."""
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "apiVersion: opsctl/v1\nkind: RotateDbCredential\nkind: SweepStaleVolumes\n"
        "metadata: {environment: dev}\nspec: {olderThanDays: 1}\n"
    )
    qa = document(tmp_path, "r", "s", environment="qa")
    duplicate, unknown_env = (
        await opsctl(cli_env, "validate", "-f", str(twice)),
        await opsctl(cli_env, "validate", "-f", qa),
    )
    bogus = await opsctl(cli_env, "list", "--phase", "bogus")
    assert (2, 3, 2) == (duplicate.code, unknown_env.code, bogus.code)
    assert "duplicate key 'kind'" in duplicate.stderr
    assert "error: metadata.environment: no policy for environment 'qa'" in unknown_env.stderr


async def test_an_idempotency_key_reused_for_another_request_is_refused(
    cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str]
) -> None:
    key = f"  idempotencyKey: reuse-{uuid.uuid4().hex[:8]}\n"
    first = await opsctl(cli_env, "apply", "-f", document(tmp_path, *seeded, extra=key))
    other = await opsctl(cli_env, "apply", "-f", document(tmp_path, "other_role", seeded[1], extra=key))
    assert 7 == first.code, first.stderr
    assert 2 == other.code
    assert "already names run" in other.stderr


async def test_a_run_nobody_works_on_is_a_dependency_failure_not_a_bug(cli_env: dict[str, str], tmp_path: Path) -> None:
    """No worker polls the queue: the state query times out and the CLI says what to check (exit 4)."""
    env = {**cli_env, "OPSCTL_TASK_QUEUE": f"nobody-{uuid.uuid4().hex[:6]}"}
    ran = await opsctl(env, "apply", "-f", document(tmp_path, "r", f"s-{uuid.uuid4().hex[:6]}", "dev"))
    assert 4 == ran.code, ran.stderr
    assert "is one polling its task queue" in ran.stderr


def test_a_reader_that_goes_away_is_no_error() -> None:
    """`opsctl schema K | head -c1`: the pipe closes before opsctl writes; it exits quietly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "client.main", "schema", "MigrateSchema"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert 0 == process.returncode
    assert b"" == err


async def test_ctrl_c_exits_130_naming_the_run_that_goes_on(
    cli_env: dict[str, str], tmp_path: Path, seeded: tuple[str, str]
) -> None:
    import signal

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client.main",
        "apply",
        "-f",
        document(tmp_path, *seeded),
        "--wait",
        "--until-approved",  # the run awaits approval: without this, apply returns there (exit 7)
        env=cli_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    seen = b""
    while b"awaiting_approval" not in seen:  # the run exists and waits: now interrupt the command
        seen += await asyncio.wait_for(process.stderr.readline(), timeout=60)
    process.send_signal(signal.SIGINT)
    _, rest = await asyncio.wait_for(process.communicate(), timeout=30)
    err = (seen + rest).decode()
    assert 130 == process.returncode, err
    run_id = next(line.split()[1] for line in err.splitlines() if line.startswith("submitted "))
    assert f"error: interrupted; run {run_id} goes on" in err
    assert f"opsctl status {run_id}" in err
    assert "Traceback" not in err


async def test_a_wait_that_runs_out_while_the_run_works_is_exit_4_not_success(
    client: Client, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`apply --wait --timeout 2` on a run still applying said exit 0; it is exit 4 naming how to follow."""
    async with promoting_slowly(client, cli_env) as (env, release):
        doc = document(tmp_path, "r", f"s{env['OPSCTL_TASK_QUEUE']}", "dev")
        waited = await opsctl(env, "apply", "-f", doc, "--wait", "--timeout", "2")
        release.set()
        run_id = (await opsctl(env, "apply", "-f", doc, "--format", "json")).json()["workflow_id"]
        final = await opsctl(env, "result", run_id, "--wait", "--timeout", "30")
    assert 4 == waited.code
    assert f"run {run_id} is still applying after 2s of waiting; it goes on" in waited.stderr
    assert f"opsctl result {run_id} --wait" in waited.stderr
    assert 0 == final.code
