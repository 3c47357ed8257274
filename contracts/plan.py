"""The plan: what a run will do, computed without mutating, identified by its hash."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Action(StrEnum):
    CREATE = "create"
    MODIFY = "modify"
    DELETE = "delete"
    NOOP = "noop"


class Rollback(StrEnum):
    NONE = "none"
    COMPENSATE = "compensate"
    RESTORE_FROM_SNAPSHOT = "restore-from-snapshot"


class PlannedAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    resource_type: str
    resource_id: str
    reason: str
    reversible: bool
    rollback: Rollback
    observed: dict[str, str] = {}


class Plan(BaseModel):
    """Ordered actions plus the observed facts they rest on. Nothing time-varying goes in."""

    model_config = ConfigDict(frozen=True)

    kind: str
    target: str
    actions: list[PlannedAction]

    @property
    def has_changes(self) -> bool:
        return any(step.action is not Action.NOOP for step in self.actions)

    def hash(self) -> str:
        """sha256 of the canonical JSON form: the identity a human approves."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
