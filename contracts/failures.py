"""The failure taxonomy and the exit-code table: one place for what CI may rely on."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Stable exit codes of the `opsctl` CLI (documented in README.md)."""

    SUCCESS = 0
    UNEXPECTED = 1
    INVALID_INPUT = 2
    VALIDATION_FAILED = 3
    DEPENDENCY_FAILURE = 4
    PARTIAL_SUCCESS = 5
    DENIED = 6
    AWAITING_APPROVAL = 7
    NEEDS_REVIEW = 8
    CHANGES_PENDING = 10
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it): the command stopped, the run goes on


# The failure type of a run the worker refused before it began: its input was no RunInput (a raw start).
INVALID_WORKFLOW_INPUT = "InvalidWorkflowInput"


class FailureKind(StrEnum):
    """Why a run (or a step) failed. Activities raise ApplicationError with type=<value>."""

    VALIDATION = "validation"
    POLICY_DENIED = "policy_denied"
    AUTH = "auth"
    DEPENDENCY_UNAVAILABLE = "dependency_unavailable"
    CONFLICT = "conflict"
    PARTIAL_APPLICATION = "partial_application"
    UNSAFE = "unsafe"
    UNKNOWN = "unknown"


class Retryable(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


# What each failure means for the caller: the exit code and whether retrying can help.
FAILURE_TABLE: dict[FailureKind, tuple[ExitCode, Retryable]] = {
    FailureKind.VALIDATION: (ExitCode.VALIDATION_FAILED, Retryable.NO),
    FailureKind.POLICY_DENIED: (ExitCode.DENIED, Retryable.NO),
    FailureKind.AUTH: (ExitCode.DEPENDENCY_FAILURE, Retryable.NO),
    FailureKind.DEPENDENCY_UNAVAILABLE: (ExitCode.DEPENDENCY_FAILURE, Retryable.YES),
    FailureKind.CONFLICT: (ExitCode.DEPENDENCY_FAILURE, Retryable.YES),
    FailureKind.PARTIAL_APPLICATION: (ExitCode.PARTIAL_SUCCESS, Retryable.UNKNOWN),
    FailureKind.UNSAFE: (ExitCode.VALIDATION_FAILED, Retryable.NO),
    FailureKind.UNKNOWN: (ExitCode.NEEDS_REVIEW, Retryable.UNKNOWN),
}

# Failure kinds an activity retry can never fix: the workflow gives up on them at once.
NON_RETRYABLE_KINDS: tuple[str, ...] = tuple(
    kind.value for kind, (_, retry) in FAILURE_TABLE.items() if retry is Retryable.NO
)


class OpsctlError(Exception):
    """A failure the CLI reports with a message, a hint and its exit code (never a traceback)."""

    def __init__(self, kind: FailureKind | ExitCode, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = kind if isinstance(kind, ExitCode) else FAILURE_TABLE[kind][0]
        self.kind = kind if isinstance(kind, FailureKind) else None
