"""The shared lifecycle, driven through RotateDbCredential with same-name fake activities.

Runs on the time-skipping test server, so deadlines of hours pass in milliseconds.
Search attributes are off there (the test server does not know custom ones).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.rotate_credential import (
    CompensateResult,
    CreatePendingResult,
    PlanRotationInput,
    RotationStepInput,
    StepResult,
    VerifyRotationResult,
)
from contracts.failures import ExitCode, FailureKind
from contracts.phases import Phase
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.policy import PolicySet
from contracts.request import parse_request
from contracts.run import (
    Check,
    Decision,
    DecisionInput,
    DecisionRecord,
    Diagnosis,
    Mode,
    ResolveInput,
    RunInput,
    RunState,
)
from tests.identities import KEYRING, policy_activities
from workflows.rotate_credential import STEPS, RotateDbCredential

MUTATIONS = ("create_pending", "set_password", "promote")


def make_plan(current_version: str = "v1") -> Plan:
    return Plan(
        kind="RotateDbCredential",
        target="role app/r via secret s",
        actions=[
            PlannedAction(
                action=Action.CREATE,
                resource_type="secretsmanager:secret-version",
                resource_id="s",
                reason="stage",
                reversible=True,
                rollback=Rollback.COMPENSATE,
                observed={"current_version_id": current_version},
            )
        ],
    )


DIAGNOSIS = "the database REFUSES AWSCURRENT (version v1) for app_user, which accepts version v2's password"
WORKS = "AWSCURRENT (version v2) logs in as app_user: consumers of s work"


class FakeRotation:
    """Records every call; `plans` are returned in order (the last one repeats)."""

    def __init__(
        self,
        plans: list[Plan] | None = None,
        failures: dict[str, list[Exception]] | None = None,
        checks_pass: list[bool] | None = None,
        policy_set: PolicySet | None = None,
    ) -> None:
        self.policy_set = policy_set
        self.plans = plans or [make_plan()]
        self.failures = failures or {}
        self.checks_pass = checks_pass or [True]
        self.calls: list[str] = []
        self.undo_works = True
        self.diagnosis = DIAGNOSIS  # what rotate_credential.diagnose finds

    def _call(self, name: str) -> None:
        self.calls.append(name)
        pending = self.failures.get(name)
        if pending:
            raise pending.pop(0)

    @activity.defn(name="rotate_credential.plan")
    async def plan(self, input: PlanRotationInput) -> Plan:
        self._call("plan")
        return self.plans[min(self.calls.count("plan"), len(self.plans)) - 1]

    @activity.defn(name="rotate_credential.create_pending")
    async def create_pending(self, input: RotationStepInput) -> CreatePendingResult:
        self._call("create_pending")
        return CreatePendingResult(version_id="v2", created=True)

    @activity.defn(name="rotate_credential.set_password")
    async def set_password(self, input: RotationStepInput) -> StepResult:
        self._call("set_password")
        return StepResult(changed=True)

    @activity.defn(name="rotate_credential.test_login")
    async def test_login(self, input: RotationStepInput) -> StepResult:
        self._call("test_login")
        return StepResult(changed=False)

    @activity.defn(name="rotate_credential.promote")
    async def promote(self, input: RotationStepInput) -> StepResult:
        self._call("promote")
        return StepResult(changed=True)

    @activity.defn(name="rotate_credential.verify")
    async def verify(self, input: RotationStepInput) -> VerifyRotationResult:
        self._call("verify")
        passed = self.checks_pass[min(self.calls.count("verify"), len(self.checks_pass)) - 1]
        return VerifyRotationResult(checks=[Check(name="secret current version", passed=passed, detail="probe")])

    @activity.defn(name="rotate_credential.compensate")
    async def compensate(self, input: RotationStepInput) -> CompensateResult:
        self._call("compensate")
        return CompensateResult(undone=self.undo_works, detail="restored" if self.undo_works else "could not")

    @activity.defn(name="rotate_credential.diagnose")
    async def diagnose(self, input: RotationStepInput) -> Diagnosis:
        self._call("diagnose")
        return Diagnosis(statement=self.diagnosis, broken=self.diagnosis != WORKS)

    def activities(self) -> list[Any]:
        return [
            self.plan,
            self.create_pending,
            self.set_password,
            self.test_login,
            self.promote,
            self.verify,
            self.compensate,
            self.diagnose,
            policy_activities(self.policy_set).resolve_policy,
        ]


def run_input(environment: str = "prod", mode: Mode = Mode.APPLY) -> RunInput:
    request = parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "RotateDbCredential",
            "metadata": {"environment": environment, "requester": "alice"},
            "spec": {"database": "app", "role": "r", "secretId": "s"},
        }
    )
    return RunInput(request=request, mode=mode)


async def start(
    env: WorkflowEnvironment, fake: FakeRotation, queue: str, input: RunInput
) -> WorkflowHandle[Any, RunState]:
    """Start the run as alice would: the request signed with her key."""
    workflow_id = f"wf-{uuid.uuid4().hex[:8]}"
    now = (await env.get_current_time()).timestamp()  # the time-skipping server's clock runs ahead
    return await env.client.start_workflow(
        RotateDbCredential.run,
        KEYRING.sign_request(input, workflow_id, now),
        id=workflow_id,
        task_queue=queue,
        result_type=RunState,
    )


async def send(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, RunState], decision: Decision, input: DecisionInput
) -> None:
    """A decision as `opsctl` sends it: a fresh attempt id, signed with the actor's key.

    Signed at the time-skipping server's time, which runs ahead of this machine's once a test skips time.
    """
    signal = "resolve" if isinstance(input, ResolveInput) else decision.value
    now = (await env.get_current_time()).timestamp()
    scope = (await handle.query(RotateDbCredential.state)).decision_scope
    await handle.signal(signal, KEYRING.sign_decision(scope, decision, input, now))


async def until_phase(handle: WorkflowHandle[Any, RunState], phase: Phase) -> RunState:
    for _ in range(200):
        state = await handle.query(RotateDbCredential.state)
        if state.phase is phase:
            return state
        await __import__("asyncio").sleep(0.05)
    raise AssertionError(f"never reached {phase}; last phase {state.phase}")


def worker(env: WorkflowEnvironment, fake: FakeRotation, queue: str, **replaced: Any) -> Worker:
    """`fake`'s activities, those named in `replaced` (`promote=...`) swapped; heartbeats reach Temporal at once."""
    activities = [a for a in fake.activities() if all(a != getattr(fake, name) for name in replaced)]
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[RotateDbCredential],
        activities=[*activities, *replaced.values()],
        max_heartbeat_throttle_interval=timedelta(milliseconds=100),
    )


async def test_an_unapproved_run_expires_at_its_deadline_without_mutating(env: WorkflowEnvironment) -> None:
    """prod waits 24h for approval; with nobody approving it ends expired, nothing applied."""
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input())
        result = await handle.result()
    assert Phase.EXPIRED == result.phase
    assert ExitCode.DENIED == result.exit_code()
    assert ["plan"] == fake.calls
    assert [] == result.changed


async def test_an_approval_is_void_when_the_plan_changes_before_apply(env: WorkflowEnvironment) -> None:
    """Re-plan check: a different fresh plan sends the run back to awaiting approval."""
    fake, queue = FakeRotation(plans=[make_plan("v1"), make_plan("v9")]), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input())
        first = await until_phase(handle, Phase.AWAITING_APPROVAL)
        await send(env, handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=first.plan_hash))
        await until_phase(handle, Phase.REPLANNING)
        second = await until_phase(handle, Phase.AWAITING_APPROVAL)
        assert first.plan_hash != second.plan_hash
        assert not any(MUTATION in fake.calls for MUTATION in MUTATIONS)
        await send(env, handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=second.plan_hash))
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    first_approval = result.decisions[0]
    assert not first_approval.accepted
    assert "approved" == first_approval.reason
    assert first_approval.voided.startswith("the re-plan before apply found a different plan")
    assert any("plan changed after approval" in warning for warning in result.warnings)


async def test_an_unknown_error_lands_in_needs_review_and_a_retry_resumes(env: WorkflowEnvironment) -> None:
    unknown = ApplicationError("connection reset mid-statement", type="unknown", non_retryable=True)
    fake, queue = FakeRotation(failures={"set_password": [unknown]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        review = await until_phase(handle, Phase.NEEDS_REVIEW)
        assert ExitCode.NEEDS_REVIEW == review.exit_code()
        assert ["set role password: connection reset mid-statement"] == review.uncertain
        resolve = ResolveInput(actor="carol", comment="checked pg logs", resolution=Decision.RETRY)
        await send(env, handle, resolve.resolution, resolve)
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    assert 2 == fake.calls.count("set_password")


async def test_a_permanent_failure_after_changes_is_compensated(env: WorkflowEnvironment) -> None:
    """A half-done rotation is undone: the failure keeps its own kind and says it was compensated."""
    denied = ApplicationError("login refused", type=FailureKind.AUTH.value, non_retryable=True)
    fake, queue = FakeRotation(failures={"test_login": [denied]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        result = await (await start(env, fake, queue, run_input("dev"))).result()
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.AUTH == result.failure.kind
    assert result.failure.message.endswith("(changes compensated)")
    assert 1 == fake.calls.count("test_login"), "a non-retryable failure is not retried"
    assert ["compensate"] == fake.calls[-1:]
    assert "promote" not in fake.calls


async def test_a_failure_whose_changes_cannot_be_undone_is_a_partial_application(env: WorkflowEnvironment) -> None:
    denied = ApplicationError("login refused", type=FailureKind.AUTH.value, non_retryable=True)
    fake, queue = FakeRotation(failures={"test_login": [denied]}), uuid.uuid4().hex
    fake.undo_works = False
    async with worker(env, fake, queue):
        result = await (await start(env, fake, queue, run_input("dev"))).result()
    assert result.failure is not None
    assert FailureKind.PARTIAL_APPLICATION == result.failure.kind
    assert ExitCode.PARTIAL_SUCCESS == result.exit_code()


async def test_a_failing_compensation_waits_for_an_operator_saying_how_to_repair(env: WorkflowEnvironment) -> None:
    """Cancel in review, then compensation itself fails: the run asks an operator; a retry undoes it."""
    fake, queue = failing_compensation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle, review = await cancelled_into_compensation_review(env, fake, queue)
        [note] = [item for item in review.uncertain if item.startswith("compensation failed: secret is gone")]
        assert DIAGNOSIS in note, "says which version the role takes and which one AWSCURRENT is, having looked"
        assert "opsctl resolve" in review.next_action
        retry = ResolveInput(actor="carol", comment="secret restored", resolution=Decision.RETRY)
        await send(env, handle, Decision.RETRY, retry)
        result = await handle.result()
    assert Phase.CANCELLED == result.phase
    assert result.failure is None, "compensated on the retry"
    assert 2 == fake.calls.count("compensate")
    assert not any(item.startswith("compensation failed") for item in result.uncertain)


async def test_an_aborted_compensation_ends_the_run_saying_what_stands(env: WorkflowEnvironment) -> None:
    fake, queue = failing_compensation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle, _ = await cancelled_into_compensation_review(env, fake, queue)
        abort = ResolveInput(actor="carol", comment="will fix by hand", resolution=Decision.ABORT)
        await send(env, handle, Decision.ABORT, abort)
        result = await handle.result()
    assert Phase.CANCELLED == result.phase
    assert result.failure is not None
    assert FailureKind.PARTIAL_APPLICATION == result.failure.kind
    assert ExitCode.PARTIAL_SUCCESS == result.exit_code()
    assert any(item.startswith("compensation failed: secret is gone") for item in result.uncertain)
    assert f"some changes stand and need repair: {DIAGNOSIS}" in result.next_action
    assert f"at the end: {DIAGNOSIS}" in result.uncertain


async def test_a_compensation_failing_for_an_unknown_reason_also_says_what_is_broken(env: WorkflowEnvironment) -> None:
    """Not only a classified failure: an unknown one (or the retry window closing) asks an operator
    with the diagnosis too."""
    lost = ApplicationError("timeout", type="unknown", non_retryable=True)
    reset = ApplicationError("connection reset", type="unknown", non_retryable=True)
    fake, queue = FakeRotation(failures={"promote": [lost], "compensate": [reset]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle, review = await cancelled_into_compensation_review(env, fake, queue)
        [note] = [item for item in review.uncertain if item.startswith("compensate: connection reset")]
        assert DIAGNOSIS in note
        abort = ResolveInput(actor="carol", comment="will fix by hand", resolution=Decision.ABORT)
        await send(env, handle, Decision.ABORT, abort)
        result = await handle.result()
    assert ExitCode.PARTIAL_SUCCESS == result.exit_code()
    assert DIAGNOSIS in result.next_action


async def test_a_rotation_whose_verify_fails_ends_naming_the_password_the_database_takes(
    env: WorkflowEnvironment,
) -> None:
    """Applied, then verify fails (AWSCURRENT refused, say) and an operator aborts: no terminal phase
    without saying in uncertain and next_action what the database takes."""
    fake = FakeRotation(checks_pass=[False])
    result = await aborted_in_review(env, fake)
    assert result.phase.terminal
    assert DIAGNOSIS in result.next_action
    assert f"at the end: {DIAGNOSIS}" in result.uncertain


async def aborted_in_review(env: WorkflowEnvironment, fake: FakeRotation) -> RunState:
    """Run until the run asks an operator, who aborts; the result."""
    queue = uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        await until_phase(handle, Phase.NEEDS_REVIEW)
        abort = ResolveInput(actor="carol", comment="looking into it", resolution=Decision.ABORT)
        await send(env, handle, Decision.ABORT, abort)
        return await handle.result()


def failing_compensation() -> FakeRotation:
    """A rotation whose last step fails unknown (to review), and whose compensation then fails once."""
    lost = ApplicationError("timeout", type="unknown", non_retryable=True)
    broken = ApplicationError("secret is gone", type=FailureKind.VALIDATION.value, non_retryable=True)
    return FakeRotation(failures={"promote": [lost], "compensate": [broken]})


async def cancelled_into_compensation_review(
    env: WorkflowEnvironment, fake: FakeRotation, queue: str
) -> tuple[WorkflowHandle[Any, RunState], RunState]:
    handle = await start(env, fake, queue, run_input("dev"))
    await until_phase(handle, Phase.NEEDS_REVIEW)
    await send(env, handle, Decision.CANCEL, DecisionInput(actor="carol", comment="roll back"))
    return handle, await until_compensation_review(handle)


async def until_compensation_review(handle: WorkflowHandle[Any, RunState]) -> RunState:
    for _ in range(200):
        state = await handle.query(RotateDbCredential.state)
        notes = ("compensation failed", "compensate: ")
        if state.phase is Phase.NEEDS_REVIEW and any(item.startswith(notes) for item in state.uncertain):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the compensation never asked for review")


async def test_a_temporal_cancel_during_a_heartbeating_step_lets_it_finish_then_compensates(
    env: WorkflowEnvironment,
) -> None:
    """Like `opsctl cancel`: a step runs to its end (only batch steps stop between batches), then the run undoes it."""
    started, release = asyncio.Event(), asyncio.Event()

    @activity.defn(name="rotate_credential.promote")
    async def slow_promote(input: RotationStepInput) -> StepResult:
        started.set()
        while not release.is_set():  # heartbeats: they would deliver an activity cancel
            activity.heartbeat()
            await asyncio.sleep(0.05)
        return await fake.promote(input)

    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue, promote=slow_promote):
        handle = await start(env, fake, queue, run_input("dev"))
        await asyncio.wait_for(started.wait(), timeout=10)
        await handle.cancel()
        kept = await temporal_cancel_kept(handle)
        release.set()
        result = await handle.result()
    assert kept.accepted
    assert Phase.CANCELLED == result.phase
    assert ["promote", "compensate"] == fake.calls[-2:], "promote finished, then was undone"
    assert KEPT in result.warnings
    assert not any("interrupted" in item for item in result.uncertain)


async def test_a_transient_failure_is_retried_with_backoff(env: WorkflowEnvironment) -> None:
    busy = ApplicationError("too many connections", type=FailureKind.DEPENDENCY_UNAVAILABLE.value)
    fake, queue = FakeRotation(failures={"promote": [busy, busy]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        result = await (await start(env, fake, queue, run_input("dev"))).result()
    assert Phase.SUCCEEDED == result.phase
    assert 3 == fake.calls.count("promote")


async def test_the_plan_names_the_steps_apply_then_counts(env: WorkflowEnvironment) -> None:
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input())
        waiting = await until_phase(handle, Phase.AWAITING_APPROVAL)
        await send(env, handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=waiting.plan_hash))
        result = await handle.result()
    assert list(STEPS) == waiting.planned_steps
    assert (4, 0) == (waiting.progress.total, waiting.progress.done)
    assert list(STEPS) == [step.name for step in result.steps]
    assert (4, 4) == (result.progress.total, result.progress.done)


async def test_cancel_while_awaiting_approval_ends_cancelled_with_nothing_to_undo(env: WorkflowEnvironment) -> None:
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input())
        await until_phase(handle, Phase.AWAITING_APPROVAL)
        await send(env, handle, Decision.CANCEL, DecisionInput(actor="alice", comment="wrong ticket"))
        result = await handle.result()
    assert Phase.CANCELLED == result.phase
    assert ["plan"] == fake.calls


async def test_cancel_in_review_compensates_applied_steps(env: WorkflowEnvironment) -> None:
    unknown = ApplicationError("timeout", type="unknown", non_retryable=True)
    fake, queue = FakeRotation(failures={"promote": [unknown]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        await until_phase(handle, Phase.NEEDS_REVIEW)
        await send(env, handle, Decision.CANCEL, DecisionInput(actor="carol", comment="roll back"))
        result = await handle.result()
    assert Phase.CANCELLED == result.phase
    assert "compensate" == fake.calls[-1]


async def test_failed_postconditions_wait_for_review_and_mark_done_ends_the_run(env: WorkflowEnvironment) -> None:
    fake, queue = FakeRotation(checks_pass=[False]), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        review = await until_phase(handle, Phase.NEEDS_REVIEW)
        assert ["secret current version: probe"] == review.uncertain
        done = ResolveInput(actor="carol", comment="verified by hand", resolution=Decision.MARK_DONE)
        await send(env, handle, done.resolution, done)
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    assert ["marked done by carol: verified by hand"] == result.warnings


async def test_a_dry_run_plans_and_stops(env: WorkflowEnvironment) -> None:
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        result = await (await start(env, fake, queue, run_input("prod", Mode.DRY_RUN))).result()
    assert Phase.PLANNED == result.phase
    assert ExitCode.CHANGES_PENDING == result.exit_code()
    assert ["plan"] == fake.calls


async def test_a_temporal_cancel_while_compensation_waits_in_review_is_refused_and_the_review_stays_open(
    env: WorkflowEnvironment,
) -> None:
    """Failure → compensation → compensation needs review → `temporal workflow cancel`: refused like
    `opsctl cancel` (already undoing); the operator's answer still ends the run, with a result."""
    denied = ApplicationError("login refused", type=FailureKind.AUTH.value, non_retryable=True)
    lost = ApplicationError("connection reset", type="unknown", non_retryable=True)
    fake, queue = FakeRotation(failures={"test_login": [denied], "compensate": [lost]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        await until_phase(handle, Phase.NEEDS_REVIEW)
        await handle.cancel()
        refused = await temporal_cancel_kept(handle)
        assert Phase.NEEDS_REVIEW == (await handle.query(RotateDbCredential.state)).phase
        abort = ResolveInput(actor="carol", comment="repairing by hand", resolution=Decision.ABORT)
        await send(env, handle, Decision.ABORT, abort)
        result = await handle.result()
    assert (False, "already undoing the applied changes") == (refused.accepted, refused.reason)
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.PARTIAL_APPLICATION == result.failure.kind
    assert "a cancel through Temporal was refused: already undoing the applied changes" in result.warnings
    assert DIAGNOSIS in result.next_action, "and what the database takes, looked at"


async def test_a_verify_probe_that_fails_goes_to_review_and_never_undoes_the_apply(env: WorkflowEnvironment) -> None:
    denied = ApplicationError("access denied", type=FailureKind.AUTH.value, non_retryable=True)
    fake, queue = FakeRotation(failures={"verify": [denied]}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        review = await until_phase(handle, Phase.NEEDS_REVIEW)
        await send(
            env,
            handle,
            Decision.RETRY,
            ResolveInput(actor="carol", comment="fixed the IAM role", resolution=Decision.RETRY),
        )
        result = await handle.result()
    assert ["verify: auth: access denied"] == review.uncertain
    assert Phase.SUCCEEDED == result.phase
    assert "compensate" not in fake.calls


async def test_a_dependency_down_past_the_retry_window_lands_in_review_not_failure(env: WorkflowEnvironment) -> None:
    """Retry by time: a PostgreSQL that stays down is ridden out for the window, then a person decides."""
    busy = ApplicationError("the database system is starting up", type=FailureKind.DEPENDENCY_UNAVAILABLE.value)
    fake, queue = FakeRotation(failures={"set_password": [busy] * 200}), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("dev"))
        await env.sleep(timedelta(minutes=12))  # the time-skipping server fast-forwards the backoffs
        review = await until_phase(handle, Phase.NEEDS_REVIEW)
        await handle.terminate("test over")
    attempts = fake.calls.count("set_password")
    assert attempts >= 15, "1 s doubling to 30 s between attempts, for ten minutes"
    expected = "set role password: still failing when its retry window closed: the database system is starting up"
    assert [expected] == review.uncertain


async def test_a_request_too_big_for_its_run_is_refused_by_the_worker_before_any_step(
    env: WorkflowEnvironment,
) -> None:
    """The CLI checks the size before it starts a run; a raw `temporal workflow start` is checked by the
    workflow itself, before any step."""
    from contracts.request import MAX_DOCUMENT_BYTES

    fake, queue = FakeRotation(), uuid.uuid4().hex
    big = run_input("dev")
    labels = {f"l{n}": "x" * 1000 for n in range(MAX_DOCUMENT_BYTES // 1000 + 1)}
    big = big.model_copy(
        update={
            "request": big.request.model_copy(
                update={"metadata": big.request.metadata.model_copy(update={"labels": labels})}
            )
        }
    )
    async with worker(env, fake, queue):
        result = await (await start(env, fake, queue, big)).result()
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.VALIDATION == result.failure.kind
    assert "at most 524,288 fit in a run's Temporal payloads" in result.failure.message
    assert [] == fake.calls, "no step ran"


async def test_a_rotation_that_ends_with_a_working_awscurrent_is_not_sent_to_repair_it(
    env: WorkflowEnvironment,
) -> None:
    """Verify failed, an operator aborted, and the look finds AWSCURRENT working: the ending says to review
    what stands, not to repair a credential that works."""
    fake = FakeRotation(checks_pass=[False])
    fake.diagnosis = WORKS
    result = await aborted_in_review(env, fake)
    assert "diagnose" in fake.calls
    assert "need repair" not in result.next_action
    assert not any(item.startswith("at the end:") for item in result.uncertain)


KEPT = "a cancel came through Temporal: stopping at the next safe point"


async def temporal_cancel_kept(handle: WorkflowHandle[Any, RunState]) -> DecisionRecord:
    """Until the run has kept Temporal's cancel request as a decision: that decision."""
    for _ in range(200):
        state = await handle.query(RotateDbCredential.state)
        kept = [d for d in state.decisions if d.via == "temporal"]
        if kept:
            return kept[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the run never kept the Temporal cancel")


async def cancelled_while_it_runs(
    env: WorkflowEnvironment, name: str, input: RunInput
) -> tuple[RunState, FakeRotation]:
    """Cancel the run through Temporal while activity `name` runs; it finishes once the run kept the cancel."""
    fake, queue = FakeRotation(), uuid.uuid4().hex
    started, release = asyncio.Event(), asyncio.Event()
    original = getattr(fake, name)

    @activity.defn(name=f"rotate_credential.{name}")
    async def held(input: Any) -> Any:
        started.set()
        await release.wait()
        return await original(input)

    held.__annotations__["input"] = original.__annotations__["input"]
    held.__annotations__["return"] = original.__annotations__["return"]
    async with worker(env, fake, queue, **{name: held}):
        handle = await start(env, fake, queue, input)
        await asyncio.wait_for(started.wait(), timeout=10)
        await handle.cancel()
        await temporal_cancel_kept(handle)
        release.set()
        return await asyncio.wait_for(handle.result(), timeout=20), fake


async def test_a_temporal_cancel_while_the_plan_runs_ends_the_run_once_the_plan_is_back(
    env: WorkflowEnvironment,
) -> None:
    """It must end cancelled, not wait for approvals nobody will give."""
    result, fake = await cancelled_while_it_runs(env, "plan", run_input())
    assert Phase.CANCELLED == result.phase
    assert ["plan"] == fake.calls
    assert KEPT in result.warnings
    assert result.ending_decision is not None
    assert ("temporal", "temporal", True) == (
        result.ending_decision.actor,
        result.ending_decision.via,
        result.ending_decision.accepted,
    )


async def test_a_temporal_cancel_during_a_step_stops_before_the_next_and_compensates(
    env: WorkflowEnvironment,
) -> None:
    result, fake = await cancelled_while_it_runs(env, "set_password", run_input("dev"))
    assert Phase.CANCELLED == result.phase
    assert "promote" not in fake.calls
    assert "compensate" == fake.calls[-1]
    assert KEPT in result.warnings


async def test_a_temporal_cancel_during_verify_is_refused_like_opsctl_cancel(env: WorkflowEnvironment) -> None:
    """Apply is done: a cancel now would undo a finished rotation."""
    result, fake = await cancelled_while_it_runs(env, "verify", run_input("dev"))
    assert Phase.SUCCEEDED == result.phase
    assert "compensate" not in fake.calls
    assert "a cancel through Temporal was refused: cannot cancel in phase verifying" in result.warnings
    assert result.ending_decision is None


async def test_a_temporal_cancel_while_awaiting_approval_ends_the_run_and_names_temporal(
    env: WorkflowEnvironment,
) -> None:
    fake, queue = FakeRotation(), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, fake, queue, run_input("prod"))
        await until_phase(handle, Phase.AWAITING_APPROVAL)
        await handle.cancel(reason="wrong secret")
        result = await asyncio.wait_for(handle.result(), timeout=20)
    assert Phase.CANCELLED == result.phase
    assert result.ending_decision is not None
    assert ("temporal", "wrong secret") == (result.ending_decision.actor, result.ending_decision.comment)


async def test_a_temporal_cancel_during_the_replan_stops_before_apply(env: WorkflowEnvironment) -> None:
    fake, queue = FakeRotation(), uuid.uuid4().hex
    started, release = asyncio.Event(), asyncio.Event()

    @activity.defn(name="rotate_credential.plan")
    async def plan(input: PlanRotationInput) -> Plan:
        if fake.calls.count("plan") >= 1:  # the re-plan before apply
            started.set()
            await release.wait()
        return await FakeRotation.plan(fake, input)

    async with worker(env, fake, queue, plan=plan):
        handle = await start(env, fake, queue, run_input("prod"))
        state = await until_phase(handle, Phase.AWAITING_APPROVAL)
        await send(env, handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash))
        await asyncio.wait_for(started.wait(), timeout=10)
        await handle.cancel()
        await temporal_cancel_kept(handle)
        release.set()
        result = await asyncio.wait_for(handle.result(), timeout=20)
    assert Phase.CANCELLED == result.phase
    assert Phase.APPLYING.value not in result.phase_times
    assert ["plan", "plan"] == fake.calls


def processing_activations_as_one_batch(worker: Worker) -> Worker:
    """With the SDK's flag (off today, a default to come) a wait that ends where the workflow's cancel
    arrived raises CancelledError in every task that awaits it (`workflows.waits`)."""
    from temporalio.worker._workflow_instance import _WorkflowLogicFlag

    assert worker._workflow_worker is not None
    flag = _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH
    worker._workflow_worker._set_default_workflow_logic_flag(flag, enabled=True)
    return worker


@pytest.mark.parametrize("one_batch", [False, True])
async def test_a_refused_temporal_cancel_in_compensation_review_leaves_the_retry_to_the_operator(
    env: WorkflowEnvironment, one_batch: bool
) -> None:
    denied = ApplicationError("login refused", type=FailureKind.AUTH.value, non_retryable=True)
    lost = ApplicationError("connection reset", type="unknown", non_retryable=True)
    fake, queue = FakeRotation(failures={"test_login": [denied], "compensate": [lost]}), uuid.uuid4().hex
    running = worker(env, fake, queue)
    async with processing_activations_as_one_batch(running) if one_batch else running:
        handle = await start(env, fake, queue, run_input("dev"))
        await until_phase(handle, Phase.NEEDS_REVIEW)
        await handle.cancel()
        await temporal_cancel_kept(handle)
        retry = ResolveInput(actor="carol", comment="fixed the network", resolution=Decision.RETRY)
        await send(env, handle, Decision.RETRY, retry)
        result = await asyncio.wait_for(handle.result(), timeout=20)
    assert 2 == fake.calls.count("compensate"), fake.calls
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "changes compensated" in result.failure.message


@pytest.mark.parametrize("one_batch", [False, True])
async def test_a_temporal_cancel_while_awaiting_approval_is_kept_once(
    env: WorkflowEnvironment, one_batch: bool
) -> None:
    fake, queue = FakeRotation(), uuid.uuid4().hex
    running = worker(env, fake, queue)
    async with processing_activations_as_one_batch(running) if one_batch else running:
        handle = await start(env, fake, queue, run_input("prod"))
        await until_phase(handle, Phase.AWAITING_APPROVAL)
        await handle.cancel()
        result = await asyncio.wait_for(handle.result(), timeout=20)
    assert Phase.CANCELLED == result.phase
    assert [KEPT] == [w for w in result.warnings if "Temporal" in w]
