"""What a run takes, what its signals carry, and what it reports (state and result).

`RunState` is both the answer of the `state` query and the workflow's return value: the
result of a run is simply its state once the phase is terminal. JSON output is its dump.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.failures import FAILURE_TABLE, ExitCode, FailureKind, Retryable
from contracts.phases import Phase, exit_code_for_phase
from contracts.plan import Plan
from contracts.policy import Policy
from contracts.request import Request
from contracts.schedules import ScheduledRun, ScheduleGrant
from contracts.signing import decision_payload, request_payload

RESULT_SCHEMA = "opsctl.run/v1"


class Mode(StrEnum):
    APPLY = "apply"
    DRY_RUN = "dry_run"


class RequestSignature(BaseModel):
    """The requester's signature over the whole input (see `contracts.signing.request_payload`)."""

    attempt_id: str = Field(min_length=1)
    expires_at: int  # seconds since the epoch, UTC
    signature: str = Field(min_length=1)


class RunInput(BaseModel):
    """What a caller sends to start a run. Untrusted: it names what to do, never the rules.

    The policy, identities and the worker's switches come from the worker; the requester is
    whoever signed the request. Unknown fields are kept (not dropped) so that the workflow
    can refuse them by name instead of silently ignoring a `policy` a caller tried to set.
    """

    model_config = ConfigDict(extra="allow")

    request: Request
    mode: Mode = Mode.APPLY
    emergency: str = Field(default="", description="break-glass: apply without prior approval, for this reason")
    signature: RequestSignature | None = None
    # A schedule's runs: what the requester signed for the schedule (`contracts.schedules`). The signature
    # then names the schedule, and the workflow checks that the schedule really started the run.
    schedule: ScheduleGrant | None = None
    # Set only by continue-as-new (the workflow checks that it continues a run of its own).
    continuation: Continuation | None = None

    def signed_body(self) -> dict[str, Any]:
        body = {
            "request": self.request.model_dump(mode="json", by_alias=True),
            "mode": self.mode.value,
            "emergency": self.emergency,
            "requester": self.request.metadata.requester or "",
        }
        if self.schedule is not None:  # only then: a run's signature from before schedules covers the same bytes
            body["schedule"] = self.schedule.model_dump(mode="json")
        return body

    def signature_payload(self, run_id: str, attempt_id: str, expires_at: int) -> bytes:
        return request_payload(run_id=run_id, request=self.signed_body(), attempt_id=attempt_id, expires_at=expires_at)


class Diagnosis(BaseModel):
    """What an operation finds when changes stand that it did not finish or undo: what is broken and
    how to repair it (a rotation: which secret version's password the database takes)."""

    statement: str
    broken: bool = True  # False: it looked, and what stands works — nothing to repair


class RunSettings(BaseModel):
    """What the worker decides for a run: its environment's policy and the worker's own switches."""

    policy: Policy | None
    policy_source: str
    # The time-skipping test server knows no custom search attributes: its test workers turn them off.
    search_attributes: bool = True
    # Continue-as-new once a run's history reaches this many events (Temporal warns at 10k).
    history_event_limit: int = 4000
    # An earlier execution of the same workflow id, if the worker found one: opsctl runs each id
    # once (its CLI refuses duplicates), so a later one replays someone's signed request.
    earlier_run: str = ""
    # The worker's own retry window, overriding the policy's (a test stack rides out seconds, not minutes).
    retry_window_seconds: int | None = None
    # This worker encrypts payloads and the run's start input reached Temporal in clear (a client without
    # the keys): the run is refused, so a request nobody protected never executes.
    arrived_in_clear: bool = False


class Continuation(BaseModel):
    """What a run hands to its continuation: its record, its settings, and the operation's progress."""

    state: RunState
    settings: RunSettings
    applied: dict[str, Any] = {}  # the operation's `applied_model`, dumped


# A workflow timeout shorter than this could end a run wherever it stands (mid-apply, nothing undone):
# such runs are refused. (Temporal's test server gives every workflow ten years.)
SHORTEST_WORKFLOW_TIMEOUT_DAYS = 366
NOTE_WORKFLOW = "OpsctlNote"  # a note on a run that has ended: its own workflow, `<run>:note:<attempt id>`


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"  # needs_review: run the failed step again
    MARK_DONE = "mark_done"  # needs_review: an operator finished the step by hand
    ABORT = "abort"  # needs_review: stop here
    NOTE = "note"  # an operator's note on the run's record (the comment is the note); changes nothing
    INVALID = "invalid"  # a signal this run does not know, or whose decision cannot be read from its input


class DecisionInput(BaseModel):
    """Every decision carries who, which plan, why, and a signature over all of it.

    `attempt_id` is unique per attempt (a replayed one is refused) and lets the CLI find its
    verdict; `expires_at` (epoch seconds) bounds how long the signature is good for.
    """

    actor: str = Field(min_length=1)
    plan_hash: str = ""
    comment: str = ""
    attempt_id: str = ""
    expires_at: int = 0
    signature: str = ""

    def signature_payload(self, run_id: str, decision: Decision) -> bytes:
        return decision_payload(
            run_id=run_id,
            decision=Decision(decision).value,
            actor=self.actor,
            plan_hash=self.plan_hash,
            comment=self.comment,
            attempt_id=self.attempt_id,
            expires_at=self.expires_at,
        )


class ResolveInput(DecisionInput):
    """The operator's answer to needs_review."""

    resolution: Literal["retry", "mark_done", "abort"]


class DecisionRecord(BaseModel):
    """One signal as the workflow judged it: kept for every attempt, accepted or refused."""

    decision: Decision
    actor: str
    plan_hash: str
    comment: str
    attempt_id: str
    accepted: bool
    reason: str
    at: datetime
    signed: bool = False  # the signature verified against the actor's registered key
    groups: list[str] = []  # the approver's groups, as the policy had them
    voided: str = ""  # an accepted approval that stopped counting, and why (the plan changed)
    via: str = ""  # "signal" or "update": how the attempt arrived


class Resource(BaseModel):
    resource_type: str
    resource_id: str
    external_id: str = ""
    detail: str = ""


class Check(BaseModel):
    """One postcondition probe of verify."""

    name: str
    passed: bool
    detail: str


class Failure(BaseModel):
    kind: FailureKind
    message: str
    step: str = ""


class Progress(BaseModel):
    step: str = ""
    done: int = 0
    total: int = 0


class StepRecord(BaseModel):
    """One apply step as it ran: the progress trail `apply --wait` prints."""

    name: str
    started: datetime
    finished: datetime | None = None


class LiveActivity(BaseModel):
    """A running step as its heartbeats describe it. Filled by the client, never by the workflow.

    Long steps heartbeat details shaped {"done", "total", "unit", "checkpoint"?, "paused"?}.
    """

    activity_type: str
    attempt: int
    step: str = ""  # the run's step it belongs to, as the runbook names it
    details: dict[str, Any] = {}
    last_failure: str = ""

    def describe(self) -> str:
        done, total, unit = self.details.get("done"), self.details.get("total"), self.details.get("unit", "")
        parts = [f"{self.step or self.activity_type} (attempt {self.attempt})"]
        if done is not None:
            parts.append(f"{done}/{total} {unit}".strip() if total else f"{done} {unit}".strip())
        if "checkpoint" in self.details:
            parts.append(f"checkpoint {self.details['checkpoint']}")
        if self.details.get("paused"):
            parts.append(f"paused: {self.details['paused']}")
        if self.last_failure:
            parts.append(f"retrying after: {self.last_failure}")
        return " — ".join(parts)


class RunState(BaseModel):
    schema_version: str = RESULT_SCHEMA
    workflow_id: str
    # The execution the run started as (stable across continue-as-new): decisions are signed
    # for `workflow_id/first_run_id`, so a signature cannot be replayed into a later run of the same id.
    first_run_id: str = ""
    kind: str
    mode: Mode
    environment: str
    requester: str
    phase: Phase
    request: Request
    plan: Plan | None = None
    plan_hash: str = ""
    policy_source: str = ""  # where the worker's policy for this environment came from
    required_approvals: int = 0
    quorum: str = ""  # the policy's quorum, in words
    requester_verified: bool = False  # the request's signature verified against the requester's key
    emergency: str = ""  # break-glass reason: applied without prior approval
    rerun_of: str = ""  # the run this one repeats (`opsctl rerun`), from the request's signed label
    approval_deadline: datetime | None = None
    review_deadline: datetime | None = None  # an emergency's post-incident review is due by then
    frozen_until: datetime | None = None  # waiting for a freeze window to end
    outcome: Phase | None = None  # while awaiting the post-incident review: how the run ended
    decisions: list[DecisionRecord] = []
    decisions_not_kept: int = 0  # unverified refused attempts beyond the kept ones (all are in history)
    signed_attempts: list[str] = []  # attempt ids of verified signatures: each counts once
    progress: Progress = Progress()
    planned_steps: list[str] = []  # the first apply steps, named as apply runs them (progress.total counts all)
    steps: list[StepRecord] = []
    changed: list[Resource] = []
    skipped: list[Resource] = []
    failed: list[Resource] = []
    checks: list[Check] = []
    warnings: list[str] = []
    uncertain: list[str] = []
    failure: Failure | None = None
    next_action: str = ""
    phase_times: dict[str, datetime] = {}
    continued: int = 0  # how many times this run continued as new to keep its history small
    scheduled: ScheduledRun | None = None  # started by a schedule (verified), or a drift's apply
    live: list[LiveActivity] = []  # running steps, from their heartbeats (set by the client)

    @property
    def retryable(self) -> Retryable:
        if self.failure is None:
            return Retryable.NO
        return FAILURE_TABLE[self.failure.kind][1]

    def exit_code(self) -> ExitCode:
        if self.outcome is not None and not self.phase.terminal:  # applied; only the review is open
            return self.model_copy(update={"phase": self.outcome, "outcome": None}).exit_code()
        if self.phase in (Phase.FAILED, Phase.CANCELLED) and self.failure is not None:
            return FAILURE_TABLE[self.failure.kind][0]
        if self.phase is Phase.PLANNED and self.plan is not None and self.plan.has_changes:
            return ExitCode.CHANGES_PENDING
        return exit_code_for_phase(self.phase)

    @property
    def approvals(self) -> list[DecisionRecord]:
        """The approvals that count (accepted, not voided)."""
        return [d for d in self.decisions if d.accepted and d.decision is Decision.APPROVE]

    @property
    def cancel_request(self) -> DecisionRecord | None:
        """The accepted cancel, if one is in effect: the run stops at its next safe point."""
        return next((d for d in self.decisions if d.accepted and d.decision is Decision.CANCEL), None)

    @property
    def ending_decision(self) -> DecisionRecord | None:
        """The accepted decision that ended a rejected or cancelled run: who, when and why."""
        wanted = {Phase.REJECTED: Decision.REJECT, Phase.CANCELLED: Decision.CANCEL}.get(self.phase)
        return next((d for d in self.decisions if d.accepted and d.decision is wanted), None)

    @property
    def decision_scope(self) -> str:
        """What every decision's signature names as its run."""
        return f"{self.workflow_id}/{self.first_run_id}"


# RunInput and Continuation refer to models defined after them.
Continuation.model_rebuild()
RunInput.model_rebuild()
