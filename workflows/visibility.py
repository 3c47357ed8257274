"""What others see of a run while it runs: its search attributes (`opsctl list`, the Web UI's list)
and its current details (the run's page in the Web UI).

Both are brought up to date once per activation, when the workflow next waits, not at every change.
Entering a phase, recording the plan and entering the next phase in one workflow task were an
upsert of every attribute each: a history event and a visibility write for the server, three
times over where one says it all. Now a run upserts what changed since its last upsert; its first
upsert sets every attribute, so a caller's start-time values never stand. The current details
(markdown, rendered from the whole state) are rendered once per activation too; they are not
in the history, so that needs no patch.

Runs started before this replay as they ran: every change upserted every attribute at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from contracts.search_attributes import SEARCH_ATTRIBUTES

# Decided with admission's patches, before the run's first local activity (`admission.decide_patches`).
ONCE_PER_ACTIVATION = "search-attributes-once-per-activation"

_KEYS = {
    name: SearchAttributeKey.for_bool(name) if kind == "Bool" else SearchAttributeKey.for_keyword(name)
    for name, kind in SEARCH_ATTRIBUTES.items()
}
_NEVER_SET = object()


class RunVisibility:
    def __init__(self, details: Callable[[], str]) -> None:
        self._details = details  # the current details, rendered from the run's state as it is now
        self._details_due = False
        self._pending: dict[str, Any] = {}
        self._published: dict[str, Any] = {}
        self._flush_scheduled = False

    def publish(self, values: dict[str, Any]) -> None:
        """Set these search attributes (by name) once the workflow next waits."""
        if not workflow.patched(ONCE_PER_ACTIVATION):
            workflow.upsert_search_attributes(_updates(values))
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
        if self._details_due:
            self._details_due = False
            workflow.set_current_details(self._details())
        pending, self._pending = self._pending, {}
        changed = {name: value for name, value in pending.items() if self._published.get(name, _NEVER_SET) != value}
        if changed:
            workflow.upsert_search_attributes(_updates(changed))
            self._published.update(changed)

    def _flush_soon(self) -> None:
        """After the running coroutine yields, still in this activation: its commands stay in this workflow task."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)


def _updates(values: dict[str, Any]) -> list[SearchAttributeUpdate[Any]]:
    return [_KEYS[name].value_set(value) for name, value in values.items()]
