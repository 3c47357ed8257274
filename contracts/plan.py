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


class Finding(BaseModel):
    """Something a reviewer must see about one action (a lint finding of a migration's SQL)."""

    model_config = ConfigDict(frozen=True)

    statement: int = 0  # 1-based statement it concerns; 0: the action as a whole
    severity: str
    rule: str
    message: str
    acknowledged: bool = False  # accepted on purpose by the request
    note: str = ""  # the request's reason for accepting it


class PlannedAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    resource_type: str
    resource_id: str
    reason: str
    reversible: bool
    rollback: Rollback
    observed: dict[str, str] = {}
    # A group: the same action, for the same reason, on each of these ids (e.g. 10,000 volumes).
    # Then `resource_id` names the group. Keeps large plans small enough for workflow payloads.
    resource_ids: list[str] = []
    findings: list[Finding] = []

    @property
    def count(self) -> int:
        return len(self.resource_ids) or 1


class Plan(BaseModel):
    """Ordered actions plus the observed facts they rest on. Nothing time-varying goes in."""

    model_config = ConfigDict(frozen=True)

    kind: str
    target: str
    actions: list[PlannedAction]

    @property
    def has_changes(self) -> bool:
        return any(step.action is not Action.NOOP for step in self.actions)

    @property
    def deletions(self) -> int:
        """How many resources the plan deletes: what blast-radius policies limit."""
        return sum(step.count for step in self.actions if step.action is Action.DELETE)

    def hash(self, include_noops: bool = False) -> str:
        """sha256 of the canonical JSON form of what the plan changes: the identity a human approves.

        `noop` entries (skipped resources, already-applied migrations, the source a replica
        reads) are context for the reviewer, not changes: they stay out of the hash, so the
        world moving around a plan does not void its approval while what it changes holds.
        Fields at their defaults are left out too, so adding an optional field to the
        contract never changes the hash of a plan that does not use it.
        """
        body = self.model_dump(mode="json", exclude_defaults=True)
        if not include_noops:  # True only for runs started before this rule (workflow.patched)
            body["actions"] = [step for step in body["actions"] if step["action"] != Action.NOOP.value]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
