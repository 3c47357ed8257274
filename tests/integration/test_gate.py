"""The gate against a caller who controls everything but the worker and the keys, on the real stack.

Decisions arrive as raw signals with JSON bodies, exactly what `temporal workflow signal
--input '{...}'` or the Web UI's signal form sends; the requests come straight through the
Temporal client, not through opsctl. The worker loads the test policy file with real keys.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from temporalio.client import Client

from client.devstack import Stack, seed_role
from client.runs import start_run, wait_for
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput, RunInput, RunState
from contracts.signing import sign
from tests.identities import KEYRING
from tests.integration.test_rotate_credential import can_login, rotation_request


async def test_forged_expired_replayed_and_unsigned_approvals_are_refused_and_recorded(
    stack: Stack, client: Client, task_queue: str
) -> None:
    role, secret = f"g_{uuid.uuid4().hex[:8]}", f"gate/{uuid.uuid4().hex[:8]}"
    password = seed_role(stack, role, secret)
    handle, _ = await start_run(
        client, parse_request(rotation_request(role, secret)), task_queue=task_queue, keys=KEYRING
    )
    waiting = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    plan_hash, scope = waiting.plan_hash, waiting.decision_scope

    def signed(actor: str, **changes: Any) -> dict[str, Any]:
        input = KEYRING.sign_decision(scope, Decision.APPROVE, DecisionInput(actor=actor, plan_hash=plan_hash))
        return {**input.model_dump(), **changes}

    bob_key = KEYRING.private_key("bob")
    assert bob_key is not None
    claims_carol = DecisionInput(
        actor="carol", plan_hash=plan_hash, attempt_id="a-carol", expires_at=int(time.time()) + 300
    )
    claims_carol = claims_carol.model_copy(
        update={"signature": sign(bob_key, claims_carol.signature_payload(scope, Decision.APPROVE))}
    )
    expired = KEYRING.sign_decision(
        scope, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=plan_hash), now=time.time() - 3600
    )
    attempts = [
        {"actor": "bob", "plan_hash": plan_hash},  # unsigned, as a hand-typed `temporal workflow signal`
        signed("bob", comment="changed after signing"),  # forged: the signature no longer covers it
        expired.model_dump(),
        claims_carol.model_dump(),  # bob's key, carol's name
        signed("alice"),  # the requester's own, validly signed
    ]
    for body in attempts:
        await handle.signal("approve", body)
    valid = signed("bob")
    await handle.signal("approve", valid)
    await handle.signal("approve", valid)  # replayed: counts once, recorded as refused

    result: RunState = await handle.result()
    reasons = [(d.actor, d.accepted, d.reason.split(":")[0]) for d in result.decisions]
    assert [
        ("bob", False, "unsigned"),
        ("bob", False, "invalid signature"),
        ("bob", False, "expired"),
        ("carol", False, "signed with bob's key, not carol's"),
        ("alice", False, "four-eyes"),
        ("bob", True, "approved"),
        ("bob", False, "replayed"),
    ] == reasons
    assert Phase.SUCCEEDED == result.phase
    assert [d.signed for d in result.decisions] == [False, False, False, False, True, True, False]
    assert not await can_login(stack, role, password), "the approved rotation changed the password"


async def test_a_loosened_input_from_the_temporal_client_never_reaches_apply(
    stack: Stack, client: Client, task_queue: str
) -> None:
    """No approvals required, another requester, extra fields: the worker's policy still holds the gate."""
    role, secret = f"l_{uuid.uuid4().hex[:8]}", f"gate/{uuid.uuid4().hex[:8]}"
    password = seed_role(stack, role, secret)
    request = parse_request(rotation_request(role, secret, requester="mallory"))
    body = {
        **RunInput(request=request).model_dump(mode="json"),
        "policy": {"environment": "prod", "required_approvals": 0, "approval_timeout_seconds": 60},
        "search_attributes": False,
    }
    result: RunState = await client.execute_workflow(
        "RotateDbCredential", body, id=f"loose-{uuid.uuid4().hex[:6]}", task_queue=task_queue, result_type=RunState
    )
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "fields opsctl does not take: policy, search_attributes" in result.failure.message
    assert "applying" not in result.phase_times
    assert await can_login(stack, role, password)

    unsigned: RunState = await client.execute_workflow(
        "RotateDbCredential",
        RunInput(request=request),
        id=f"unsigned-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
        result_type=RunState,
    )
    assert unsigned.failure is not None
    assert "unsigned" in unsigned.failure.message
    assert "planning" not in unsigned.phase_times


async def test_a_later_run_of_a_used_workflow_id_is_refused_with_its_replayed_request_and_approval(
    stack: Stack, client: Client, task_queue: str
) -> None:
    """A caller reuses a finished run's workflow id (reuse policy is the caller's choice), replaying alice's
    signed request and bob's approval: opsctl runs each id once, so the later run is refused outright."""
    from temporalio.common import WorkflowIDReusePolicy

    role, secret = f"x_{uuid.uuid4().hex[:8]}", f"gate/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    request = parse_request(rotation_request(role, secret))
    first, _ = await start_run(client, request, task_queue=task_queue, keys=KEYRING)
    waiting = await wait_for(first, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    approval = KEYRING.sign_decision(
        waiting.decision_scope, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=waiting.plan_hash)
    )
    await first.terminate("test: make room for a second run of the same id")

    second = await client.start_workflow(
        "RotateDbCredential",
        KEYRING.sign_request(RunInput(request=request), first.id),
        id=first.id,
        task_queue=task_queue,
        result_type=RunState,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    await second.signal("approve", approval)
    refused = await second.result()
    assert Phase.FAILED == refused.phase
    assert refused.failure is not None
    assert f"workflow id {first.id} was used by an earlier run" in refused.failure.message
    assert "planning" not in refused.phase_times
    assert not any(d.accepted for d in refused.decisions)
