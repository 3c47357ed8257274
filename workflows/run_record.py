"""A run's record: its state, the decisions people send it and how each was judged, its phases.

`RunRecord` is a plain object the lifecycle composes: it never calls Temporal itself (time
comes from `clock`, search attributes leave through `publish`), so its judgement is
unit-tested directly. Every decision attempt is kept, accepted or refused, with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # cryptography's Rust core imports this module when a signature fails to verify: it must be the
    # host's module (passed through), never a second copy inside the sandbox.
    import cryptography.exceptions  # noqa: F401

    from contracts import search_attributes as sa
    from contracts.gate import Verdict, check_identity, judge_approval, judge_resolution, quorum_met, refuse
    from contracts.phases import Phase, check_transition
    from contracts.policy import Policy
    from contracts.run import Decision, DecisionInput, DecisionRecord, Resource, RunState

_CANCEL_TOO_LATE = {Phase.VERIFYING, Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE}
_REVIEWING = (Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE)


KEPT_DECISIONS = 100  # decision records the state keeps; every one of them stays in the history


def _ignore(_: Any) -> None:
    pass


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


class RunRecord:
    def __init__(
        self,
        state: RunState,
        policy: Policy | None,
        *,
        clock: Callable[[], datetime],
        publish: Callable[[dict[str, Any]], None] = _ignore,
        log: Callable[[str], None] = _ignore,
    ) -> None:
        self.state = state
        self.policy = policy
        self._clock = clock
        self._publish = publish
        self._log = log
        self._review_opened = len(state.decisions)  # resolutions count from the latest needs_review on

    # ---- phases ----------------------------------------------------------------------

    def enter(self, phase: Phase) -> None:
        self.state.phase = check_transition(self.state.phase, phase)
        if not phase.terminal:
            self.state.next_action = ""  # each phase says its own
        if phase is Phase.NEEDS_REVIEW:
            self._review_opened = len(self.state.decisions)
        self.state.phase_times[phase.value] = self._clock()
        self.publish()

    def publish(self) -> None:
        self._publish(
            {
                sa.KIND: self.state.kind,
                sa.ENVIRONMENT: self.state.environment,
                sa.PHASE: self.state.phase.value,
                sa.REQUESTER: self.state.requester,
                sa.PLAN_HASH: self.state.plan_hash,
                sa.EMERGENCY: bool(self.state.emergency),
            }
        )

    @property
    def compensation_started(self) -> bool:
        return Phase.COMPENSATING.value in self.state.phase_times

    @property
    def apply_finished(self) -> bool:
        """After apply, failures are about observing the outcome, not about changing things."""
        return Phase.VERIFYING.value in self.state.phase_times

    # ---- what the run did ----------------------------------------------------------------

    def record_change(self, resource: Resource) -> None:
        """Checkpoint a change (with its external id) as soon as it is known."""
        self.state.changed.append(resource)

    def record_skip(self, resource: Resource) -> None:
        """A resource the run looked at and deliberately left alone, with why in `detail`."""
        self.state.skipped.append(resource)

    def warn(self, message: str) -> None:
        self.state.warnings.append(message)

    # ---- decisions -------------------------------------------------------------------

    def decide(self, decision: Decision, input: DecisionInput) -> DecisionRecord:
        """Judge one decision attempt and keep it, whatever the verdict.

        A decision is untrusted input: if judging it fails, it is refused and kept, never
        allowed to fail the workflow task (which would wedge the run for everyone).
        """
        try:
            identity = self._identity(decision, input)
            verdict = self._judge(decision, input) if identity.accepted else identity
        except Exception as exc:  # see above: refuse, record, carry on
            identity = verdict = refuse(f"could not be judged: {type(exc).__name__}: {exc}")
        # Kept at a bounded size: a caller must not grow the run's state (a query, a result,
        # a continuation) past Temporal's payload limits. The history keeps every signal whole.
        record = DecisionRecord(
            decision=decision,
            actor=_clip(input.actor, 100),
            plan_hash=_clip(input.plan_hash, 64),
            comment=_clip(input.comment, 1000),
            attempt_id=_clip(input.attempt_id, 64),
            accepted=verdict.accepted,
            reason=_clip(verdict.reason, 500),
            at=self._clock(),
            signed=identity.signed,
            # Groups belong to verified identities only: an unsigned claim says nothing about who sent it.
            groups=list(self.policy.groups_of(input.actor))
            if self.policy and decision is Decision.APPROVE and (identity.signed or not self.policy.require_signatures)
            else [],
        )
        if identity.signed:  # only a verified signature can be replayed to any effect
            self.state.signed_attempts.append(input.attempt_id)
        self.state.decisions.append(record)
        self._forget_oldest_unsigned_refusal()
        self._log(
            f"{decision.value} by {record.actor}: {'accepted' if record.accepted else 'refused'}: {record.reason}"
        )
        return record

    def _forget_oldest_unsigned_refusal(self) -> None:
        """Past KEPT_DECISIONS, the oldest unverified refused attempt leaves the state (counted)."""
        if len(self.state.decisions) <= KEPT_DECISIONS:
            return
        index = next((i for i, d in enumerate(self.state.decisions) if not d.accepted and not d.signed), None)
        if index is not None:
            del self.state.decisions[index]
            self.state.decisions_not_kept += 1
            if index < self._review_opened:  # keep pointing at the first decision of the open review
                self._review_opened -= 1

    def _identity(self, decision: Decision, input: DecisionInput) -> Verdict:
        if self.policy is None:
            return refuse(f"no policy for environment {self.state.environment}: nothing can be decided")
        return check_identity(
            self.policy,
            actor=input.actor,
            payload=input.signature_payload(self.state.decision_scope, decision),
            signature=input.signature,
            attempt_id=input.attempt_id,
            expires_at=input.expires_at,
            now=self._clock(),
            seen_attempts=set(self.state.signed_attempts),
        )

    def _judge(self, decision: Decision, input: DecisionInput) -> Verdict:
        assert self.policy is not None  # _identity refuses without one
        phase = self.state.phase
        if decision is Decision.APPROVE:
            if phase is not Phase.AWAITING_APPROVAL and phase not in _REVIEWING:
                return refuse(f"no plan is awaiting approval (phase {phase.value})")
            return judge_approval(
                self.policy,
                actor=input.actor,
                plan_hash=input.plan_hash,
                current_plan_hash=self.state.plan_hash,
                requester=self.state.requester,
                approved_by=self.approvers(),
                now=self._clock(),
                deadline=self.state.approval_deadline if phase is Phase.AWAITING_APPROVAL else None,
            )
        if decision is Decision.REJECT:
            waiting = phase is Phase.AWAITING_APPROVAL
            return Verdict(
                accepted=waiting, reason="rejected" if waiting else f"nothing to reject in phase {phase.value}"
            )
        if decision is Decision.CANCEL:
            if self.compensation_started:
                return refuse("already undoing the applied changes")
            if phase.terminal or phase in _CANCEL_TOO_LATE:
                return refuse(f"cannot cancel in phase {phase.value}")
            return Verdict(accepted=True, reason="cancel requested: stopping at the next safe point")
        if phase is not Phase.NEEDS_REVIEW:
            return refuse(f"nothing to resolve in phase {phase.value}")
        return judge_resolution(
            self.policy, actor=input.actor, resolution=decision.value, requester=self.state.requester
        )

    def _accepted(self, *decisions: Decision, since: int = 0) -> list[DecisionRecord]:
        return [d for d in self.state.decisions[since:] if d.accepted and d.decision in decisions]

    def approvers(self) -> list[str]:
        return [d.actor for d in self._accepted(Decision.APPROVE)]

    @property
    def cancel_request(self) -> DecisionRecord | None:
        return next(iter(self._accepted(Decision.CANCEL)), None)

    @property
    def resolution(self) -> DecisionRecord | None:
        """The operator's answer to the current needs_review, once one is accepted."""
        answers = self._accepted(Decision.RETRY, Decision.MARK_DONE, Decision.ABORT, since=self._review_opened)
        return next(iter(answers), None)

    @property
    def rejected(self) -> bool:
        return bool(self._accepted(Decision.REJECT))

    @property
    def approved(self) -> bool:
        return self.policy is not None and quorum_met(self.policy, self.approvers())

    def void_approvals(self, reason: str) -> list[str]:
        """The plan changed: every accepted approval stops counting. Returns whose approvals were voided."""
        voided = []
        for record in self._accepted(Decision.APPROVE):
            record.accepted = False
            record.reason = f"void: {reason}"
            voided.append(record.actor)
        return voided
