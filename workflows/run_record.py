"""A run's record: its state, the decisions people send it, and how it shows outside.

Signals (approve, reject, cancel, resolve) are judged here and every attempt is kept;
the `state` query answers with the record; phase changes go through the state machine
and are mirrored into search attributes. `Lifecycle` builds the procedure on top.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from contracts.phases import Phase, check_transition
    from contracts.policy import judge_approval
    from contracts.run import (
        Decision,
        DecisionInput,
        DecisionRecord,
        ResolveInput,
        Resource,
        RunInput,
        RunState,
    )

SEARCH_ATTRIBUTES = {
    "kind": SearchAttributeKey.for_keyword("OpsctlKind"),
    "environment": SearchAttributeKey.for_keyword("OpsctlEnvironment"),
    "phase": SearchAttributeKey.for_keyword("OpsctlPhase"),
    "requester": SearchAttributeKey.for_keyword("OpsctlRequester"),
    "plan_hash": SearchAttributeKey.for_keyword("OpsctlPlanHash"),
}


class RunRecord:
    _input: RunInput
    _state: RunState
    _cancel: DecisionRecord | None
    _resolution: DecisionRecord | None
    _undoing = False  # compensation has started: nothing left to cancel

    def record_change(self, resource: Resource) -> None:
        """Checkpoint a change (with its external id) in the run's state as soon as it is known."""
        self._state.changed.append(resource)

    def warn(self, message: str) -> None:
        self._state.warnings.append(message)

    def record_skip(self, resource: Resource) -> None:
        """A resource the run looked at and deliberately left alone, with why in `detail`."""
        self._state.skipped.append(resource)

    # ---- signals and queries -----------------------------------------------------------

    @workflow.signal
    def approve(self, input: DecisionInput) -> None:
        self._record(Decision.APPROVE, input, *self._judge_approval(input))

    @workflow.signal
    def reject(self, input: DecisionInput) -> None:
        waiting = self._state.phase is Phase.AWAITING_APPROVAL
        reason = "rejected" if waiting else f"nothing to reject in phase {self._state.phase.value}"
        self._record(Decision.REJECT, input, waiting, reason)

    @workflow.signal
    def cancel(self, input: DecisionInput) -> None:
        safe = not self._state.phase.terminal and self._state.phase is not Phase.VERIFYING and not self._undoing
        if self._undoing:
            reason = "already undoing the applied changes"
        elif safe:
            reason = "cancel requested: stopping at the next safe point"
        else:
            reason = f"cannot cancel in phase {self._state.phase.value}"
        record = self._record(Decision.CANCEL, input, safe, reason)
        if safe and self._cancel is None:
            self._cancel = record

    @workflow.signal
    def resolve(self, input: ResolveInput) -> None:
        """needs_review: retry the step, mark the run done by hand, or abort it."""
        ok = self._state.phase is Phase.NEEDS_REVIEW
        reason = input.resolution.value if ok else f"nothing to resolve in phase {self._state.phase.value}"
        record = self._record(input.resolution, input, ok, reason)
        if ok:
            self._resolution = record

    @workflow.query
    def state(self) -> RunState:
        return self._state

    def _judge_approval(self, input: DecisionInput) -> tuple[bool, str]:
        if self._state.phase is not Phase.AWAITING_APPROVAL:
            return False, f"no plan is awaiting approval (phase {self._state.phase.value})"
        assert self._state.approval_deadline is not None
        verdict = judge_approval(
            actor=input.actor,
            plan_hash=input.plan_hash,
            requester=self._state.requester,
            current_plan_hash=self._state.plan_hash,
            policy=self._input.policy,
            approved_by=self._state.approvals(),
            now=workflow.now(),
            deadline=self._state.approval_deadline,
        )
        return verdict.accepted, verdict.reason

    def _record(self, decision: Decision, input: DecisionInput, accepted: bool, reason: str) -> DecisionRecord:
        record = DecisionRecord(
            decision=decision,
            actor=input.actor,
            plan_hash=input.plan_hash,
            comment=input.comment,
            attempt_id=input.attempt_id,
            accepted=accepted,
            reason=reason,
            at=workflow.now(),
        )
        self._state.decisions.append(record)
        workflow.logger.info("%s by %s: %s", decision.value, input.actor, reason)
        return record

    def _gate_decided(self) -> bool:
        approvals = len(self._state.approvals())
        return self._cancel is not None or self._rejected() or approvals >= self._input.policy.required_approvals

    def _rejected(self) -> bool:
        return any(d.decision is Decision.REJECT and d.accepted for d in self._state.decisions)

    def _approval_timeout_seconds(self) -> int:
        asked = self._input.request.metadata.approval_timeout_seconds
        limit = self._input.policy.approval_timeout_seconds
        return min(asked, limit) if asked else limit

    # ---- state keeping -------------------------------------------------------------------

    def _initial_state(self, input: RunInput) -> RunState:
        info = workflow.info()
        request = input.request
        return RunState(
            workflow_id=info.workflow_id,
            kind=request.kind,
            mode=input.mode,
            environment=request.metadata.environment,
            requester=request.metadata.requester or "",
            phase=Phase.VALIDATING,
            request=request,
            required_approvals=input.policy.required_approvals,
            phase_times={Phase.VALIDATING.value: workflow.now()},
        )

    def _enter(self, phase: Phase) -> None:
        self._state.phase = check_transition(self._state.phase, phase)
        if not phase.terminal:
            self._state.next_action = ""  # each phase says its own
        self._state.phase_times[phase.value] = workflow.now()
        self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        if not self._input.search_attributes:
            return
        values = {
            "kind": self._state.kind,
            "environment": self._state.environment,
            "phase": self._state.phase.value,
            "requester": self._state.requester,
            "plan_hash": self._state.plan_hash,
        }
        workflow.upsert_search_attributes([SEARCH_ATTRIBUTES[name].value_set(value) for name, value in values.items()])
