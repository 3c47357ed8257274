"""RotateDbCredential on the real stack: Temporal dev server, PostgreSQL, moto."""

from __future__ import annotations

import uuid

import asyncpg
import boto3
from temporalio.client import Client

from client.devstack import Stack, seed_role
from client.runs import decide, read_state, start_run, wait_for
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput, RunState


def rotation_request(role: str, secret_id: str, environment: str = "prod", requester: str = "alice") -> dict:
    return {
        "apiVersion": "opsctl/v1",
        "kind": "RotateDbCredential",
        "metadata": {"environment": environment, "requester": requester},
        "spec": {"database": "app", "role": role, "secretId": secret_id},
    }


async def can_login(stack: Stack, role: str, password: str) -> bool:
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=stack.ports.postgres, database="app", user=role, password=password
        )
    except asyncpg.InvalidPasswordError:
        return False
    await conn.close()
    return True


def secret_stages(stack: Stack, secret_id: str) -> dict[str, list[str]]:
    aws = boto3.client("secretsmanager", endpoint_url=stack.aws_endpoint)
    return aws.describe_secret(SecretId=secret_id)["VersionIdsToStages"]


def current_password(stack: Stack, secret_id: str) -> str:
    import json

    aws = boto3.client("secretsmanager", endpoint_url=stack.aws_endpoint)
    # Name the stage: moto's default version does not follow update_secret_version_stage.
    value = aws.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    return json.loads(value["SecretString"])["password"]


async def test_rotation_changes_the_password_and_the_secret(stack: Stack, client: Client, task_queue: str) -> None:
    """After an approved rotation the new password logs in, the old one is refused."""
    role, secret_id = f"r_{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex[:8]}"
    old_password = seed_role(stack, role, secret_id)
    old_version = next(v for v, s in secret_stages(stack, secret_id).items() if "AWSCURRENT" in s)
    request = parse_request(rotation_request(role, secret_id))

    handle, new = await start_run(client, request, task_queue=task_queue)
    state = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    assert new
    assert Phase.AWAITING_APPROVAL == state.phase

    record, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash, comment="ok")
    )
    assert record.accepted, record.reason
    result: RunState = await handle.result()

    assert Phase.SUCCEEDED == result.phase, result.failure
    new_password = current_password(stack, secret_id)
    assert new_password != old_password
    assert await can_login(stack, role, new_password)
    assert not await can_login(stack, role, old_password)
    stages = secret_stages(stack, secret_id)
    assert ["AWSPREVIOUS"] == stages[old_version]
    assert all(check.passed for check in result.checks)
    assert (await read_state(handle)).phase is Phase.SUCCEEDED
