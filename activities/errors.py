"""Failure classification at the adapter boundary.

Activities raise `ApplicationError(type=<FailureKind>)`. Transient classes stay retryable
(the workflow's retry policy backs off); permanent ones are non-retryable. Anything we
cannot classify gets one short retry, then goes to the workflow as `unknown`, which
lands the run in needs_review with the evidence.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import heartbeats
from contracts.failures import FailureKind

P = ParamSpec("P")
R = TypeVar("R")

# Attempts an unclassified error gets before it is handed to a human.
UNKNOWN_ATTEMPTS = 2

TRANSIENT = {FailureKind.DEPENDENCY_UNAVAILABLE, FailureKind.CONFLICT}


def failure(kind: FailureKind, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind.value, non_retryable=kind not in TRANSIENT)


def classified(
    classify: Callable[[BaseException], ApplicationError | None],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap an activity so every exception leaves it classified, and so it heartbeats while it runs.

    `classify` maps library errors (SQLSTATE, AWS codes) to a failure; None means unknown.
    The heartbeats (see `activities.heartbeats`) let a killed worker's step be retried within
    the workflow's short heartbeat timeout instead of its whole start-to-close timeout.
    """

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                async with heartbeats.kept_alive():
                    result = await fn(*args, **kwargs)
                fits(result)
                return result
            except ApplicationError as exc:
                raise bounded(exc) from None
            except Exception as exc:
                known = classify(exc)
                if known is None:
                    attempt = activity.info().attempt if activity.in_activity() else 1
                    known = ApplicationError(
                        f"{type(exc).__name__}: {exc}",
                        type=FailureKind.UNKNOWN.value,
                        non_retryable=attempt >= UNKNOWN_ATTEMPTS,
                    )
                # The whole chain goes to the worker's log; the run's history gets a bounded message
                # (Temporal refuses a failure past its size limit, and then shows nothing at all).
                _log_full(exc)
                raise bounded(known, logged=True) from None

        return wrapper

    return decorate


MESSAGE_LIMIT = 1000  # characters of a failure message kept in the run's history
# Temporal refuses a payload over 2 MB (and warns from 512 KB); a plan is also carried in the run's
# state and result beside the request (at most 512 KB), so one result gets at most 1 MB.
RESULT_LIMIT = 1_000_000


def fits(result: object) -> None:
    """Refuse, for good, a result too big for the run's history: retrying would only fail the same way."""
    from pydantic_core import to_json

    size = len(to_json(result))
    if size > RESULT_LIMIT:
        step = activity.info().activity_type if activity.in_activity() else "the step"
        raise failure(
            FailureKind.VALIDATION,
            f"{step} produced {size:,} bytes, more than the {RESULT_LIMIT:,} a run keeps of one step "
            "(Temporal refuses payloads over 2 MB): split the request into smaller ones "
            "(a migration into files of fewer statements, a sweep into narrower tag filters)",
        )


def bounded(error: ApplicationError, logged: bool = False) -> ApplicationError:
    """`error` with its message cut to MESSAGE_LIMIT (saying where the rest is) and without details."""
    message = error.message
    if len(message) <= MESSAGE_LIMIT and not error.details and not logged:
        return error
    where = "the worker's log" if logged else "the activity's own error"
    attempt = ""
    if activity.in_activity():
        info = activity.info()
        attempt = f"{info.activity_type} attempt {info.attempt}"
        where += f" (run {info.workflow_id}, {attempt})"
    if len(message) > MESSAGE_LIMIT:
        message = f"{message[: MESSAGE_LIMIT - 1]}… [cut; the whole error is in {where}]"
    elif logged and attempt:  # a library error: its whole chain and traceback are in the worker's log
        message = f"{message} [worker log: {attempt}]"
    return ApplicationError(message, type=error.type, non_retryable=error.non_retryable)


def _log_full(exc: BaseException) -> None:
    if activity.in_activity():
        info = activity.info()
        activity.logger.warning(
            "step failed: %s attempt %d of run %s", info.activity_type, info.attempt, info.workflow_id, exc_info=exc
        )


def first_known(
    *classifiers: Callable[[BaseException], ApplicationError | None],
) -> Callable[[BaseException], ApplicationError | None]:
    """Combine classifiers: the first that recognises the error wins."""

    def classify(exc: BaseException) -> ApplicationError | None:
        for each in classifiers:
            known = each(exc)
            if known is not None:
                return known
        return None

    return classify
