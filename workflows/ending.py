"""How a run ends, as a value: `Ending` is what `Lifecycle.finish` receives, `Stop` carries it up.

Deep inside a step, the only way out of the procedure is to raise; `Stop` is the one
exception that does, and `finish` is the one place that decides what it means.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.failures import FailureKind
    from contracts.phases import Phase
    from contracts.run import Failure


@dataclass(frozen=True)
class Ending:
    phase: Phase  # the terminal phase asked for; `finish` may refine it (a cancel that cannot undo)
    failure: Failure | None = None
    next_action: str = ""

    @classmethod
    def failed(cls, kind: FailureKind, message: str, step: str = "") -> Ending:
        return cls(Phase.FAILED, Failure(kind=kind, message=message, step=step))


class Stop(Exception):
    """Leave the procedure now; `finish` takes the ending from here."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.phase.value)
        self.ending = ending


def stop(kind: FailureKind, message: str, step: str = "") -> Stop:
    return Stop(Ending.failed(kind, message, step))
