"""What a run takes, what its signals carry, and what it reports (state and result).

`RunState` is both the answer of the `state` query and the workflow's return value: the
result of a run is simply its state once the phase is terminal. JSON output is its dump.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from contracts.failures import FAILURE_TABLE, ExitCode, FailureKind, Retryable
from contracts.phases import Phase, exit_code_for_phase
from contracts.plan import Plan
from contracts.policy import Policy
from contracts.request import Request

RESULT_SCHEMA = "opsctl.run/v1"


class Mode(StrEnum):
    APPLY = "apply"
    DRY_RUN = "dry_run"


class RunInput(BaseModel):
    request: Request
    mode: Mode = Mode.APPLY
    policy: Policy
    # The time-skipping test server knows no custom search attributes; tests turn them off.
    search_attributes: bool = True
    # Continue-as-new once a run's history reaches this many events (Temporal warns at 10k).
    history_event_limit: int = 4000
    # Set by continue-as-new: the state to resume applying from, and the operation's progress.
    resume: RunState | None = None
    carry: dict[str, Any] = {}


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"  # needs_review: run the failed step again
    MARK_DONE = "mark_done"  # needs_review: an operator finished the step by hand
    ABORT = "abort"  # needs_review: stop here


class DecisionInput(BaseModel):
    """Every signal carries who, which plan, and why. `attempt_id` lets the CLI find its verdict."""

    actor: str = Field(min_length=1)
    plan_hash: str = ""
    comment: str = ""
    attempt_id: str = ""


class ResolveInput(DecisionInput):
    """The operator's answer to needs_review."""

    resolution: Literal[Decision.RETRY, Decision.MARK_DONE, Decision.ABORT]


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
    details: dict[str, Any] = {}
    last_failure: str = ""

    def describe(self) -> str:
        done, total, unit = self.details.get("done"), self.details.get("total"), self.details.get("unit", "")
        parts = [f"{self.activity_type} (attempt {self.attempt})"]
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
    kind: str
    mode: Mode
    environment: str
    requester: str
    phase: Phase
    request: Request
    plan: Plan | None = None
    plan_hash: str = ""
    required_approvals: int = 0
    approval_deadline: datetime | None = None
    decisions: list[DecisionRecord] = []
    progress: Progress = Progress()
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
    live: list[LiveActivity] = []  # running steps, from their heartbeats (set by the client)

    @property
    def retryable(self) -> Retryable:
        if self.failure is None:
            return Retryable.NO
        return FAILURE_TABLE[self.failure.kind][1]

    def exit_code(self) -> ExitCode:
        if self.phase in (Phase.FAILED, Phase.CANCELLED) and self.failure is not None:
            return FAILURE_TABLE[self.failure.kind][0]
        if self.phase is Phase.PLANNED and self.plan is not None and self.plan.has_changes:
            return ExitCode.CHANGES_PENDING
        return exit_code_for_phase(self.phase)

    def approvals(self) -> list[str]:
        return [d.actor for d in self.decisions if d.decision is Decision.APPROVE and d.accepted]


RunInput.model_rebuild()  # RunInput refers to RunState, defined after it
