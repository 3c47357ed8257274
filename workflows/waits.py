"""The lifecycle's waits: `workflow.wait_condition`, kept from raising a Temporal cancel into them.

With an SDK flag that processes an activation's jobs as one batch (off today, to become the
default), a wait that ends in the activation where the workflow's cancel arrived raises
`CancelledError` in whatever task awaits it: the shielded procedure (`Lifecycle._shielded`) and the
decision handlers too. A run that keeps Temporal's cancels as decisions (`patches`) hears of the
cancel there, once; here the wait ends as it would have, by its condition or by its timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

from workflows import patches


async def condition(
    fn: Callable[[], bool], *, timeout: timedelta | None = None, timeout_summary: str | None = None
) -> None:
    """`workflow.wait_condition(fn, timeout=…)`; TimeoutError when the timeout ended it."""
    try:
        await workflow.wait_condition(fn, timeout=timeout, timeout_summary=timeout_summary)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.cancelling() or not patches.has(patches.KEEPS_TEMPORAL_CANCELS):
            raise  # this task itself was cancelled, or the run predates keeping the cancels
        if not fn():
            raise TimeoutError("the wait's timeout ended it") from None
