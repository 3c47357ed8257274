"""The approval gate inside the workflow: quorum with groups, freeze windows, break-glass, review.

Time-skipping server with same-name fake activities (tests/workflows/test_lifecycle.py):
deadlines of days pass at once. Decisions are signed with the test identities' real keys.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from contracts.failures import ExitCode, FailureKind
from contracts.phases import Phase
from contracts.run import Decision, DecisionInput, ResolveInput, RunInput, RunState
from tests.identities import KEYRING, policies
from tests.workflows.test_lifecycle import MUTATIONS, FakeRotation, run_input, send, start, until_phase, worker
from workflows.rotate_credential import RotateDbCredential

Handle = WorkflowHandle[Any, RunState]


async def approve(env: WorkflowEnvironment, handle: Handle, actor: str) -> RunState:
    state = await handle.query(RotateDbCredential.state)
    await send(env, handle, Decision.APPROVE, DecisionInput(actor=actor, plan_hash=state.plan_hash))
    return await handle.query(RotateDbCredential.state)


async def test_one_approver_from_the_wrong_group_does_not_open_the_gate_two_from_the_right_groups_do(
    env: WorkflowEnvironment,
) -> None:
    """prod: one from dba and one from owners. bob and dave are dba: dave does not count; carol does."""
    two_groups = policies(prod={"requiredApprovals": 2, "quorum": {"dba": 1, "owners": 1}})
    fake, queue = FakeRotation(policy_set=two_groups), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("prod"))
        await until_phase(handle, Phase.AWAITING_APPROVAL)
        await approve(env, handle, "bob")
        after_dave = await approve(env, handle, "dave")
        assert Phase.AWAITING_APPROVAL == after_dave.phase
        assert not any(call in fake.calls for call in MUTATIONS)
        await approve(env, handle, "carol")
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    verdicts = [(d.actor, d.accepted, d.groups) for d in result.decisions]
    assert [("bob", True, ["dba"]), ("dave", False, ["dba"]), ("carol", True, ["owners"])] == verdicts
    assert "it needs 1 from owners; dave is in dba" in result.decisions[1].reason


async def test_an_approved_run_waits_for_the_freeze_window_then_replans_and_applies(env: WorkflowEnvironment) -> None:
    now = await env.get_current_time()
    freeze = {
        "dates": [
            {
                "start": (now - timedelta(hours=1)).isoformat(),
                "end": (now + timedelta(days=2)).isoformat(),
                "reason": "year-end freeze",
            }
        ]
    }
    fake, queue = FakeRotation(policy_set=policies(prod={"freeze": freeze})), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("prod"))
        await until_phase(handle, Phase.AWAITING_APPROVAL)
        await approve(env, handle, "bob")
        waiting = await until_phase(handle, Phase.WAITING_FOR_WINDOW)
        assert waiting.frozen_until is not None
        assert "year-end freeze" in waiting.next_action
        assert ExitCode.AWAITING_APPROVAL == waiting.exit_code(), "apply without --wait: 7, the run waits"
        assert ["plan"] == fake.calls, "nothing is applied, nor re-planned, during the freeze"
        result = await handle.result()  # the time-skipping server jumps to the window's end
    assert Phase.SUCCEEDED == result.phase
    assert ["plan", "plan", "create_pending"] == fake.calls[:3], "re-planned before applying"
    assert result.phase_times["replanning"] >= waiting.frozen_until


async def test_a_cancel_while_waiting_for_the_window_undoes_nothing_because_nothing_was_applied(
    env: WorkflowEnvironment,
) -> None:
    weekly_always = {"weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "reason": "freeze"}]}
    fake = FakeRotation(
        policy_set=policies(dev={"requiredApprovals": 0, "requireSignatures": False, "freeze": weekly_always})
    )
    queue = uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        await until_phase(handle, Phase.WAITING_FOR_WINDOW)
        await send(env, handle, Decision.CANCEL, DecisionInput(actor="carol", comment="not this year"))
        result = await handle.result()
    assert Phase.CANCELLED == result.phase
    assert ["plan"] == fake.calls
    assert [] == result.changed
    assert "cancelled before any change: nothing to undo" == result.next_action


def emergency(environment: str, reason: str = "primary is down") -> RunInput:
    return run_input(environment).model_copy(update={"emergency": reason})


async def test_break_glass_applies_without_approval_then_its_review_deadline_passing_is_recorded(
    env: WorkflowEnvironment,
) -> None:
    """staging allows break-glass: apply at once; the review is overdue after its deadline; bob reviews it."""
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, emergency("staging"))
        review = await until_phase(handle, Phase.AWAITING_REVIEW)
        assert ExitCode.SUCCESS == review.exit_code(), "the apply succeeded; only the review is open"
        assert "promote" in fake.calls
        assert review.emergency == "primary is down"
        await env.sleep(timedelta(hours=25))
        overdue = await until_phase(handle, Phase.REVIEW_OVERDUE)
        assert any("review deadline passed" in warning for warning in overdue.warnings)
        await approve(env, handle, "alice")  # the requester never reviews her own emergency
        await approve(env, handle, "bob")
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    assert [("alice", False), ("bob", True)] == [(d.actor, d.accepted) for d in result.decisions]
    assert "emergency apply reviewed by bob" in result.warnings


async def test_break_glass_is_refused_where_the_policy_forbids_it(env: WorkflowEnvironment) -> None:
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        result = await (await start(env, fake, queue, emergency("prod"))).result()
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.POLICY_DENIED == result.failure.kind
    assert "break-glass is not allowed in prod" in result.failure.message
    assert [] == fake.calls, "refused before planning"


async def test_the_requester_cannot_mark_their_own_unverified_run_done_in_prod(env: WorkflowEnvironment) -> None:
    fake, queue = FakeRotation(checks_pass=[False]), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("prod"))
        await until_phase(handle, Phase.AWAITING_APPROVAL)
        await approve(env, handle, "bob")
        await until_phase(handle, Phase.NEEDS_REVIEW)
        own = ResolveInput(actor="alice", comment="looks fine to me", resolution=Decision.MARK_DONE)
        await send(env, handle, Decision.MARK_DONE, own)
        still = await handle.query(RotateDbCredential.state)
        assert Phase.NEEDS_REVIEW == still.phase
        assert still.decisions[-1].reason.startswith("four-eyes: mark done decides an unverified outcome")
        other = ResolveInput(actor="carol", comment="checked by hand", resolution=Decision.MARK_DONE)
        await send(env, handle, Decision.MARK_DONE, other)
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    assert ["marked done by carol: checked by hand"] == result.warnings


async def test_a_loosened_input_never_reaches_apply(env: WorkflowEnvironment) -> None:
    """Extra fields (a policy, a continuation) are refused by name; an unsigned prod request too."""
    fake, queue = FakeRotation(), uuid.uuid4().hex
    loosened = RunInput.model_validate(
        {**run_input("prod").model_dump(mode="json"), "policy": {"required_approvals": 0}}
    )
    async with worker(env, fake, queue):
        extra = await (await start(env, fake, queue, loosened)).result()
        unsigned = await env.client.execute_workflow(
            RotateDbCredential.run, run_input("prod"), id=f"u-{uuid.uuid4().hex[:6]}", task_queue=queue
        )
        claimed = run_input("prod")
        as_bob = claimed.model_copy(
            update={
                "request": claimed.request.model_copy(
                    update={"metadata": claimed.request.metadata.model_copy(update={"requester": "bob"})}
                )
            }
        )
        now = (await env.get_current_time()).timestamp()
        workflow_id = f"c-{uuid.uuid4().hex[:6]}"
        alice_signs_as_bob = as_bob.model_copy(
            update={"signature": KEYRING.sign_request(claimed, workflow_id, now).signature}
        )
        forged = await env.client.execute_workflow(
            RotateDbCredential.run, alice_signs_as_bob, id=workflow_id, task_queue=queue
        )
    assert [] == fake.calls, "nothing was even planned"
    assert extra.failure is not None
    assert "fields opsctl does not take: policy" in extra.failure.message
    assert unsigned.failure is not None
    assert FailureKind.POLICY_DENIED == unsigned.failure.kind
    assert "unsigned: prod requires signed decisions" in unsigned.failure.message
    assert forged.failure is not None
    assert "the request's signature: invalid signature" in forged.failure.message


async def test_a_worker_that_cannot_say_the_policy_fails_the_run_closed_instead_of_hanging(
    env: WorkflowEnvironment,
) -> None:
    from temporalio import activity
    from temporalio.worker import Worker

    @activity.defn(name="opsctl.resolve_policy")
    async def broken(input: object) -> None:
        raise RuntimeError("policy store unreachable")

    fake, queue = FakeRotation(), uuid.uuid4().hex
    activities = [*fake.activities()[:-1], broken]  # the policy activity is the last one
    async with Worker(env.client, task_queue=queue, workflows=[RotateDbCredential], activities=activities):
        result = await (await start(env, fake, queue, run_input("prod"))).result()
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.VALIDATION == result.failure.kind
    assert result.failure.message.startswith("no policy for environment 'prod' in the worker, which could not answer")
    assert [] == fake.calls


async def test_a_cron_schedule_cannot_smuggle_a_continuation_past_the_gate(env: WorkflowEnvironment) -> None:
    """Temporal sets continued_run_id on cron runs too, with the caller's input: never trusted."""
    from contracts.run import Continuation, RunSettings

    fake, queue = FakeRotation(), uuid.uuid4().hex
    forged_state = RunState(
        workflow_id="x",
        kind="RotateDbCredential",
        mode="apply",
        environment="prod",
        requester="mallory",
        phase=Phase.APPLYING,
        request=run_input("prod").request,
        plan=fake.plans[0],
    )
    loose = RunSettings(policy=policies().policy_for("dev"), policy_source="mallory")
    smuggled = run_input("prod").model_copy(update={"continuation": Continuation(state=forged_state, settings=loose)})
    workflow_id = f"cron-{uuid.uuid4().hex[:6]}"
    async with worker(env, fake, queue):
        handle = await env.client.start_workflow(
            RotateDbCredential.run, smuggled, id=workflow_id, task_queue=queue, cron_schedule="0 * * * *"
        )
        try:
            first_run = handle.result_run_id
            await env.sleep(timedelta(hours=2))  # the first cron run, then the next
            latest = await env.client.get_workflow_handle(workflow_id).describe()
            assert latest.run_id != first_run, "a later cron run started"
        finally:
            await env.client.get_workflow_handle(workflow_id).terminate("test over")
    assert [] == fake.calls, "neither run planned, let alone applied: both refused the continuation"


async def test_a_signal_no_clock_can_hold_is_refused_and_the_run_goes_on(env: WorkflowEnvironment) -> None:
    """An absurd expiry used to fail every workflow task, wedging the run: now it is one refused attempt."""
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("prod"))
        await until_phase(handle, Phase.AWAITING_APPROVAL)
        poison = {"actor": "bob", "plan_hash": "x", "attempt_id": "a1", "expires_at": 10**20, "signature": "AAAA"}
        await handle.signal("approve", poison)
        await approve(env, handle, "bob")
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    assert (False, True) == (result.decisions[0].accepted, result.decisions[1].accepted)
    assert result.decisions[0].reason.startswith("the signature's expiry is too far ahead")


async def test_a_temporal_cancel_cannot_dismiss_the_post_incident_review_nor_hide_a_failure(
    env: WorkflowEnvironment,
) -> None:
    from temporalio.exceptions import ApplicationError

    denied = ApplicationError("login refused", type=FailureKind.AUTH.value, non_retryable=True)
    fake, queue = FakeRotation(failures={"test_login": [denied]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, emergency("staging"))
        review = await until_phase(handle, Phase.AWAITING_REVIEW)
        assert review.failure is not None, "the outcome is known while the review is open"
        assert ExitCode.DEPENDENCY_FAILURE == review.exit_code()
        await handle.cancel()
        await env.sleep(timedelta(minutes=1))
        still = await handle.query(RotateDbCredential.state)
        assert Phase.AWAITING_REVIEW == still.phase
        refused = "a cancel through Temporal was refused: cannot cancel in phase awaiting_review"
        assert refused in still.warnings
        await approve(env, handle, "carol")
        result = await handle.result()
    assert Phase.FAILED == result.phase
    assert "emergency apply reviewed by carol" in result.warnings
