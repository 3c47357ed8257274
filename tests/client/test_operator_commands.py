"""The operator's daily commands on the real stack: list filters, plan of a request that already ran."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client

from client.devstack import Stack, seed_role
from tests.client.conftest import opsctl
from tests.client.test_examples import record


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


async def test_audit_reads_the_whole_story_from_the_history_and_exports_json_lines(
    client: Client, cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    document = rotation(tmp_path, stack, environment="prod")
    applied = (await opsctl(cli_env, "apply", "-f", document, "-o", "json")).json()
    run, plan_hash = applied["workflow_id"], applied["plan_hash"]
    assert 6 == (await opsctl(cli_env, "approve", run, "--plan-hash", plan_hash)).code  # alice: four-eyes
    noted = await opsctl(cli_env, "note", run, "paged the owner, go ahead", "--as", "carol")
    assert 0 == noted.code, noted.stdout + noted.stderr
    assert 0 == (await opsctl(cli_env, "approve", run, "--plan-hash", plan_hash, "--as", "bob")).code
    assert 0 == (await opsctl(cli_env, "result", run, "--wait", "--timeout", "60")).code

    export = tmp_path / "audit.jsonl"
    audited = await opsctl(cli_env, "audit", run, "-o", "json", "--export", str(export))
    assert 0 == audited.code, audited.stderr
    trail = audited.json()
    assert ("opsctl.audit/v1", run, "alice", plan_hash) == (
        trail["schema_version"],
        trail["workflow_id"],
        trail["requester"],
        trail["plan_hash"],
    )
    assert trail["closed"]
    assert "succeeded" == trail["outcome"]["phase"]
    kinds = [event["kind"] for event in trail["events"]]
    assert ["requested", "policy", "planned"] == kinds[:3]
    assert {"decision", "note", "step", "verified", "outcome"} <= set(kinds)
    assert "outcome" == kinds[-1]
    requested = trail["events"][0]
    assert requested["details"]["signed"]
    assert "RotateDbCredential" == requested["details"]["request"]["kind"]
    decisions = [event for event in trail["events"] if event["kind"] == "decision"]
    assert [("alice", "refused"), ("bob", "accepted")] == [(d["actor"], d["details"]["verdict"]) for d in decisions]
    assert decisions[0]["details"]["reason"].startswith("four-eyes")
    assert all(d["details"]["signed"] for d in decisions)
    note = next(event for event in trail["events"] if event["kind"] == "note")
    assert ("carol", True) == (note["actor"], note["details"]["accepted"])
    steps = [event for event in trail["events"] if event["kind"] == "step"]
    assert any("version_id" in str(step["details"]["result"]) for step in steps)  # the external id it made
    assert all(step["details"]["duration_ms"] >= 0 for step in steps)

    lines = export.read_text().splitlines()
    assert len(trail["events"]) == len(lines)
    assert [run] == list({json.loads(line)["workflow_id"] for line in lines})
    text = await opsctl(cli_env, "audit", run)
    assert "note by carol: paged the owner, go ahead" in text.stdout

    after = await opsctl(cli_env, "note", run, "rotated at 14:02, app pods restarted", "-o", "json")
    assert 0 == after.code, after.stdout + after.stderr  # its own small history: the run's is closed
    assert after.json()["decision"]["signed"]
    if os.environ.get("OPSCTL_RECORD_HISTORIES"):  # the replay tests keep the note workflow's path
        await record(client, f"{run}:note:{after.json()['decision']['attempt_id']}")
    forged = await opsctl(cli_env, "note", run, "I am alice", "--as", "mallory", "-o", "json")
    assert 6 == forged.code  # no key for mallory in prod: refused, and kept as refused
    assert forged.json()["decision"]["reason"].startswith("unsigned")
    explained = await opsctl(cli_env, "explain", run, "-o", "json")
    assert 0 == explained.code
    assert ["carol", "alice"] == [note.split(" at ")[0] for note in explained.json()["notes"]]
    trail = (await opsctl(cli_env, "audit", run, "-o", "json")).json()
    late = [e for e in trail["events"] if e["kind"] == "note" and e["details"]["via"] == "note"]
    assert [("alice", "accepted"), ("mallory", "refused")] == [(e["actor"], e["details"]["verdict"]) for e in late]
    assert [] == trail["other_executions"]
    assert [f"opsctl audit {run}"] == [step["command"] for step in explained.json()["next"]]


async def test_watch_returns_when_a_person_must_act_and_explain_names_the_commands(
    cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    document = rotation(tmp_path, stack, environment="prod")
    run = (await opsctl(cli_env, "apply", "-f", document, "-o", "json")).json()["workflow_id"]
    watched = await opsctl(cli_env, "watch", run, "--timeout", "60")
    assert 7 == watched.code, watched.stderr
    assert "awaiting_approval" in watched.stdout
    lines = await opsctl(cli_env, "watch", run, "--timeout", "60", "-o", "json")
    assert 7 == lines.code
    parsed = [json.loads(line) for line in lines.stdout.splitlines()]
    assert "progress" == parsed[0]["event"]
    assert "awaiting_approval" == parsed[-1]["phase"]
    assert run == parsed[-1]["workflow_id"]

    explained = (await opsctl(cli_env, "explain", run, "-o", "json")).json()
    commands = [step["command"] for step in explained["next"]]
    status = (await opsctl(cli_env, "status", run, "-o", "json")).json()
    assert f"opsctl approve {run} --plan-hash {status['plan_hash']} --as APPROVER" == commands[0]
    assert commands[1].startswith(f"opsctl reject {run} --reason")
    assert explained["requested"].startswith("alice asked for RotateDbCredential in prod")
    assert [] == explained["changed"]
    await opsctl(cli_env, "reject", run, "--reason", "test over", "--as", "bob")


async def test_rerun_starts_the_same_request_again_linked_both_ways(
    cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    document = rotation(tmp_path, stack, environment="prod")
    first = (await opsctl(cli_env, "apply", "-f", document, "-o", "json")).json()["workflow_id"]
    running = await opsctl(cli_env, "rerun", first)
    assert 2 == running.code
    assert "still awaiting_approval" in running.stderr
    assert 0 == (await opsctl(cli_env, "reject", first, "--reason", "wrong window", "--as", "bob")).code

    rerun = await opsctl(cli_env, "rerun", first, "-o", "json")
    assert 7 == rerun.code, rerun.stderr  # a normal run: prod waits for approval again
    again = rerun.json()
    assert first == again["rerun_of"]
    second = again["workflow_id"]
    assert second != first
    assert first == again["request"]["metadata"]["labels"]["opsctl/rerun-of"]
    twice = await opsctl(cli_env, "rerun", first, "-o", "json")
    assert (second, True) == (twice.json()["workflow_id"], twice.json()["attached"])  # the same rerun
    listed = await opsctl(cli_env, "list", "--rerun-of", first, "-o", "json")
    assert [second] == [row["run_id"] for row in listed.json()["runs"]]
    await opsctl(cli_env, "reject", second, "--reason", "test over", "--as", "bob")


async def test_rerun_of_a_run_that_succeeded_is_refused(cli_env: dict[str, str], tmp_path: Path, stack: Stack) -> None:
    run = (await opsctl(cli_env, "apply", "-f", rotation(tmp_path, stack), "--wait", "-o", "json")).json()
    refused = await opsctl(cli_env, "rerun", run["workflow_id"])
    assert 2 == refused.code
    assert "new metadata.idempotencyKey" in refused.stderr


async def test_waiting_commands_return_when_a_person_must_approve_unless_asked_to_wait_on(
    cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    document = rotation(tmp_path, stack, environment="prod")
    waited = await opsctl(cli_env, "apply", "-f", document, "--wait", "--timeout", "60", "-o", "json")
    assert 7 == waited.code, waited.stderr
    run = waited.json()
    assert f"opsctl approve {run['workflow_id']} --plan-hash {run['plan_hash']}" in waited.stderr
    assert 7 == (await opsctl(cli_env, "result", run["workflow_id"], "--wait", "--timeout", "60")).code
    began = time.monotonic()
    patient = await opsctl(cli_env, "result", run["workflow_id"], "--wait", "--until-approved", "--timeout", "3")
    assert time.monotonic() - began >= 3  # it waited on through the approval phase
    assert 7 == patient.code  # the wait ran out while it awaits approval: that phase's own code
    await opsctl(cli_env, "reject", run["workflow_id"], "--reason", "test over", "--as", "bob")


async def test_audit_gives_each_signal_its_verdict_and_survives_payloads_it_cannot_decode(
    client: Client, cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    document = rotation(tmp_path, stack, environment="prod")
    run = (await opsctl(cli_env, "apply", "-f", document, "-o", "json")).json()["workflow_id"]
    handle = client.get_workflow_handle(run)
    await handle.signal("reject", {"actor": "mallory", "comment": "unsigned, in prod"})
    await handle.signal("note", {"actor": "alice", "comment": "I am alice and I approve"})
    await handle.signal("launch_missiles", {"actor": "eve"})
    for encoding, data in ((b"foo/bar", b"x"), (b"json/plain", b"\xff\xfe"), (b"binary/encrypted", b"garbage")):
        await client.workflow_service.signal_workflow_execution(
            SignalWorkflowExecutionRequest(
                namespace="default",
                workflow_execution=WorkflowExecution(workflow_id=run),
                signal_name="approve",
                input=Payloads(payloads=[Payload(metadata={"encoding": encoding}, data=data)]),
                identity="raw",
            )
        )
    await opsctl(cli_env, "status", run)  # the run has taken them all once it answers

    open_trail = await opsctl(cli_env, "audit", run, "-o", "json")
    assert 0 == open_trail.code, open_trail.stderr
    decisions = [e for e in open_trail.json()["events"] if e["kind"] in ("decision", "note")]
    assert ("mallory", "refused") == (decisions[0]["actor"], decisions[0]["details"]["verdict"])
    assert decisions[0]["details"]["reason"].startswith("unsigned")
    assert ("alice", "refused") == (decisions[1]["actor"], decisions[1]["details"]["verdict"])  # no signature
    assert "REFUSED" in decisions[1]["summary"]
    assert ("eve", "refused") == (decisions[2]["actor"], decisions[2]["details"]["verdict"])
    assert 3 == sum("undecodable input" in e["summary"] for e in decisions[3:])
    requested = open_trail.json()["events"][0]
    assert requested["details"]["requester_verified"]
    await opsctl(cli_env, "reject", run, "--reason", "test over", "--as", "bob")
    closed = (await opsctl(cli_env, "audit", run, "-o", "json")).json()
    assert ["refused", "refused", "refused"] == [
        e["details"]["verdict"] for e in closed["events"] if e["kind"] in ("decision", "note")
    ][:3]


async def test_audit_reads_only_the_run_not_a_later_execution_that_reused_its_id(
    client: Client, cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    applied = await opsctl(cli_env, "apply", "-f", rotation(tmp_path, stack), "--wait", "-o", "json")
    run = applied.json()
    forged = await client.start_workflow(
        "RotateDbCredential",
        {"request": {**run["request"], "metadata": {"environment": "dev", "requester": "carol"}}},
        id=run["workflow_id"],
        task_queue=cli_env["OPSCTL_TASK_QUEUE"],
    )
    trail = (await opsctl(cli_env, "audit", run["workflow_id"], "-o", "json")).json()
    assert ("alice", "succeeded") == (trail["requester"], trail["outcome"]["phase"])
    assert [forged.result_run_id] == trail["other_executions"]
    assert all(e["run"] != forged.result_run_id for e in trail["events"])


async def test_rerun_refuses_a_request_its_requester_did_not_sign(
    client: Client, cli_env: dict[str, str], tmp_path: Path, stack: Stack
) -> None:
    """A raw start (no signature) that failed: a rerun would sign someone's request as yours."""
    applied = await opsctl(cli_env, "plan", "-f", rotation(tmp_path, stack), "-o", "json")
    request = applied.json()["request"]
    raw = await client.start_workflow(
        "RotateDbCredential",
        {"request": {**request, "metadata": {"environment": "qa-nowhere", "requester": "alice"}}},
        id=f"raw-{uuid.uuid4().hex[:8]}",
        task_queue=cli_env["OPSCTL_TASK_QUEUE"],
    )
    ended = await opsctl(cli_env, "result", raw.id, "--wait", "--timeout", "60", "-o", "json")
    assert "failed" == ended.json()["phase"]
    refused = await opsctl(cli_env, "rerun", raw.id)
    assert 2 == refused.code
    assert "was not verified as signed by its requester" in refused.stderr


async def test_a_document_may_not_set_opsctl_labels(cli_env: dict[str, str], tmp_path: Path, stack: Stack) -> None:
    path = Path(rotation(tmp_path, stack))
    path.write_text(path.read_text().replace("metadata:\n", "metadata:\n  labels: {opsctl/rerun-of: X}\n"))
    ran = await opsctl(cli_env, "validate", "-f", str(path))
    assert 2 == ran.code
    assert "labels under opsctl/ are set by opsctl itself" in ran.stderr


async def test_list_takes_email_like_requesters_and_long_durations(cli_env: dict[str, str]) -> None:
    assert 0 == (await opsctl(cli_env, "list", "--requester", "alice@example.com", "--since", "3651m")).code
    assert 2 == (await opsctl(cli_env, "list", "--since", "3700w")).code


async def test_watch_json_is_json_lines_even_when_it_fails(cli_env: dict[str, str]) -> None:
    ran = await opsctl({**cli_env, "OPSCTL_TEMPORAL_ADDRESS": "127.0.0.1:1"}, "watch", "R", "-o", "json")
    assert 4 == ran.code
    assert [4] == [json.loads(line)["exit_code"] for line in ran.stdout.splitlines()]
