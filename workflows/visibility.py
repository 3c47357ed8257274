"""What others see of a run while it runs: its search attributes (`opsctl list`, the Web UI's list)
and its current details (the run's page in the Web UI).

Both are brought up to date once per activation, when the workflow next waits, not at every change.
Entering a phase, recording the plan and entering the next phase in one workflow task were an
upsert of every attribute each: a history event and a visibility write for the server, three
times over where one says it all. Now a run upserts what changed since its last upsert; its first
upsert sets every attribute, so a caller's start-time values do not stand once the run has its
settings. A workflow task has one activation, unless it waits on a local activity (a schedule's
run asks Temporal about its schedule before planning): then each activation upserts what it
changed. The current details (markdown, rendered from the whole state) are rendered once per
activation too; they are not in the history, so that needs no patch.

Runs started before this replay as they ran: every change upserted every attribute at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from contracts.search_attributes import SEARCH_ATTRIBUTES

_KEYS = {
    name: SearchAttributeKey.for_bool(name) if kind == "Bool" else SearchAttributeKey.for_keyword(name)
    for name, kind in SEARCH_ATTRIBUTES.items()
}
_NEVER_SET = object()


class RunVisibility:
    """What can fail is done where the workflow calls: an attribute's name and type are checked in
    `publish`, so a mistake fails that workflow task as before. The flush then cannot fail (the
    loop would only log it, and the task would be committed without its upsert); the current
    details, which are not in the history, fall back to a line saying they could not be rendered."""

    def __init__(self, details: Callable[[], str]) -> None:
        self._details = details  # the current details, rendered from the run's state as it is now
        self._batched: bool | None = None  # decided in the run's first activation
        self._details_due = False
        self._pending: dict[str, Any] = {}
        self._published: dict[str, Any] = {}
        self._flush_scheduled = False

    def decide(self) -> None:
        """In the run's first activation, after `patches.decide`."""
        self._batched = patches.has(patches.ONCE_PER_ACTIVATION)

    @property
    def batched(self) -> bool:
        """Has the run this patch (it upserts once per activation, and a cancel while its policy loads
        ends through the lifecycle)?"""
        assert self._batched is not None, "decided in the run's first activation"
        return self._batched

    def publish(self, values: dict[str, Any]) -> None:
        """Set these search attributes (by name) once the workflow next waits."""
        updates = _updates(values)  # checked now: a wrong name or type fails this workflow task
        if not self.batched:
            workflow.upsert_search_attributes(updates)
            return
        self._pending.update(values)
        self._flush_soon()

    def describe(self) -> None:
        """The state changed: render the current details again once the workflow next waits."""
        self._details_due = True
        self._flush_soon()

    def flush(self) -> None:
        """Bring both up to date now: before the run closes or continues as new, nothing may follow."""
        self._flush_scheduled = False
        published = self._published
        changed = {name: value for name, value in self._pending.items() if published.get(name, _NEVER_SET) != value}
        self._pending.clear()
        if changed:
            workflow.upsert_search_attributes(_updates(changed))
            published.update(changed)
        if self._details_due:
            self._details_due = False
            workflow.set_current_details(self._rendered())

    def _rendered(self) -> str:
        try:
            return self._details()
        except Exception:  # a person's view of the run; the run goes on, and its state query answers
            workflow.logger.exception("the run's current details could not be rendered")
            return "The run's details could not be rendered; `opsctl status` shows its state."

    def _flush_soon(self) -> None:
        """After the running coroutine yields, still in this activation: its commands stay in this workflow task."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)


def _updates(values: dict[str, Any]) -> list[SearchAttributeUpdate[Any]]:
    """Raises KeyError for a name opsctl has not registered, TypeError for a value of the wrong type."""
    updates = []
    for name, value in values.items():
        key: SearchAttributeKey[Any] = _KEYS[name]
        if not isinstance(value, key.origin_value_type):
            raise TypeError(f"search attribute {name} takes {key.origin_value_type.__name__}, not {value!r}")
        updates.append(key.value_set(value))
    return updates
