"""RotateDbCredential on the real stack: Temporal dev server, PostgreSQL, moto."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import boto3
from temporalio.client import Client

from client.devstack import Stack, seed_role
from client.runs import decide, read_state, start_run, wait_for
from contracts.phases import Phase
from contracts.request import Request, parse_request
from contracts.run import Decision, DecisionInput, RunState
from tests.identities import KEYRING
from worker.settings import WorkerSettings


def rotation_request(role: str, secret_id: str, environment: str = "prod", requester: str = "alice") -> dict[str, Any]:
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
    return str(json.loads(value["SecretString"])["password"])


async def test_rotation_changes_the_password_and_the_secret(stack: Stack, client: Client, task_queue: str) -> None:
    """After an approved rotation the new password logs in, the old one is refused."""
    role, secret_id = f"r_{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex[:8]}"
    old_password = seed_role(stack, role, secret_id)
    old_version = next(v for v, s in secret_stages(stack, secret_id).items() if "AWSCURRENT" in s)
    request = parse_request(rotation_request(role, secret_id))

    handle, new = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    state = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    assert new
    assert Phase.AWAITING_APPROVAL == state.phase

    record, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash, comment="ok"), keys=KEYRING
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


async def seeded_request(stack: Stack, environment: str = "prod", **metadata: object) -> tuple[str, str, str, Request]:
    role, secret_id = f"r_{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex[:8]}"
    password = seed_role(stack, role, secret_id)
    document = rotation_request(role, secret_id, environment)
    document["metadata"].update(metadata)
    return role, secret_id, password, parse_request(document)


async def test_a_duplicate_apply_attaches_to_the_same_run(stack: Stack, client: Client, task_queue: str) -> None:
    """Submitting the same request twice gives one execution, running or finished."""
    _, _, _, request = await seeded_request(stack)
    first, first_new = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    second, second_new = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    state = await wait_for(first, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    await decide(first, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash), keys=KEYRING)
    await first.result()
    third, third_new = await start_run(client, request, task_queue=task_queue, keys=KEYRING)

    assert (True, False, False) == (first_new, second_new, third_new)
    assert first.id == second.id == third.id
    assert Phase.SUCCEEDED == (await third.result()).phase
    executions = [e async for e in client.list_workflows(f"WorkflowId = '{first.id}'")]
    assert 1 == len(executions)


async def test_self_approval_and_a_wrong_hash_are_refused_and_recorded(
    stack: Stack, client: Client, task_queue: str
) -> None:
    role, _, password, request = await seeded_request(stack)
    handle, _ = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    state = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)

    own, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="alice", plan_hash=state.plan_hash), keys=KEYRING
    )
    stale, after = await decide(handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash="0" * 64), keys=KEYRING)

    assert (False, False) == (own.accepted, stale.accepted)
    assert own.reason.startswith("four-eyes")
    assert stale.reason.startswith("plan hash mismatch")
    assert Phase.AWAITING_APPROVAL == after.phase
    assert [("alice", False), ("bob", False)] == [(d.actor, d.accepted) for d in after.decisions]
    assert await can_login(stack, role, password), "nothing was applied"
    rejected, _ = await decide(handle, Decision.REJECT, DecisionInput(actor="bob", comment="test over"), keys=KEYRING)
    assert rejected.accepted
    assert Phase.REJECTED == (await handle.result()).phase


async def test_the_history_never_contains_a_password(stack: Stack, client: Client, task_queue: str) -> None:
    _, secret_id, old_password, request = await seeded_request(stack, "dev")
    handle, _ = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    result = await handle.result()
    new_password = current_password(stack, secret_id)
    history = (await handle.fetch_history()).to_json()

    assert Phase.SUCCEEDED == result.phase
    assert "ActivityTaskCompleted" in history or "ACTIVITY_TASK_COMPLETED" in history
    assert old_password not in history
    assert new_password not in history
    assert new_password not in result.model_dump_json()


async def test_a_missing_role_fails_validation_before_any_change(stack: Stack, client: Client, task_queue: str) -> None:
    _, secret_id, _, request = await seeded_request(stack, "dev")
    missing = request.model_copy(update={"spec": {**request.spec, "role": "no_such_role"}})
    stages_before = secret_stages(stack, secret_id)
    handle, _ = await start_run(client, missing, task_queue=task_queue, keys=KEYRING)
    result = await handle.result()

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "validation" == result.failure.kind.value
    assert "no_such_role" in result.failure.message
    assert stages_before == secret_stages(stack, secret_id)


async def test_a_rotation_that_fails_half_way_is_undone(stack: Stack, client: Client, task_queue: str) -> None:
    """An expired role takes the new password but refuses the test login: the old password is put back."""
    role, secret_id, old_password, request = await seeded_request(stack, "dev")
    current_before = next(v for v, s in secret_stages(stack, secret_id).items() if "AWSCURRENT" in s)
    stack.psql(f"ALTER ROLE {role} VALID UNTIL '2000-01-01'")
    handle, _ = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    result = await handle.result()
    stack.psql(f"ALTER ROLE {role} VALID UNTIL 'infinity'")

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "auth" == result.failure.kind.value
    assert result.failure.message.endswith("(changes compensated)")
    assert ["secretsmanager:secret", "postgres:role"] == [c.resource_type for c in result.changed]
    assert 4 == int(result.exit_code())
    assert await can_login(stack, role, old_password), "the role has its old password again"
    stages = secret_stages(stack, secret_id)
    assert ["AWSCURRENT"] == stages[current_before]
    assert not any("AWSPENDING" in labels for labels in stages.values())


async def test_an_approval_deadline_on_the_dev_server_expires_the_run(
    stack: Stack, client: Client, task_queue: str
) -> None:
    """With search attributes on: a 2-second deadline passes, the run is expired, nothing changed."""
    role, _, password, request = await seeded_request(stack, "prod", approvalTimeoutSeconds=2)
    handle, _ = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    result = await handle.result()

    assert Phase.EXPIRED == result.phase
    assert [] == result.changed
    assert await can_login(stack, role, password)
    described = await handle.describe()
    phase = next(value for key, value in described.typed_search_attributes if key.name == "OpsctlPhase")
    assert "expired" == phase


async def test_a_diagnosis_says_which_version_the_role_takes_and_whether_awscurrent_works(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    """Half-way through (role on AWSPENDING, AWSCURRENT not moved): the diagnosis, having tried each
    version's password, says the database refuses AWSCURRENT and takes the pending version."""
    from temporalio.testing import ActivityEnvironment

    from activities.postgres import Databases
    from activities.rotate_credential import RotateCredentialActivities, RotationStepInput
    from contracts.rotate_credential import RotateDbCredentialSpec

    role, secret_id, _, request = await seeded_request(stack, "dev")
    current = next(v for v, s in secret_stages(stack, secret_id).items() if "AWSCURRENT" in s)
    steps = RotateCredentialActivities(Databases(worker_settings.databases), worker_settings.aws)
    spec = RotateDbCredentialSpec.model_validate(request.spec)
    step = RotationStepInput(workflow_id=f"diagnose-{role}", spec=spec, current_version_id=current)
    run = ActivityEnvironment().run
    before = await run(steps.diagnose, step)
    assert (False, True) == (before.broken, before.statement.startswith("AWSCURRENT")), "before anything: it works"

    pending = (await run(steps.create_pending, step)).version_id
    staged = step.model_copy(update={"pending_version_id": pending})
    await run(steps.set_password, staged)
    found = await run(steps.diagnose, staged)
    diagnosis = found.statement
    assert found.broken

    assert f"the database REFUSES AWSCURRENT (version {current}) for {role}" in diagnosis
    assert f"accepts version {pending}'s password" in diagnosis


async def test_a_waiting_caller_sees_each_change_as_the_run_writes_it_without_polling(
    stack: Stack, client: Client, task_queue: str
) -> None:
    """`wait_for` follows the history (a long poll): with the live-progress interval at an hour, it
    still sees the approval wait, and then the close, within moments of the run writing them."""
    role, secret_id = f"w_{uuid.uuid4().hex[:8]}", f"test/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret_id)
    request = parse_request(rotation_request(role, secret_id))
    handle, _ = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    seen: list[Phase] = []

    def awaiting(state: RunState) -> bool:
        return state.phase is Phase.AWAITING_APPROVAL or state.phase.terminal

    waiting = await asyncio.wait_for(
        wait_for(handle, awaiting, timeout=3600, interval=3600, on_change=lambda s: seen.append(s.phase)), 30
    )
    approval = DecisionInput(actor="bob", plan_hash=waiting.plan_hash)
    following = asyncio.create_task(wait_for(handle, lambda s: s.phase.terminal, timeout=3600, interval=3600))
    record, _ = await decide(handle, Decision.APPROVE, approval, keys=KEYRING)
    done = await asyncio.wait_for(following, 30)

    assert Phase.AWAITING_APPROVAL == waiting.phase, waiting.failure
    assert Phase.AWAITING_APPROVAL in seen
    assert record.accepted, record.reason
    assert Phase.SUCCEEDED == done.phase, done.failure
