"""The patches a run decides in its first activation, before its first local activity.

A run records one marker for them all, the newest it knows: each marker costs the run a history
event and an upsert of TemporalChangeVersion, and a newer patch implies every older one. A query
that lands while the first local activity runs can split the first workflow task in two; a patch
decided after that local activity has its marker in the second task, and replay then asks for it
while replaying the first (TMPRL1100). So these are decided first, for new and continued runs alike.

Runs started before a patch replay with the markers they recorded: `has` answers from them.
"""

from __future__ import annotations

from temporalio import workflow

# A Temporal cancel (the Web UI's cancel button, `temporal workflow cancel`) is kept as the run's
# cancel decision and judged like `opsctl cancel` (`Lifecycle._shielded`); before, it interrupted
# whatever the run awaited, and was lost when that finished anyway.
KEEPS_TEMPORAL_CANCELS = "lifecycle-keeps-temporal-cancels"
# Search attributes upserted once per activation (`visibility`).
ONCE_PER_ACTIVATION = "search-attributes-once-per-activation"
# Admission's own patches decided up front (`admission.decide_patches`).
PATCHES_FIRST = "admission-decides-patches-first"

FIRST_TASK = (KEEPS_TEMPORAL_CANCELS, ONCE_PER_ACTIVATION, PATCHES_FIRST)  # newest first


def decide() -> None:
    """In the run's first activation: records the newest patch (a new run), or finds the one it has."""
    has(FIRST_TASK[-1])


def has(patch: str) -> bool:
    """Does the run have `patch` (its own marker, or a newer one's)?

    `workflow.patched` remembers its answer, and `any` stops at the first True: once `decide` has
    run, asking again records nothing more.
    """
    newer_or_same = FIRST_TASK[: FIRST_TASK.index(patch) + 1]
    return any(workflow.patched(p) for p in newer_or_same)
