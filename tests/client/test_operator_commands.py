"""The operator's daily commands on the real stack: list filters, plan of a request that already ran."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from client.devstack import Stack, seed_role
from tests.client.conftest import opsctl


def rotation(tmp_path: Path, stack: Stack, environment: str = "dev", requester: str = "") -> str:
    role, secret = f"o_{uuid.uuid4().hex[:8]}", f"ops/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    path = tmp_path / f"{role}.yaml"
    who = f"  requester: {requester}\n" if requester else ""
    path.write_text(
        f"apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata:\n  environment: {environment}\n{who}"
        f"spec:\n  database: app\n  role: {role}\n  secretId: {secret}\n"
    )
    return str(path)


async def test_list_hides_dry_runs_unless_asked_and_filters_by_requester_since_and_emergency(
    cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    env = {**cli_env, "OPSCTL_USER": f"u{uuid.uuid4().hex[:6]}"}  # a requester only this test uses
    document = rotation(tmp_path, stack)
    planned = await opsctl(env, "plan", "-f", document, "-o", "json")
    assert 10 == planned.code, planned.stderr
    applied = await opsctl(env, "apply", "-f", document, "--wait", "-o", "json")
    assert 0 == applied.code, applied.stderr
    dry_run, run = planned.json()["workflow_id"], applied.json()["workflow_id"]

    mine = await opsctl(env, "list", "--requester", env["OPSCTL_USER"], "-o", "json")
    assert [run] == [row["run_id"] for row in mine.json()["runs"]]
    with_dry = await opsctl(env, "list", "--requester", env["OPSCTL_USER"], "--dry-runs", "-o", "json")
    assert {run: False, dry_run: True} == {row["run_id"]: row["dry_run"] for row in with_dry.json()["runs"]}
    assert "DRY_RUN" in (await opsctl(env, "list", "--requester", env["OPSCTL_USER"], "--dry-runs")).stdout.upper()

    recent = await opsctl(env, "list", "--requester", env["OPSCTL_USER"], "--since", "10m", "-o", "json")
    assert [run] == [row["run_id"] for row in recent.json()["runs"]]
    future = await opsctl(env, "list", "--requester", env["OPSCTL_USER"], "--since", "2999-01-01", "-o", "json")
    assert [] == future.json()["runs"]
    emergencies = await opsctl(env, "list", "--requester", env["OPSCTL_USER"], "--emergency", "-o", "json")
    assert [] == emergencies.json()["runs"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--limit", "0"],
        ["--limit", "many"],
        ["--limit", "5000"],
        ["--since", "yesterday"],
        ["--since", "5y"],
        ["--requester", "a'b"],
    ],
)
async def test_list_refuses_bad_filters_with_exit_2(cli_env: dict[str, str], argv: list[str]) -> None:
    ran = await opsctl(cli_env, "list", *argv)
    assert 2 == ran.code
    assert argv[0] in ran.stderr
    assert "Traceback" not in ran.stderr


async def test_plan_of_a_request_that_already_ran_says_apply_would_return_that_run(
    cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    document = rotation(tmp_path, stack)
    applied = await opsctl(cli_env, "apply", "-f", document, "--wait", "-o", "json")
    assert 0 == applied.code, applied.stderr
    run = applied.json()["workflow_id"]

    again = await opsctl(cli_env, "plan", "-f", document, "-o", "json")
    assert 0 == again.code, again.stderr  # nothing would change: apply returns the finished run
    assert run == again.json()["existing_run"]["workflow_id"]
    assert "succeeded" == again.json()["existing_run"]["phase"]
    assert f"already ran: run {run} ended succeeded" in again.json()["note"]
    text = await opsctl(cli_env, "plan", "-f", document)
    assert "new metadata.idempotencyKey" in text.stdout


async def test_plan_of_a_request_whose_run_waits_for_approval_exits_10(
    cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    document = rotation(tmp_path, stack, environment="prod")
    applied = await opsctl(cli_env, "apply", "-f", document, "-o", "json")
    assert 7 == applied.code, applied.stderr
    run = applied.json()["workflow_id"]
    again = await opsctl(cli_env, "plan", "-f", document, "-o", "json")
    assert 10 == again.code, again.stderr  # that run will still change things once approved
    assert "awaiting_approval" == again.json()["existing_run"]["phase"]
    assert f"`opsctl status {run}`" in again.json()["note"]
    await opsctl(cli_env, "reject", run, "--reason", "test over", "--as", "bob")
