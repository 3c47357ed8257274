"""The lifecycle every operation shares: validate → plan → approve → re-plan → apply → verify.

An operation subclasses `Lifecycle` and writes four things as plain runbook code: `plan`
(read-only activities), `apply` (a sequence of `self.step(...)` calls filling in its
`applied_model`), `verify` (postcondition probes) and `compensate`; `apply`'s result is what
`verify` and `compensate` receive. The rules (policy, identities) come from the worker at the
start of the run; `_run` is the procedure in order, and `finish` is the one place it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.workflow import ActivityCancellationType

from workflows import admission, gate, patches, run_metrics, scheduled, waits
from workflows.decisions import DecisionHandlers
from workflows.ending import Ending, Stop, classify, default_next, stop
from workflows.run_record import RunRecord
from workflows.visibility import RunVisibility

with workflow.unsafe.imports_passed_through():
    from contracts import kinds, markdown
    from contracts.failures import NON_RETRYABLE_KINDS, FailureKind
    from contracts.phases import Phase
    from contracts.plan import Plan
    from contracts.policy import RETRY_WINDOW, Policy
    from contracts.request import DocumentError, Request
    from contracts.run import (
        Check,
        Continuation,
        Decision,
        Diagnosis,
        Failure,
        Mode,
        Progress,
        Resource,
        RunInput,
        RunSettings,
        RunState,
        StepRecord,
    )
    from contracts.words import plural

SpecT = TypeVar("SpecT", bound=BaseModel)
AppliedT = TypeVar("AppliedT", bound=BaseModel)
ResultT = TypeVar("ResultT")

# Transient errors retry with capped backoff until the step's retry window closes (by time, not
# by count: a dependency that is down for minutes is ridden out); classified permanent ones never retry.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
    non_retryable_error_types=list(NON_RETRYABLE_KINDS),
)
STEP_TIMEOUT = timedelta(seconds=60)
# Every step activity heartbeats every 2 s (activities.heartbeats): a killed worker's step is
# retried within this, not after its whole start-to-close timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


PLANNED_STEPS_KEPT = 20  # step names the state keeps (the count is always whole)

# What the Web UI's timeline says for the steps every operation has (apply steps name themselves).
STEP_SUMMARIES = {
    "planning": "compute the plan (read-only)",
    "replanning": "re-plan before apply (read-only)",
    "verify": "verify the outcome",
    "compensate": "undo the applied changes",
}


class NothingApplied(BaseModel):
    """For operations whose apply hands nothing on to verify and compensate."""


class Lifecycle(DecisionHandlers, Generic[SpecT, AppliedT]):
    spec_model: type[SpecT]
    applied_model: type[AppliedT]
    _record: RunRecord | None = None
    _settings: RunSettings | None = None  # the worker's answer, once the run has it
    _visibility: RunVisibility | None = None
    _keeps_temporal_cancels = False  # decided in the run's first activation (`patches`)
    _temporal_cancel_kept = False  # the run has acted on Temporal's cancel request

    # ---- what an operation writes -------------------------------------------------

    async def plan(self, spec: SpecT) -> Plan:
        raise NotImplementedError

    def apply_steps(self, spec: SpecT, plan: Plan) -> list[str]:
        """The steps `apply` takes for this plan, named as it names them: shown with the plan, counted in progress."""
        raise NotImplementedError

    async def apply(self, spec: SpecT, plan: Plan, applied: AppliedT) -> AppliedT:
        """Apply the plan step by step, filling in `applied` (it is what a continuation resumes from)."""
        raise NotImplementedError

    async def verify(self, spec: SpecT, applied: AppliedT) -> list[Check]:
        raise NotImplementedError

    def repair(self, spec: SpecT, applied: AppliedT) -> str:
        """If compensation cannot finish: what is broken, and how a person repairs it by hand."""
        return ""

    async def diagnose(self, spec: SpecT, applied: AppliedT) -> Diagnosis:
        """What is broken now and how to repair it, looked at where the operation can look
        (a rotation tries each secret version's password). Default: `repair`, from the record."""
        return Diagnosis(statement=self.repair(spec, applied))

    async def compensate(self, spec: SpecT, applied: AppliedT) -> bool:
        """Undo what apply did so far (after a cancel, a failure or an abort).

        Returns True when nothing applied remains; False when some changes stand (say
        which with `warn`). Default: nothing can be undone.
        """
        return False

    # ---- the query -----------------------------------------------------------------------

    @workflow.query(description="the run's state: phase, plan, decisions, progress, outcome")
    def state(self) -> RunState:
        return self.record.state

    async def _ready(self) -> RunRecord:
        """Decisions that arrive while the run fetches its policy are judged once it has one."""
        await waits.condition(lambda: self._settings is not None)
        return self.record

    @property
    def record(self) -> RunRecord:
        assert self._record is not None, "the record exists from the run's first moment"
        return self._record

    @property
    def settings(self) -> RunSettings:
        assert self._settings is not None, "the settings are resolved before the procedure starts"
        return self._settings

    # ---- helpers an operation uses ---------------------------------------------------

    def record_change(self, resource: Resource) -> None:
        self.record.record_change(resource)

    def record_skip(self, resource: Resource) -> None:
        self.record.record_skip(resource)

    def warn(self, message: str) -> None:
        self.record.warn(message)

    # ---- the procedure ---------------------------------------------------------------

    async def run_lifecycle(self, input: RunInput) -> RunState:
        continued = input.continuation if admission.continues_itself() else None
        state = continued.state if continued else admission.initial_state(input)
        self._visibility = RunVisibility(lambda: markdown.current_details(self.record.state, self.record.policy))
        self._record = RunRecord(
            state,
            None,
            clock=workflow.now,
            publish=self._publish,
            log=workflow.logger.info,
            changed=self._describe,
            phase_changed=lambda left, entered, stayed: run_metrics.phase_changed(
                state, left, entered, stayed, served=self._served()
            ),
        )
        patches.decide()
        if not continued:
            admission.decide_patches(input)
        self.visibility.decide()
        self._keeps_temporal_cancels = patches.has(patches.KEEPS_TEMPORAL_CANCELS)
        if not self._keeps_temporal_cancels:
            return await self._procedure(input, continued)
        return await self._shielded(self._procedure(input, continued))

    async def _shielded(self, procedure: Coroutine[Any, Any, RunState]) -> RunState:
        """Run the procedure where a Temporal cancel cannot interrupt it: the cancel is kept instead.

        Temporal cancels a run by cancelling whatever its main coroutine awaits: an activity half-way
        (compensated as if applied), a review or an undo (opsctl cancel is refused there), or an
        activity that had just finished (its result lost). Here the cancel becomes the run's cancel
        request, judged like `opsctl cancel` and honoured at the procedure's next safe point, or
        refused (kept, with why) where `opsctl cancel` is.
        """
        running = asyncio.ensure_future(procedure)
        while True:
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                if running.cancelled():  # the procedure itself was cancelled: nothing left to shield
                    raise
                if running.done():  # it ended in the turn the cancel came: its ending stands
                    return running.result()
                if workflow.cancellation_reason() is None:
                    raise  # not Temporal's cancel (the worker evicting the run from its cache)
                self._keep_a_temporal_cancel()

    async def _procedure(self, input: RunInput, continued: Continuation | None) -> RunState:
        state = self.record.state
        cancelled = False
        try:
            self._settings = continued.settings if continued else await admission.resolve_settings(input)
        except asyncio.CancelledError:
            if not self.visibility.batched:
                raise  # a run without the visibility patch closed as the cancel found it, unseen
            # Cancelled while the policy loads: the run still ends through `finish`, and shows it.
            cancelled = True
            self._settings = await admission.resolve_settings(input)
        if not continued:  # counted once the worker said whether it serves the run's environment
            run_metrics.started(state, served=self._served())
        self.record.policy = policy = self.settings.policy
        if not continued and policy is not None:
            state.required_approvals, state.quorum = policy.required_approvals, policy.describe_quorum()
        state.policy_source = self._settings.policy_source
        self._applied = self.applied_model.model_validate(continued.applied if continued else {})
        self.record.publish()
        if cancelled:
            return await self.finish(self._cancelled_through_temporal())
        try:
            ending = await (self._resume() if continued else self._run(input))
        except Stop as stopped:
            ending = stopped.ending
        except asyncio.CancelledError:
            ending = self._cancelled_through_temporal()
        return await self.finish(ending)

    def _cancelled_through_temporal(self) -> Ending:
        """A Temporal cancel request that interrupted the run (runs started before `_shielded`)."""
        self.warn("cancelled through Temporal")
        return Ending(Phase.CANCELLED)

    def _keep_a_temporal_cancel(self) -> None:
        """Temporal's cancel request, as a decision of the run's own (see `_shielded`)."""
        if self._temporal_cancel_kept:
            return
        self._temporal_cancel_kept = True
        decision = self.record.cancel_through_temporal(workflow.cancellation_reason() or "")
        if decision.accepted:
            self.warn("a cancel came through Temporal: stopping at the next safe point")
        else:
            self.warn(f"a cancel through Temporal was refused: {decision.reason}")

    def _cancel_in_effect(self) -> bool:
        """A safe point of runs that keep Temporal's cancels: is a cancel (either kind) in effect?"""
        return self._keeps_temporal_cancels and self.record.cancel_request is not None

    async def _run(self, input: RunInput) -> Ending:
        # A schedule's run (or a drift's apply): what Temporal says about the schedule, before admission.
        started = (
            await scheduled.find_start(input)
            if input.schedule is not None and workflow.patched(scheduled.SCHEDULED_RUNS)
            else None
        )
        policy = admission.admit(input, self.record.state, self.settings, started)
        spec = self._spec(input.request)
        if self._cancel_in_effect():
            return Ending(Phase.CANCELLED)  # cancelled before planning
        self.record.enter(Phase.PLANNING)
        try:
            plan = await self._plan(spec, policy)
        except Stop:
            planned = self.record.state.plan
            if started is not None and input.mode is Mode.DRY_RUN and planned is not None:
                # Planned, and refused (larger than the policy allows): drift all the same, never submitted.
                await scheduled.record_drift(
                    input, self.record.state, planned, started, self._publish, self.warn, submit=False
                )
            raise
        if self._cancel_in_effect():
            return Ending(Phase.CANCELLED)  # cancelled while planning: nothing follows the plan
        if input.mode is Mode.DRY_RUN:
            if started is None:
                return Ending(Phase.PLANNED)
            # A schedule's dry run is drift detection: mark it, and submit the apply if the schedule asks.
            next_action = await scheduled.record_drift(
                input, self.record.state, plan, started, self._publish, self.warn
            )
            return Ending(Phase.PLANNED, next_action=next_action)
        if not plan.has_changes:
            return Ending(Phase.NO_CHANGES)
        if self.record.state.emergency:
            self.warn(f"emergency apply without prior approval: {self.record.state.emergency}")
        else:
            plan = await self._gate(spec, policy, plan)
        return await self._apply_and_verify(spec, plan)

    async def _resume(self) -> Ending:
        """A continued run: its plan was approved earlier in this chain; go on applying."""
        spec = self._spec(self.record.state.request)
        assert self.record.state.plan is not None, "a run is only continued from apply"
        return await self._apply_and_verify(spec, self.record.state.plan, entered=True)

    async def _apply_and_verify(self, spec: SpecT, plan: Plan, entered: bool = False) -> Ending:
        if not entered:
            self.record.enter(Phase.APPLYING)
        self._applied = await self.apply(spec, plan, self._applied)
        # The end of apply is a safe point too: a cancel that came during the last step is honoured.
        if self.record.cancel_request is not None:
            return Ending(Phase.CANCELLED)
        self.record.enter(Phase.VERIFYING)
        return await self._verify(spec)

    def _spec(self, request: Request) -> SpecT:
        """The spec as the operation reads it: in its kind's latest version, whichever version the request used."""
        try:
            spec = kinds.read_spec(request.kind, request.api_version, request.spec)
        except DocumentError as exc:
            raise stop(FailureKind.VALIDATION, str(exc)) from None
        if not isinstance(spec, self.spec_model):
            raise TypeError(f"{type(self).__name__} reads {self.spec_model.__name__}, not {type(spec).__name__}")
        return spec

    async def _plan(self, spec: SpecT, policy: Policy) -> Plan:
        plan = await self.plan(spec)
        self.record.state.plan = plan
        self.record.state.plan_hash = plan.hash()
        steps = self.apply_steps(spec, plan) if plan.has_changes else []
        self.record.state.progress = Progress(total=len(steps))
        self.record.state.planned_steps = steps[:PLANNED_STEPS_KEPT]
        self.record.publish()
        self.record.changed()
        if plan.deletions > policy.max_deletions:
            allowed = f"{policy.environment} allows {policy.max_deletions} per run"
            message = f"the plan deletes {plan.deletions} resources; {allowed}"
            raise stop(FailureKind.POLICY_DENIED, message, "plan")
        return plan

    async def _gate(self, spec: SpecT, policy: Policy, plan: Plan) -> Plan:
        """Until the exact plan about to be applied has the policy's quorum and no freeze is in force."""
        needs_approval = policy.required_approvals > 0
        while True:
            if needs_approval:
                await gate.await_approval(self.record, policy)
            waited = await gate.wait_for_window(self.record, policy)
            if not (needs_approval or waited):
                return plan
            # Nobody applies a plan they did not see: observe again right before apply.
            approved_hash = self.record.state.plan_hash
            self.record.enter(Phase.REPLANNING)
            plan = await self._plan(spec, policy)
            if self._cancel_in_effect():
                raise Stop(Ending(Phase.CANCELLED))  # cancelled while re-planning
            if not plan.has_changes:
                raise Stop(Ending(Phase.NO_CHANGES))
            if not needs_approval or self.record.state.plan_hash == approved_hash:
                return plan
            change = f"{approved_hash[:12]}… → {self.record.state.plan_hash[:12]}…"
            voided = self.record.void_approvals(f"the re-plan before apply found a different plan ({change})")
            self.warn(
                f"the plan changed after approval ({approved_hash[:12]}… → {self.record.state.plan_hash[:12]}…): "
                f"the approval of {', '.join(voided)} is void and the new plan needs approving"
            )

    async def _verify(self, spec: SpecT) -> Ending:
        state = self.record.state
        while True:
            try:
                checks = await self.verify(spec, self._applied)
            except Stop as stopped:
                # A probe's classified failure; an abort (unknown) or a cancel ends the run.
                if stopped.ending.failure is None or stopped.ending.failure.kind is FailureKind.UNKNOWN:
                    raise
                # Apply is done; a probe that cannot observe leaves the outcome uncertain, not wrong.
                failure = stopped.ending.failure
                state.uncertain = [f"verify: {failure.kind.value}: {failure.message}"]
                await self._needs_review("verify", "the outcome could not be observed")
                continue
            state.checks = checks
            failing = [check for check in checks if not check.passed]
            if not failing:
                state.uncertain = []
                return Ending(Phase.SUCCEEDED, next_action="nothing to do")
            state.uncertain = [f"{check.name}: {check.detail}" for check in failing]
            await self._needs_review("verify", "postconditions did not hold after apply")

    # ---- steps -----------------------------------------------------------------------

    async def step(
        self,
        name: str,
        activity: Callable[..., Awaitable[ResultT]],
        arg: Any,
        *,
        timeout: timedelta = STEP_TIMEOUT,
        cancellable: bool = False,
        changes: Resource | None = None,
    ) -> ResultT:
        """Run one bounded apply step. A cancel request is honoured before it starts.

        `changes`: recorded as the step starts, for steps that commit as they go (a failure
        later in the step is then a partial application, never "nothing changed").

        Long steps report progress with their checkpoint (a retry resumes from it) and pass
        `cancellable`: a cancel request then stops them between their batches.
        """
        state = self.record.state
        if self.record.cancel_request is not None:
            raise Stop(Ending(Phase.CANCELLED))
        state.progress = Progress(step=name, done=state.progress.done, total=state.progress.total)
        record = StepRecord(name=name, started=workflow.now())
        state.steps.append(record)
        if changes is not None:
            self.record_change(changes)
        self._describe()
        result = await self.probe(activity, arg, step=name, timeout=timeout, cancellable=cancellable)
        record.finished = workflow.now()
        state.progress = Progress(step=name, done=state.progress.done + 1, total=state.progress.total)
        self._describe()
        return result

    async def continue_as_new_if_due(self, applied: AppliedT) -> None:
        """Between apply steps: start a fresh history when this one grows large.

        The next run resumes in apply with the same record (plan, approvals, changes,
        progress), the same settings, and `applied`, the operation's own progress. Decisions
        are never lost: every handler has finished before the hand-over.
        """
        info = workflow.info()
        if not (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.settings.history_event_limit
        ):
            return
        await waits.condition(workflow.all_handlers_finished)
        self.record.state.continued += 1
        continuation = Continuation(
            state=self.record.state, settings=self.settings, applied=applied.model_dump(mode="json")
        )
        self.visibility.flush()
        workflow.continue_as_new(RunInput(request=self.record.state.request, continuation=continuation))

    async def probe(
        self,
        activity: Callable[..., Awaitable[ResultT]],
        arg: Any,
        *,
        step: str = "",
        timeout: timedelta = STEP_TIMEOUT,
        cancellable: bool = False,
    ) -> ResultT:
        """Call one activity. Classified failures end the run; unknown ones go to review.

        A `cancellable` step is also a safe point while it runs: a cancel request cancels
        it, and the lifecycle waits until the activity has stopped before compensating.
        """
        step = step or self.record.state.phase.value
        while True:
            try:
                running = workflow.start_activity_method(
                    activity,
                    arg,
                    start_to_close_timeout=timeout,
                    # Every attempt may take `timeout`; retries go on for the window after it.
                    schedule_to_close_timeout=timeout + self._retry_window(),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=STEP_RETRY,
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=STEP_SUMMARIES.get(step, step),
                )
                if cancellable:

                    def stopped_or_cancelled(running: asyncio.Future[Any] = running) -> bool:
                        return running.done() or self.record.cancel_request is not None

                    await waits.condition(stopped_or_cancelled)
                    if not running.done():
                        await self._stop_step(running, step)
                        raise Stop(Ending(Phase.CANCELLED))
                return await running
            except ActivityError as err:
                # The run itself was cancelled in Temporal (runs started before `_shielded`).
                if isinstance(err.cause, CancelledError):
                    ending = self._cancelled_through_temporal()
                    if self.record.state.phase is Phase.APPLYING:
                        self._interrupted(step)
                    raise Stop(ending) from None
                failure = classify(step, err)
                if failure.kind is not FailureKind.UNKNOWN:
                    raise Stop(Ending(Phase.FAILED, failure)) from None
                reason = failure.message
                if self.record.state.phase is Phase.COMPENSATING:  # an undo that cannot finish says what is broken
                    reason += with_repair(await self._diagnosis())
                note = f"{step}: {reason}"
                self.record.state.uncertain.append(note)
                await self._needs_review(step, reason)
                self.record.state.uncertain.remove(note)

    def _retry_window(self) -> timedelta:
        policy = self.record.policy
        seconds = self.settings.retry_window_seconds or (policy.retry_window_seconds if policy else RETRY_WINDOW)
        return timedelta(seconds=seconds)

    async def _stop_step(self, running: asyncio.Future[Any], step: str) -> None:
        """Cancel a running step and wait until its activity has stopped: what it did counts as partial."""
        running.cancel()
        with contextlib.suppress(ActivityError, asyncio.CancelledError):
            await running
        self._interrupted(step)

    def _interrupted(self, step: str) -> None:
        """A step stopped half-way may have changed things: count it, so the report says partial."""
        self.record_change(Resource(resource_type="step", resource_id=step, detail="interrupted by a cancel"))
        self.record.state.uncertain.append(f"{step}: interrupted by a cancel, partly applied")

    async def _needs_review(self, step: str, reason: str) -> None:
        """Wait for an operator: a retry returns here; mark done and abort end the run."""
        record = self.record
        resume_in = record.state.phase
        record.enter(Phase.NEEDS_REVIEW)
        record.state.next_action = (
            f"{step}: {reason}. Inspect the evidence, then `opsctl resolve {record.state.workflow_id} "
            "--retry | --mark-done | --abort --comment ...`"
        )
        record.changed()
        compensating = resume_in is Phase.COMPENSATING  # a cancel cannot interrupt undoing

        def answered() -> bool:
            return record.resolution is not None or (record.cancel_request is not None and not compensating)

        await waits.condition(answered)
        resolution = record.resolution
        if resolution is None:
            raise Stop(Ending(Phase.CANCELLED))
        if resolution.decision is Decision.ABORT:
            message = f"aborted in review by {resolution.actor}: {reason}"
            failure = Failure(kind=FailureKind.UNKNOWN, message=message, step=step)
            raise Stop(Ending(Phase.FAILED, failure, aborted=True))
        if resolution.decision is Decision.MARK_DONE:
            self.warn(f"marked done by {resolution.actor}: {resolution.comment}")
            record.state.uncertain = []
            raise Stop(Ending(Phase.SUCCEEDED, next_action="nothing to do: an operator completed the run by hand"))
        record.enter(resume_in)

    # ---- the end -----------------------------------------------------------------------

    async def finish(self, ending: Ending) -> RunState:
        """The one place a run ends: undo what must be undone, hold an emergency for review, close."""
        state = self.record.state
        if ending.phase is Phase.FAILED:
            ending = await self._failed(ending)
        elif ending.phase is Phase.CANCELLED:
            ending = await self._cancelled()
        state.failure = ending.failure  # known at once, also while an emergency's review is open
        next_action = ending.next_action or default_next(state, ending)
        policy = self.record.policy
        if state.emergency and state.changed and policy is not None and policy.required_approvals:
            await gate.post_incident_review(self.record, policy, ending.phase)  # sets its own next action
        state.next_action = next_action or state.next_action
        state.outcome = None
        if state.phase is not ending.phase:
            self.record.enter(ending.phase)
        self._describe()
        run_metrics.finished(state, ending.phase, served=self._served())
        self.visibility.flush()  # now, before the run's result: nothing may follow it
        return state

    def _served(self) -> bool:
        """Does this worker serve the run's environment (its metrics may then name it)?"""
        return self._settings is not None and self._settings.policy is not None

    async def _failed(self, ending: Ending) -> Ending:
        state, failure = self.record.state, ending.failure
        assert failure is not None
        state.failed.append(Resource(resource_type="step", resource_id=failure.step or "validate"))
        if not state.changed:
            return Ending(Phase.FAILED, failure, default_next(state, ending))
        note = f"{failure.step}: {failure.message}"
        if note not in state.uncertain:
            state.uncertain.append(note)
        if not self.record.apply_finished and await self._undo():
            compensated = failure.model_copy(update={"message": f"{failure.message} (changes compensated)"})
            return Ending(
                Phase.FAILED, compensated, "the applied changes were compensated; fix the cause and submit again"
            )
        partial = Failure(
            kind=FailureKind.PARTIAL_APPLICATION,
            message=f"{failure.kind.value} after {plural(len(state.changed), 'change')}: {failure.message}",
            step=failure.step,
        )
        broken = await self._still_broken()
        if broken:
            return Ending(Phase.FAILED, partial, f"some changes stand and need repair: {broken}; then resubmit")
        return Ending(Phase.FAILED, partial, "some changes stand: review them (warnings, uncertain), then resubmit")

    async def _cancelled(self) -> Ending:
        if not self.record.state.changed:
            return Ending(Phase.CANCELLED, next_action="cancelled before any change: nothing to undo")
        if await self._undo():
            return Ending(Phase.CANCELLED, next_action="cancelled: the applied changes were compensated")
        # Cancelled it is, but not cleanly: the failure makes the exit code say "partial" (5).
        failure = Failure(
            kind=FailureKind.PARTIAL_APPLICATION, message="cancelled; some applied changes stand", step="cancel"
        )
        broken = await self._still_broken()
        if broken:
            return Ending(Phase.CANCELLED, failure, f"cancelled; some changes stand and need repair: {broken}")
        return Ending(Phase.CANCELLED, failure, "cancelled; some changes stand: review them (warnings, uncertain)")

    async def _diagnosis(self) -> str:
        return (await self.diagnose(self._spec(self.record.state.request), self._applied)).statement

    async def _still_broken(self) -> str:
        """At a partial ending: what the operation finds broken (a rotation: which password works),
        also in `uncertain`; '' when it has nothing to say (nothing it knows how to repair)."""
        spec = self._spec(self.record.state.request)
        if not self.repair(spec, self._applied):
            return ""
        diagnosis = await self.diagnose(spec, self._applied)
        if not diagnosis.broken:  # looked, and the changes that stand work: nothing to repair
            return ""
        note = f"at the end: {diagnosis.statement}"
        if note not in self.record.state.uncertain:
            self.record.state.uncertain.append(note)
        return diagnosis.statement

    async def _undo(self) -> bool:
        """Run the operation's compensation until it is done, or an operator says otherwise.

        A compensation that fails never ends the run silently broken: the run waits in
        needs_review saying what is broken and how to repair it; `resolve --retry` runs the
        compensation again, `--mark-done` records it repaired by hand, `--abort` ends the run
        with the changes standing (and says so).
        """
        if self.record.compensation_started:
            return False
        self.record.enter(Phase.COMPENSATING)
        spec = self._spec(self.record.state.request)
        while True:
            try:
                return await self.compensate(spec, self._applied)
            except Stop as stopped:
                ending = stopped.ending
                if ending.phase is Phase.SUCCEEDED:  # an operator marked the compensation done by hand
                    return True
                if ending.phase is not Phase.FAILED or ending.failure is None:
                    self.record.state.uncertain.append(
                        "compensation interrupted by a cancel: it may be incomplete"
                        + with_repair(self.repair(spec, self._applied))
                    )
                    return False
                note = f"compensation failed: {ending.failure.message}" + with_repair(await self._diagnosis())
                self.record.state.uncertain.append(note)
                if ending.aborted:
                    return False
            except asyncio.CancelledError:  # a Temporal cancel while undoing
                self.record.state.uncertain.append(
                    "compensation interrupted by a cancel: it may be incomplete"
                    + with_repair(self.repair(spec, self._applied))
                )
                return False
            try:
                await self._needs_review("compensate", note)
            except Stop as answer:
                return answer.ending.phase is Phase.SUCCEEDED  # marked done: repaired; aborted: it stands
            self.record.state.uncertain.remove(note)  # retrying: the new attempt will say

    # ---- settings and state ------------------------------------------------------------

    @property
    def visibility(self) -> RunVisibility:
        assert self._visibility is not None, "it exists from the run's first moment"
        return self._visibility

    def _describe(self) -> None:
        """The run as a person reads it in the Web UI (current details): kept up to date."""
        self.visibility.describe()

    def _publish(self, values: dict[str, Any]) -> None:
        if self._settings is not None and self._settings.search_attributes:
            self.visibility.publish(values)


def with_repair(repair: str) -> str:
    return f"; {repair}" if repair else ""
