"""How a run ends, as a value: `Ending` is what `Lifecycle.finish` receives, `Stop` carries it up.

Deep inside a step, the only way out of the procedure is to raise; `Stop` is the one
exception that does, and `finish` is the one place that decides what it means.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.exceptions import TimeoutError as StepTimeout

with workflow.unsafe.imports_passed_through():
    from contracts.failures import FailureKind
    from contracts.phases import Phase
    from contracts.run import Failure, RunState


@dataclass(frozen=True)
class Ending:
    phase: Phase  # the terminal phase asked for; `finish` may refine it (a cancel that cannot undo)
    failure: Failure | None = None
    next_action: str = ""
    aborted: bool = False  # an operator answered needs_review with abort

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


_KINDS = {kind.value for kind in FailureKind}


def classify(step: str, err: ActivityError) -> Failure:
    """A step's failure in the taxonomy: the activity's own kind, or unknown (which goes to review)."""
    cause = err.cause
    if err.retry_state is RetryState.TIMEOUT:
        # A transient failure outlasted the step's retry window: not a failure of the request but a
        # question for an operator (is the dependency coming back?), with the last error as evidence.
        last = cause.message if isinstance(cause, ApplicationError | StepTimeout) else str(cause or err)
        return Failure(
            kind=FailureKind.UNKNOWN, message=f"still failing when its retry window closed: {last}", step=step
        )
    if isinstance(cause, ApplicationError) and cause.type in _KINDS:
        return Failure(kind=FailureKind(cause.type), message=cause.message, step=step)
    if isinstance(cause, StepTimeout):
        return Failure(kind=FailureKind.UNKNOWN, message=f"timed out: {cause.message}", step=step)
    return Failure(kind=FailureKind.UNKNOWN, message=str(cause or err), step=step)


def default_next(state: RunState, ending: Ending) -> str:
    """What to do now, for endings that did not say so themselves."""
    if ending.phase is Phase.PLANNED and state.plan is not None and state.plan.has_changes:
        return "apply it with `opsctl apply -f DOC`"
    if ending.phase in (Phase.PLANNED, Phase.NO_CHANGES):
        return "nothing to do: the target is already as requested"
    if ending.phase is Phase.FAILED and ending.failure is not None:
        advice = NEXT_ACTION.get(ending.failure.kind, "review the failure message")
        if ending.failure.kind in (FailureKind.DEPENDENCY_UNAVAILABLE, FailureKind.CONFLICT):
            advice += f": `opsctl rerun {state.workflow_id}`"
        return advice
    return ""


NEXT_ACTION = {
    FailureKind.VALIDATION: "nothing was changed; fix the request (see the message) and submit it again",
    FailureKind.POLICY_DENIED: "nothing was changed; the environment's policy does not allow this request",
    FailureKind.AUTH: "nothing was changed; check the worker's credentials for this target",
    FailureKind.DEPENDENCY_UNAVAILABLE: "nothing was changed; retry when the dependency is reachable",
    FailureKind.CONFLICT: "nothing was changed; another operation holds the target, retry when it is done",
    FailureKind.UNSAFE: "nothing was changed; the request would be unsafe as written",
}
