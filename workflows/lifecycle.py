"""The lifecycle every operation shares: validate → plan → approve → re-plan → apply → verify.

An operation subclasses `Lifecycle` and writes three things as plain runbook code:
`plan` (read-only activities), `apply` (a sequence of `self.step(...)` calls) and `verify`
(postcondition probes). Phases, approval judgement, deadlines, cancellation at safe
points, failure classification and `needs_review` live here once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as StepTimeout
from temporalio.workflow import ActivityCancellationType

from workflows.run_record import RunRecord

with workflow.unsafe.imports_passed_through():
    from contracts.failures import NON_RETRYABLE_KINDS, FailureKind
    from contracts.phases import Phase
    from contracts.plan import Plan
    from contracts.request import describe_validation_error
    from contracts.run import (
        Check,
        Decision,
        DecisionRecord,
        Failure,
        Mode,
        Progress,
        Resource,
        RunInput,
        RunState,
        StepRecord,
    )

SpecT = TypeVar("SpecT", bound=BaseModel)
ResultT = TypeVar("ResultT")

# Transient errors retry with bounded backoff; classified permanent ones never retry.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=list(NON_RETRYABLE_KINDS),
)
STEP_TIMEOUT = timedelta(seconds=60)

_KINDS = {kind.value for kind in FailureKind}


class StepFailed(Exception):
    """A step gave up; `failure` says why. Caught by the lifecycle, never leaves the workflow."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class CancelRequested(Exception):
    """A cancel signal was accepted: stop at this safe point and compensate."""


class RunEnded(Exception):
    """The run stops early in `phase` (cancelled, or resolved by an operator)."""

    def __init__(self, phase: Phase) -> None:
        super().__init__(phase.value)
        self.phase = phase


class Lifecycle(RunRecord, Generic[SpecT]):
    spec_model: type[SpecT]

    # ---- what an operation writes -------------------------------------------------

    async def plan(self, spec: SpecT) -> Plan:
        raise NotImplementedError

    async def apply(self, spec: SpecT, plan: Plan) -> None:
        raise NotImplementedError

    async def verify(self, spec: SpecT) -> list[Check]:
        raise NotImplementedError

    async def compensate(self, spec: SpecT) -> bool:
        """Undo what apply did so far (after a cancel, a failure or an abort).

        Returns True when nothing applied remains; False when some changes stand (say
        which with `warn`). Default: nothing can be undone.
        """
        return False

    # ---- the procedure ---------------------------------------------------------------

    async def run_lifecycle(self, input: RunInput) -> RunState:
        self._input = input
        self._state = input.resume or self._initial_state(input)
        self._steps_done = self._state.progress.done
        self._cancel: DecisionRecord | None = next(
            (d for d in self._state.decisions if d.decision is Decision.CANCEL and d.accepted), None
        )
        self._resolution: DecisionRecord | None = None
        self._compensated: bool | None = None  # set once compensation has run
        self._apply_done = False  # after apply, failures are about observing, not changing
        self._upsert_search_attributes()
        try:
            return await (self._resume(input) if input.resume else self._run(input))
        except StepFailed as failed:
            return await self._failed(failed.failure)
        except RunEnded as ended:
            return self._finish(ended.phase)
        except CancelRequested:
            return await self._cancelled()
        except asyncio.CancelledError:
            # A Temporal cancel request: undo what can be undone, then report cancelled.
            self._state.warnings.append("cancelled through Temporal")
            return await self._cancelled()

    async def _run(self, input: RunInput) -> RunState:
        spec = self._validate(input)
        self._enter(Phase.PLANNING)
        plan = await self._plan(spec)
        if input.mode is Mode.DRY_RUN:
            return self._finish(Phase.PLANNED)
        if not plan.has_changes:
            return self._finish(Phase.NO_CHANGES)
        if input.policy.required_approvals > 0:
            outcome = await self._approval_gate(spec)
            if outcome is not None:
                return outcome
            # The approved hash, observed afresh: apply acts on the latest observation.
            assert self._state.plan is not None
            plan = self._state.plan
        self._enter(Phase.APPLYING)
        await self.apply(spec, plan)
        self._after_apply()
        self._enter(Phase.VERIFYING)
        return await self._verify(spec)

    def _after_apply(self) -> None:
        """The end of apply is a safe point too: a cancel that came during the last step is honoured."""
        self._apply_done = True
        if self._cancel is not None:
            raise CancelRequested

    async def _resume(self, input: RunInput) -> RunState:
        """A continued run: the plan was approved in an earlier run of this chain; go on applying."""
        spec = self._validate(input)
        assert self._state.plan is not None, "a run is only continued from apply"
        await self.apply(spec, self._state.plan)
        self._after_apply()
        self._enter(Phase.VERIFYING)
        return await self._verify(spec)

    def _validate(self, input: RunInput) -> SpecT:
        try:
            return self.spec_model.model_validate(input.request.spec)
        except ValidationError as exc:
            error = describe_validation_error(exc, prefix="spec")
            raise StepFailed(Failure(kind=FailureKind.VALIDATION, message=str(error))) from None

    async def _plan(self, spec: SpecT) -> Plan:
        plan = await self.plan(spec)
        self._state.plan = plan
        # Runs started before noop entries left the hash keep the hash their approvals used.
        self._state.plan_hash = plan.hash(include_noops=not workflow.patched("plan-hash-excludes-noops"))
        self._upsert_search_attributes()
        limit = self._input.policy.max_deletions
        if plan.deletions > limit:
            message = f"the plan deletes {plan.deletions} resources; {self._state.environment} allows {limit} per run"
            raise StepFailed(Failure(kind=FailureKind.POLICY_DENIED, message=message, step="plan"))
        return plan

    async def _approval_gate(self, spec: SpecT) -> RunState | None:
        """Wait for approvals of the exact plan; re-plan before apply. None means: go apply."""
        while True:
            self._enter(Phase.AWAITING_APPROVAL)
            timeout = timedelta(seconds=self._approval_timeout_seconds())
            self._state.approval_deadline = workflow.now() + timeout
            self._state.next_action = (
                f"a second person approves with `opsctl approve {self._state.workflow_id} "
                f"--plan-hash {self._state.plan_hash}`, or rejects with `opsctl reject`"
            )
            try:
                await workflow.wait_condition(self._gate_decided, timeout=timeout)
            except TimeoutError:
                self._state.next_action = "nothing was changed; submit the request again with a new idempotencyKey"
                return self._finish(Phase.EXPIRED)
            if self._cancel is not None:
                return await self._cancelled()
            if self._rejected():
                self._state.next_action = "nothing was changed; fix the request and submit it with a new idempotencyKey"
                return self._finish(Phase.REJECTED)
            approved_hash = self._state.plan_hash
            self._enter(Phase.REPLANNING)
            fresh = await self._plan(spec)
            if self._state.plan_hash == approved_hash:
                return None
            self._state.warnings.append(
                f"the plan changed after approval ({approved_hash[:12]}… → {self._state.plan_hash[:12]}…); "
                "its approvals are void and it needs approving again"
            )
            for record in self._state.decisions:
                if record.decision is Decision.APPROVE and record.accepted:
                    record.accepted = False
                    record.reason = "void: the plan changed before apply"
            if not fresh.has_changes:
                return self._finish(Phase.NO_CHANGES)

    async def _verify(self, spec: SpecT) -> RunState:
        while True:
            try:
                checks = await self.verify(spec)
            except StepFailed as failed:
                # Apply is done; a probe that cannot observe leaves the outcome uncertain, not wrong.
                self._state.uncertain = [f"verify: {failed.failure.kind.value}: {failed.failure.message}"]
                await self._needs_review("verify", "the outcome could not be observed")
                continue
            self._state.checks = checks
            failing = [check for check in checks if not check.passed]
            if not failing:
                self._state.uncertain = []
                self._state.next_action = "nothing to do"
                return self._finish(Phase.SUCCEEDED)
            self._state.uncertain = [f"{check.name}: {check.detail}" for check in failing]
            await self._needs_review("verify", "postconditions did not hold after apply")

    # ---- steps -----------------------------------------------------------------------

    async def step(
        self,
        name: str,
        activity: Callable[..., Awaitable[ResultT]],
        arg: Any,
        *,
        timeout: timedelta = STEP_TIMEOUT,
        heartbeat_timeout: timedelta | None = None,
        changes: Resource | None = None,
    ) -> ResultT:
        """Run one bounded apply step. A cancel request is honoured before it starts.

        `changes`: recorded as the step starts, for steps that commit as they go (a failure
        later in the step is then a partial application, never "nothing changed").

        Long steps heartbeat (with their checkpoint) and pass `heartbeat_timeout`, so a
        killed worker is noticed within it and the retry resumes from the checkpoint.
        """
        if self._cancel is not None:
            raise CancelRequested
        total = self._state.progress.total
        self._state.progress = Progress(step=name, done=self._steps_done, total=total)
        record = StepRecord(name=name, started=workflow.now())
        self._state.steps.append(record)
        if changes is not None:
            self.record_change(changes)
        result = await self.probe(activity, arg, step=name, timeout=timeout, heartbeat_timeout=heartbeat_timeout)
        record.finished = workflow.now()
        self._steps_done += 1
        self._state.progress = Progress(step=name, done=self._steps_done, total=total)
        return result

    def expect_steps(self, total: int) -> None:
        """Tell progress reporting how many apply steps this run has."""
        self._state.progress = Progress(total=total, done=self._steps_done)

    @property
    def carried(self) -> dict[str, Any]:
        """What the previous run of this chain handed over with `continue_as_new_if_due`."""
        return self._input.carry

    async def continue_as_new_if_due(self, carry: dict[str, Any]) -> None:
        """Between apply steps: start a fresh history when this one grows large.

        The next run resumes in apply with the same state (plan, approvals, changes,
        progress) and `carry`, the operation's own progress. Signals are never lost:
        every handler has finished before the hand-over.
        """
        info = workflow.info()
        if not (
            info.is_continue_as_new_suggested() or info.get_current_history_length() >= self._input.history_event_limit
        ):
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state.continued += 1
        workflow.continue_as_new(self._input.model_copy(update={"resume": self._state, "carry": carry}))

    async def probe(
        self,
        activity: Callable[..., Awaitable[ResultT]],
        arg: Any,
        *,
        step: str = "",
        timeout: timedelta = STEP_TIMEOUT,
        heartbeat_timeout: timedelta | None = None,
    ) -> ResultT:
        """Call one activity. Classified failures end the run; unknown ones go to review.

        A heartbeating step is also a safe point while it runs: a cancel request cancels
        it, and the lifecycle waits until the activity has stopped before compensating.
        """
        step = step or self._state.phase.value
        while True:
            try:
                running = workflow.start_activity_method(
                    activity,
                    arg,
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=heartbeat_timeout,
                    retry_policy=STEP_RETRY,
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
                if heartbeat_timeout is not None:

                    def stopped_or_cancelled(running: asyncio.Future[Any] = running) -> bool:
                        return running.done() or self._cancel is not None

                    await workflow.wait_condition(stopped_or_cancelled)
                    if not running.done():
                        running.cancel()
                        with contextlib.suppress(ActivityError, asyncio.CancelledError):
                            await running
                        self._interrupted(step)
                        raise CancelRequested
                return await running
            except ActivityError as err:
                if isinstance(err.cause, CancelledError):  # the run itself was cancelled in Temporal
                    self.warn("cancelled through Temporal")
                    if self._state.phase is Phase.APPLYING:
                        self._interrupted(step)
                    raise CancelRequested from None
                failure = self._classify(step, err)
                if failure.kind is not FailureKind.UNKNOWN:
                    raise StepFailed(failure) from None
                self._state.uncertain.append(f"{step}: {failure.message}")
                await self._needs_review(step, failure.message)
                self._state.uncertain.pop()

    def _interrupted(self, step: str) -> None:
        """A step stopped half-way may have changed things: count it, so the report says partial."""
        self.record_change(Resource(resource_type="step", resource_id=step, detail="interrupted by a cancel"))
        self._state.uncertain.append(f"{step}: interrupted by a cancel, partly applied")

    @staticmethod
    def _classify(step: str, err: ActivityError) -> Failure:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in _KINDS:
            return Failure(kind=FailureKind(cause.type), message=cause.message, step=step)
        if isinstance(cause, StepTimeout):
            return Failure(kind=FailureKind.UNKNOWN, message=f"timed out: {cause.message}", step=step)
        return Failure(kind=FailureKind.UNKNOWN, message=str(cause or err), step=step)

    async def _needs_review(self, step: str, reason: str) -> None:
        """Wait for an operator: retry returns, mark_done and abort end the run."""
        resume_in = self._state.phase
        self._enter(Phase.NEEDS_REVIEW)
        self._state.next_action = (
            f"{step}: {reason}. Inspect the evidence, then `opsctl resolve {self._state.workflow_id} "
            "--retry | --mark-done | --abort --comment ...`"
        )
        self._resolution = None
        compensating = resume_in is Phase.COMPENSATING  # a cancel cannot interrupt undoing

        def answered() -> bool:
            return self._resolution is not None or (self._cancel is not None and not compensating)

        await workflow.wait_condition(answered)
        resolution = self._resolution
        if resolution is None:
            raise CancelRequested
        if resolution.decision is Decision.ABORT:
            message = f"aborted in review by {resolution.actor}: {reason}"
            raise StepFailed(Failure(kind=FailureKind.UNKNOWN, message=message, step=step))
        if resolution.decision is Decision.MARK_DONE:
            self._state.warnings.append(f"marked done by {resolution.actor}: {resolution.comment}")
            self._state.uncertain = []
            self._state.next_action = "nothing to do: an operator completed the run by hand"
            raise RunEnded(Phase.SUCCEEDED)
        self._enter(resume_in)

    def _finish(self, phase: Phase) -> RunState:
        if self._state.phase is not phase:
            self._enter(phase)
        # The SDK suppresses metrics during replay, so each run counts once.
        workflow.metric_meter().create_counter("opsctl_runs_finished", "runs that reached a terminal phase").add(
            1, {"kind": self._state.kind, "environment": self._state.environment, "phase": phase.value}
        )
        if not self._state.next_action and phase is Phase.PLANNED:
            self._state.next_action = (
                "apply it with `opsctl apply -f DOC`"
                if self._state.plan and self._state.plan.has_changes
                else "nothing to do: the target is already as requested"
            )
        return self._state

    async def _failed(self, failure: Failure) -> RunState:
        if self._state.changed:
            note = f"{failure.step}: {failure.message}"
            if note not in self._state.uncertain:
                self._state.uncertain.append(note)
            if not self._apply_done and await self._undo():
                self._state.next_action = "the applied changes were compensated; fix the cause and submit again"
                failure = failure.model_copy(update={"message": f"{failure.message} (changes compensated)"})
            else:
                failure = Failure(
                    kind=FailureKind.PARTIAL_APPLICATION,
                    message=f"{failure.kind.value} after {len(self._state.changed)} change(s): {failure.message}",
                    step=failure.step,
                )
                self._state.next_action = "some changes stand: review them (warnings, uncertain), then resubmit"
        else:
            self._state.next_action = _NEXT_ACTION.get(failure.kind, "review the failure message")
        self._state.failure = failure
        self._state.failed.append(Resource(resource_type="step", resource_id=failure.step or "validate"))
        return self._finish(Phase.FAILED)

    async def _cancelled(self) -> RunState:
        if not self._state.changed:
            self._state.next_action = "cancelled before any change: nothing to undo"
            return self._finish(Phase.CANCELLED)
        if await self._undo():
            self._state.next_action = "cancelled: the applied changes were compensated"
            return self._finish(Phase.CANCELLED)
        # Cancelled it is, but not cleanly: the failure makes the exit code say "partial" (5).
        self._state.failure = Failure(
            kind=FailureKind.PARTIAL_APPLICATION, message="cancelled; some applied changes stand", step="cancel"
        )
        self._state.next_action = "cancelled; some changes stand: review them (warnings, uncertain)"
        return self._finish(Phase.CANCELLED)

    async def _undo(self) -> bool:
        """Run the operation's compensation once. A failure in it is reported, never raised."""
        if self._compensated is not None:
            return self._compensated
        self._undoing = True
        self._enter(Phase.COMPENSATING)
        try:
            self._compensated = await self.compensate(self.spec_model.model_validate(self._input.request.spec))
        except StepFailed as failed:
            self._state.uncertain.append(f"compensation failed: {failed.failure.message}")
            self._compensated = False
        except (CancelRequested, asyncio.CancelledError):  # a Temporal cancel while undoing
            self._state.uncertain.append("compensation interrupted by a cancel: it may be incomplete")
            self._compensated = False
        except RunEnded:  # an operator marked the compensation done by hand
            self._compensated = True
        return self._compensated


_NEXT_ACTION = {
    FailureKind.VALIDATION: "nothing was changed; fix the request (see the message) and submit it again",
    FailureKind.POLICY_DENIED: "nothing was changed; the environment's policy does not allow this request",
    FailureKind.AUTH: "nothing was changed; check the worker's credentials for this target",
    FailureKind.DEPENDENCY_UNAVAILABLE: "nothing was changed; retry when the dependency is reachable",
    FailureKind.CONFLICT: "nothing was changed; another operation holds the target, retry when it is done",
    FailureKind.UNSAFE: "nothing was changed; the request would be unsafe as written",
}
