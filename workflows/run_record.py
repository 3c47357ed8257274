"""A run's record: its state, the decisions people send it and how each was judged, its phases.

`RunRecord` is a plain object the lifecycle composes: it never calls Temporal itself (time
comes from `clock`, search attributes leave through `publish`), so its judgement is
unit-tested directly. Every decision attempt is kept, accepted or refused, with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    # cryptography's Rust core imports this module when a signature fails to verify: it must be the
    # host's module (passed through), never a second copy inside the sandbox.
    import cryptography.exceptions  # noqa: F401

    from contracts import search_attributes as sa
    from contracts.encryption import ERROR_METADATA
    from contracts.gate import Verdict, check_identity, judge_approval, judge_resolution, quorum_met, refuse
    from contracts.phases import Phase, check_transition
    from contracts.policy import Policy
    from contracts.request import describe_validation_error
    from contracts.run import Decision, DecisionInput, DecisionRecord, ResolveInput, Resource, RunState

TEMPORAL = "temporal"  # who sent a cancel that came through Temporal itself, and how
_CANCEL_TOO_LATE = {Phase.VERIFYING, Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE}
_REVIEWING = (Phase.AWAITING_REVIEW, Phase.REVIEW_OVERDUE)


KEPT_DECISIONS = 100  # decision records the state keeps; every one of them stays in the history
# Signed attempt ids kept (until their signatures expire) so that none counts twice: at most this many.
SEEN_ATTEMPTS_KEPT = 2000
_NEVER = float("inf")


def _expiry(entry: str) -> float:
    """`expires_at:attempt_id`; entries of runs started before expiries were kept never expire."""
    expires, _, rest = entry.partition(":")
    return float(expires) if rest and expires.isdigit() else _NEVER


def _attempt_id(entry: str) -> str:
    return entry.partition(":")[2] if _expiry(entry) < _NEVER else entry


MAX_NOTES = 50  # accepted notes are kept for good: bounded, so no caller can grow the run's state

# The decisions a run takes, by signal and update name, and the model each one's input must fit.
DECISION_INPUTS: dict[str, type[DecisionInput]] = {
    Decision.APPROVE.value: DecisionInput,
    Decision.REJECT.value: DecisionInput,
    Decision.CANCEL.value: DecisionInput,
    "resolve": ResolveInput,
    Decision.NOTE.value: DecisionInput,
}


def _ignore(*_: Any) -> None:
    pass


class Unreadable(ValueError):
    """A decision attempt whose input cannot be judged at all: refused and recorded as such."""

    def __init__(self, decision: Decision, actor: str, reason: str) -> None:
        super().__init__(reason)
        self.decision, self.actor, self.reason = decision, actor, reason


def read_decision(name: str, args: Sequence[Any]) -> tuple[Decision, DecisionInput]:
    """An attempt as sent (`name` and its untyped arguments) → the decision and its input.

    Raises `Unreadable` naming what is wrong: an unknown name, no or several inputs, bytes
    that are not JSON, a shape that is not a decision.
    """
    model = DECISION_INPUTS.get(name)
    value = args[0] if len(args) == 1 else None
    actor = value.get("actor") if isinstance(value, dict) else None
    actor = actor if isinstance(actor, str) and actor.strip() else "unknown"
    if model is None:
        known = ", ".join(DECISION_INPUTS)
        raise Unreadable(Decision.INVALID, actor, f"unknown name {_clip(name, 60)!r}: this run takes {known}")
    decision = Decision(name) if name != "resolve" else Decision.INVALID
    if len(args) != 1:
        raise Unreadable(decision, actor, f"{name} takes one input (a JSON object), got {len(args)}")
    if not isinstance(value, dict):
        what = _undecodable(value) if isinstance(value, RawValue | bytes) else f"a JSON {_json_type(value)}"
        raise Unreadable(decision, actor, f"{name} takes a JSON object with actor, plan_hash, comment…; got {what}")
    try:
        input = model.model_validate(value)
    except ValidationError as exc:
        raise Unreadable(
            decision, actor, f"malformed {name} input: {describe_validation_error(exc, prefix='input')}"
        ) from None
    if isinstance(input, ResolveInput):
        decision = Decision(input.resolution)
    return decision, input


def _undecodable(value: RawValue | bytes) -> str:
    if isinstance(value, bytes):
        return "bytes that are not JSON (encoding binary/plain)"
    metadata = value.payload.metadata
    if ERROR_METADATA in metadata:  # encrypted, and the worker's keys cannot open it (`encryption.codec`)
        why = metadata[ERROR_METADATA].decode(errors="replace")
        return f"an encrypted payload the worker cannot decrypt ({_clip(why, 200)})"
    encoding = metadata.get("encoding", b"").decode(errors="replace")
    return f"bytes that are not JSON (encoding {_clip(encoding, 40) or 'none'})"


def _json_type(value: Any) -> str:
    names = {str: "string", bool: "boolean", int: "number", float: "number", list: "array", type(None): "null"}
    return names.get(type(value), type(value).__name__)


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
        changed: Callable[[], None] = _ignore,
        phase_changed: Callable[[Phase, Phase, timedelta | None], None] | None = None,
    ) -> None:
        self.state = state
        self.policy = policy
        self._clock = clock
        self._publish = publish
        self._log = log
        self.changed = changed  # the state changed: whoever shows it (current details) looks again
        # (left, entered, how long the run stayed in the phase it left): the run's metrics
        self._phase_changed = phase_changed
        # While a wait is open, it says what the run still needs; asked again after every decision.
        self.explain: Callable[[], str] | None = None
        self._review_opened = len(state.decisions)  # resolutions count from the latest needs_review on

    # ---- phases ----------------------------------------------------------------------

    def enter(self, phase: Phase) -> None:
        left, now = self.state.phase, self._clock()
        since = self.state.phase_times.get(left.value)
        self.state.phase = check_transition(left, phase)
        if not phase.terminal:
            self.state.next_action = ""  # each phase says its own
        self.explain = None
        if phase is Phase.NEEDS_REVIEW:
            self._review_opened = len(self.state.decisions)
        self.state.phase_times[phase.value] = now
        if self._phase_changed is not None:
            self._phase_changed(left, phase, now - since if since is not None else None)
        self.publish()
        self.changed()

    def publish(self) -> None:
        self._publish(
            {
                sa.KIND: self.state.kind,
                sa.ENVIRONMENT: self.state.environment,
                sa.PHASE: self.state.phase.value,
                sa.REQUESTER: self.state.requester,
                sa.PLAN_HASH: self.state.plan_hash,
                sa.EMERGENCY: bool(self.state.emergency),
                sa.MODE: self.state.mode.value,
                sa.RERUN_OF: self.state.rerun_of,
                # Set by this run alone: a caller's start-time value never stands (a refused run is no drift).
                sa.DRIFT: bool(self.state.scheduled and self.state.scheduled.drift),
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

    def receive(self, name: str, args: Sequence[Any], via: str) -> DecisionRecord:
        """An attempt exactly as it arrived (signal or update): judged if readable, else refused; kept."""
        try:
            decision, input = read_decision(name, args)
        except Unreadable as unreadable:
            refused = DecisionRecord(
                decision=unreadable.decision,
                actor=_clip(unreadable.actor, 100),
                plan_hash="",
                comment="",
                attempt_id="",
                accepted=False,
                reason=_clip(unreadable.reason, 500),
                at=self._clock(),
                via=via,
            )
            return self._keep(refused)
        return self.decide(decision, input, via=via)

    def decide(self, decision: Decision, input: DecisionInput, via: str = "") -> DecisionRecord:
        """Judge one decision attempt and keep it, whatever the verdict.

        A decision is untrusted input: if judging it fails, it is refused and kept, never
        allowed to fail the workflow task (which would wedge the run for everyone).
        """
        try:
            identity = self._identity(decision, input)
            verdict = self._judge(decision, input) if identity.accepted else identity
            if identity.signed and len(self._live_attempts()) >= SEEN_ATTEMPTS_KEPT:
                verdict = refuse(
                    f"more than {SEEN_ATTEMPTS_KEPT:,} signed attempts are still valid; send it again once they expire"
                )
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
            via=via,
        )
        if identity.signed:  # only a verified signature can be replayed to any effect
            # Seen until its signature expires, whether or not its record stays in the state.
            self.state.signed_attempts.append(f"{input.expires_at}:{input.attempt_id}")
        return self._keep(record)

    def _live_attempts(self) -> list[str]:
        """Seen signed attempts whose signature has not expired (expired ones cannot be replayed)."""
        now = self._clock().timestamp()
        self.state.signed_attempts = [entry for entry in self.state.signed_attempts if _expiry(entry) >= now]
        return self.state.signed_attempts

    def _keep(self, record: DecisionRecord) -> DecisionRecord:
        self.state.decisions.append(record)
        self._forget_oldest_refusal()
        if self.explain is not None:  # what the run still needs, after this decision
            self.state.next_action = self.explain()
        verdict = "accepted" if record.accepted else "refused"
        self._log(f"{record.decision.value} by {record.actor}: {verdict}: {record.reason}")
        self.changed()
        return record

    def _forget_oldest_refusal(self) -> None:
        """Past KEPT_DECISIONS, the oldest refused attempt leaves the state (counted; the history keeps it).

        Unverified ones go first, then signed ones (a flood of someone's own signed refusals
        must not grow the state either), voided approvals last. A forgotten signed attempt
        stays seen (`signed_attempts`) until its signature expires: it still cannot be replayed.
        """
        if len(self.state.decisions) <= KEPT_DECISIONS:
            return
        refused = [(d.signed, bool(d.voided), i) for i, d in enumerate(self.state.decisions) if not d.accepted]
        if not refused:
            return
        *_, index = min(refused)
        self.state.decisions.pop(index)
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
            seen_attempts={_attempt_id(entry) for entry in self._live_attempts()},
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
        if decision is Decision.NOTE:
            if not input.comment.strip():
                return refuse("a note needs text (the comment)")
            if len(self._accepted(Decision.NOTE)) >= MAX_NOTES:
                return refuse(f"this run holds {MAX_NOTES} notes already, the most it keeps")
            return Verdict(accepted=True, reason="note recorded")
        if decision is Decision.REJECT:
            if self.rejected:
                return refuse("already rejected")
            waiting = phase is Phase.AWAITING_APPROVAL
            return Verdict(
                accepted=waiting, reason="rejected" if waiting else f"nothing to reject in phase {phase.value}"
            )
        if decision is Decision.CANCEL:
            return self._judge_cancel()
        if phase is not Phase.NEEDS_REVIEW:
            return refuse(f"nothing to resolve in phase {phase.value}")
        return judge_resolution(
            self.policy, actor=input.actor, resolution=decision.value, requester=self.state.requester
        )

    def _judge_cancel(self) -> Verdict:
        phase = self.state.phase
        if self.cancel_request is not None:
            return refuse(f"a cancel is already requested (by {self.cancel_request.actor})")
        if phase.terminal or phase in _CANCEL_TOO_LATE:
            return refuse(f"cannot cancel in phase {phase.value}")
        if self.compensation_started:
            return refuse("already undoing the applied changes")
        return Verdict(accepted=True, reason="cancel requested: stopping at the next safe point")

    def cancel_through_temporal(self, reason: str) -> DecisionRecord:
        """A cancel Temporal delivered (the Web UI's button, `temporal workflow cancel`), kept as a decision.

        Judged like `opsctl cancel`, without an identity to check: Temporal admitted the request
        (its namespace permissions), and the run says so (actor and via "temporal").
        """
        verdict = self._judge_cancel()
        record = DecisionRecord(
            decision=Decision.CANCEL,
            actor=TEMPORAL,
            plan_hash="",
            comment=_clip(reason, 1000),
            attempt_id="",
            accepted=verdict.accepted,
            reason=verdict.reason,
            at=self._clock(),
            via=TEMPORAL,
        )
        return self._keep(record)

    def _accepted(self, *decisions: Decision, since: int = 0) -> list[DecisionRecord]:
        return [d for d in self.state.decisions[since:] if d.accepted and d.decision in decisions]

    def approvers(self) -> list[str]:
        return [d.actor for d in self._accepted(Decision.APPROVE)]

    @property
    def cancel_request(self) -> DecisionRecord | None:
        return self.state.cancel_request

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
            record.voided = reason
            voided.append(record.actor)
        self.changed()
        return voided
