"""Heartbeats while an activity runs: a killed worker is noticed in seconds, and checkpoints survive.

Every step activity runs `kept_alive`: a background task heartbeats every KEEPALIVE seconds
with the latest details the activity reported through `report` (progress and checkpoint), or,
until it reports any, with the details the previous attempt left — so a keep-alive never
erases the checkpoint a retry resumes from. The workflow gives steps a short heartbeat
timeout; the worker throttles what actually reaches the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

KEEPALIVE = 2.0  # seconds between heartbeats; the workflow's heartbeat timeout is 10 s
# The least time between two heartbeats `report` sends. Each one is encoded, sealed and handed to
# the SDK's core, which sends at most one per throttle interval (seconds) anyway: a backfill
# reporting after every batch spent that on each of hundreds of batches a second.
REPORT_EVERY = 0.25


@dataclass
class _Latest:
    details: Sequence[Any] = field(default_factory=tuple)
    sent: float = -REPORT_EVERY  # when `report` last heartbeat (monotonic): the first report goes at once


_latest: ContextVar[_Latest | None] = ContextVar("opsctl_heartbeat_details", default=None)


def report(details: dict[str, Any]) -> None:
    """Heartbeat with these details (`{done, total, unit, checkpoint?, paused?}`): now, unless `report`
    did less than REPORT_EVERY ago; kept for the keep-alive, which sends them within KEEPALIVE."""
    latest = _latest.get()
    if latest is None:  # outside `kept_alive`
        activity.heartbeat(details)
        return
    latest.details = (details,)
    now = time.monotonic()
    if now - latest.sent >= REPORT_EVERY:
        latest.sent = now
        activity.heartbeat(details)


@contextlib.asynccontextmanager
async def kept_alive() -> AsyncIterator[None]:
    if not activity.in_activity():  # called directly (a unit test): nothing to keep alive
        yield
        return
    latest = _Latest(tuple(activity.info().heartbeat_details))
    token = _latest.set(latest)

    async def beat() -> None:
        # The first heartbeat waits a beat: the SDK sends a first heartbeat at once and throttles
        # the rest, so an activity that reports progress early gets its checkpoint to the server first.
        while True:
            await asyncio.sleep(KEEPALIVE)
            activity.heartbeat(*latest.details)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _latest.reset(token)
