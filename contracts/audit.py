"""The audit trail of a run, as `opsctl audit` prints it: read from the event history, nothing else.

Stable JSON (`opsctl audit RUN -o json`, `--export FILE` writes one event per line): fields are
only ever added. Each event names the history event it was read from (`run`, `event_id`), so a
reader can check it against `temporal workflow show`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

AUDIT_SCHEMA = "opsctl.audit/v1"


class AuditKind(StrEnum):
    REQUESTED = "requested"  # the run started: who, when, the request document, signed or not
    POLICY = "policy"  # the policy the worker resolved for the run's environment
    PLANNED = "planned"  # a plan (or re-plan) and its hash
    DECISION = "decision"  # an approve/reject/cancel/resolve attempt, with its verdict
    NOTE = "note"  # an operator's note
    STEP = "step"  # a step finished: its result, with the external ids it touched
    RETRY = "retry"  # a step was attempted again after a failure, with the failure's class
    STEP_FAILED = "step_failed"  # a step failed for good (or timed out, or was cancelled)
    VERIFIED = "verified"  # the verification's checks
    CONTINUED = "continued"  # the run continued as new to keep its history small
    OUTCOME = "outcome"  # how the run ended


class AuditEvent(BaseModel):
    at: datetime
    kind: AuditKind
    summary: str  # one line, for people
    actor: str = ""  # who did it, as the history records it
    run: str = ""  # the Temporal run id of the history this came from
    event_id: int = 0
    details: dict[str, Any] = {}


class AuditTrail(BaseModel):
    schema_version: str = AUDIT_SCHEMA
    workflow_id: str
    kind: str = ""
    environment: str = ""
    requester: str = ""
    requested_at: datetime | None = None
    request: dict[str, Any] = {}
    plan_hash: str = ""
    closed: bool = False  # False: the run goes on, later events will follow
    outcome: dict[str, Any] | None = None  # phase, exit_code, failure, once the run closed
    events: list[AuditEvent] = []
    other_executions: list[str] = []  # later executions that reused the id: not this run, not read
