"""The run lifecycle as an explicit state machine: an impossible transition is a bug."""

from __future__ import annotations

from enum import StrEnum

from contracts.failures import ExitCode


class Phase(StrEnum):
    VALIDATING = "validating"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    WAITING_FOR_WINDOW = "waiting_for_window"  # approved, but a freeze is in force
    REPLANNING = "replanning"
    APPLYING = "applying"
    VERIFYING = "verifying"
    COMPENSATING = "compensating"
    NEEDS_REVIEW = "needs_review"
    AWAITING_REVIEW = "awaiting_review"  # an emergency apply ended; its post-incident review is open
    REVIEW_OVERDUE = "review_overdue"  # ... and its review deadline has passed
    # Terminal phases.
    PLANNED = "planned"  # a dry run ends here
    SUCCEEDED = "succeeded"
    NO_CHANGES = "no_changes"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        Phase.PLANNED,
        Phase.SUCCEEDED,
        Phase.NO_CHANGES,
        Phase.FAILED,
        Phase.REJECTED,
        Phase.EXPIRED,
        Phase.CANCELLED,
    }
)

# Each phase as the runbook says it: the Web UI, and what a running step belongs to (`opsctl status`).
PHASE_WORDS = {
    Phase.VALIDATING: "Validating the request",
    Phase.PLANNING: "Computing the plan (read-only)",
    Phase.AWAITING_APPROVAL: "Awaiting approval",
    Phase.WAITING_FOR_WINDOW: "Approved; waiting for the change freeze to end",
    Phase.REPLANNING: "Re-planning before apply (read-only)",
    Phase.APPLYING: "Applying",
    Phase.VERIFYING: "Verifying the outcome",
    Phase.COMPENSATING: "Undoing the applied changes",
    Phase.NEEDS_REVIEW: "Needs review by an operator",
    Phase.AWAITING_REVIEW: "Emergency applied; post-incident review open",
    Phase.REVIEW_OVERDUE: "Emergency applied; post-incident review OVERDUE",
    Phase.PLANNED: "Planned (dry run)",
    Phase.SUCCEEDED: "Succeeded",
    Phase.NO_CHANGES: "No changes needed",
    Phase.FAILED: "Failed",
    Phase.REJECTED: "Rejected",
    Phase.EXPIRED: "Expired before approval",
    Phase.CANCELLED: "Cancelled",
}

_ENDINGS = {Phase.FAILED, Phase.CANCELLED, Phase.NEEDS_REVIEW}
_APPLIED = {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED}  # how a run that changed things can end
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.VALIDATING: frozenset({Phase.PLANNING, Phase.FAILED, Phase.CANCELLED}),
    Phase.PLANNING: frozenset(
        {Phase.AWAITING_APPROVAL, Phase.WAITING_FOR_WINDOW, Phase.APPLYING, Phase.PLANNED, Phase.NO_CHANGES, *_ENDINGS}
    ),
    Phase.AWAITING_APPROVAL: frozenset(
        {Phase.REPLANNING, Phase.WAITING_FOR_WINDOW, Phase.REJECTED, Phase.EXPIRED, Phase.CANCELLED}
    ),
    Phase.WAITING_FOR_WINDOW: frozenset({Phase.REPLANNING, Phase.CANCELLED}),
    Phase.REPLANNING: frozenset({Phase.APPLYING, Phase.AWAITING_APPROVAL, Phase.NO_CHANGES, *_ENDINGS}),
    Phase.APPLYING: frozenset({Phase.VERIFYING, Phase.COMPENSATING, Phase.AWAITING_REVIEW, *_ENDINGS}),
    Phase.VERIFYING: frozenset({Phase.SUCCEEDED, Phase.COMPENSATING, Phase.AWAITING_REVIEW, *_ENDINGS}),
    Phase.COMPENSATING: frozenset({Phase.CANCELLED, Phase.FAILED, Phase.NEEDS_REVIEW, Phase.AWAITING_REVIEW}),
    Phase.NEEDS_REVIEW: frozenset(
        {
            Phase.PLANNING,
            Phase.REPLANNING,
            Phase.APPLYING,
            Phase.VERIFYING,
            Phase.COMPENSATING,
            Phase.AWAITING_REVIEW,
            Phase.SUCCEEDED,
            Phase.FAILED,
            Phase.CANCELLED,
        }
    ),
    Phase.AWAITING_REVIEW: frozenset({Phase.REVIEW_OVERDUE, *_APPLIED}),
    Phase.REVIEW_OVERDUE: frozenset(_APPLIED),
}


class IllegalTransition(RuntimeError):
    """Raised when code asks for a phase change the lifecycle does not allow."""


def check_transition(current: Phase, new: Phase) -> Phase:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"phase {current.value} cannot move to {new.value}")
    return new


def exit_code_for_phase(phase: Phase) -> ExitCode:
    """The exit code a command reports for a run that is in (or ended in) `phase`.

    A FAILED run is mapped by its failure kind instead; see RunResult.exit_code.
    """
    return {
        Phase.AWAITING_APPROVAL: ExitCode.AWAITING_APPROVAL,
        Phase.WAITING_FOR_WINDOW: ExitCode.AWAITING_APPROVAL,  # approved; it waits, and nothing has changed yet
        Phase.NEEDS_REVIEW: ExitCode.NEEDS_REVIEW,
        Phase.REJECTED: ExitCode.DENIED,
        Phase.EXPIRED: ExitCode.DENIED,
        Phase.CANCELLED: ExitCode.DENIED,
        Phase.FAILED: ExitCode.UNEXPECTED,
    }.get(phase, ExitCode.SUCCESS)
