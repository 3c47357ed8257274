"""Child spans for the calls an activity makes (PostgreSQL queries, AWS API calls).

The worker's tracing interceptor sets its tracer here for the length of each activity: a context
variable, so each activity (and each thread `asyncio.to_thread` runs for it) sees its own. With
tracing off nothing is set, `current()` is None, and the adapters' hooks do nothing else.
Imports no OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

_TRACER: ContextVar[Tracer | None] = ContextVar("opsctl_activity_tracer", default=None)


def current() -> Tracer | None:
    """The tracer for spans inside the running activity, or None: tracing is off."""
    return _TRACER.get()


@contextmanager
def tracing_with(tracer: Tracer) -> Iterator[None]:
    token = _TRACER.set(tracer)
    try:
        yield
    finally:
        _TRACER.reset(token)
