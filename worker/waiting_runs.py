"""Runs waiting for a person, as gauges: how many wait in each waiting phase, how long the longest
has waited, and how many approvals expire within the next hour (or four).

Asked of Temporal — its visibility (the `OpsctlPhase` search attribute) and each waiting run's state
query — rather than counted inside workflows: a counter kept by a worker process forgets a run that
another worker picks up after a restart or a cache eviction. Every worker of a task queue reports
the same values, so alert rules take max() over them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.common import MetricMeter

from contracts import metrics
from contracts import search_attributes as sa
from contracts.phases import Phase
from contracts.run import RunState

log = logging.getLogger("opsctl.waiting_runs")

# Runs asked their state per timed phase and poll: a bound on the load. Visibility lists the newest first,
# so the oldest ASKED_PER_PHASE of at most LISTED_PER_PHASE listed are asked: the longest waits (and the
# soonest expiries) are the ones the alerts are about.
ASKED_PER_PHASE = 50
LISTED_PER_PHASE = 10_000
QUERY_TIMEOUT = timedelta(seconds=5)


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _open_in(phase: str, task_queue: str) -> str:
    return f"{sa.PHASE} = {_quoted(phase)} AND ExecutionStatus = 'Running' AND TaskQueue = {_quoted(task_queue)}"


async def measure(
    client: Client, meter: MetricMeter, task_queue: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> None:
    """One look: sets every waiting-runs gauge for `task_queue`."""
    waiting = meter.create_gauge(metrics.RUNS_WAITING.name, metrics.RUNS_WAITING.description)
    oldest = meter.create_gauge(metrics.RUNS_WAITING_OLDEST.name, metrics.RUNS_WAITING_OLDEST.description, "s")
    expiring = meter.create_gauge(metrics.APPROVALS_EXPIRING.name, metrics.APPROVALS_EXPIRING.description)
    for phase in metrics.WAITING_PHASES:
        counted = await client.count_workflows(_open_in(phase, task_queue))
        waiting.set(counted.count, {"task_queue": task_queue, "phase": phase})
    for phase in metrics.TIMED_PHASES:
        states = await _states(client, _open_in(phase, task_queue))
        moment = now()
        entered = [state.phase_times[phase] for state in states if phase in state.phase_times]
        longest = max((moment - at for at in entered), default=timedelta(0))
        oldest.set(int(longest.total_seconds()), {"task_queue": task_queue, "phase": phase})
        if phase == Phase.AWAITING_APPROVAL.value:
            left = [state.approval_deadline - moment for state in states if state.approval_deadline is not None]
            for within, seconds in metrics.EXPIRY_WINDOWS.items():
                soon = sum(1 for remaining in left if remaining <= timedelta(seconds=seconds))
                expiring.set(soon, {"task_queue": task_queue, "within": within})


async def _states(client: Client, query: str) -> list[RunState]:
    states: list[RunState] = []
    listed = [execution async for execution in client.list_workflows(query, limit=LISTED_PER_PHASE)]
    for execution in listed[-ASKED_PER_PHASE:]:  # the oldest: visibility lists open runs newest first
        try:
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            states.append(await handle.query("state", result_type=RunState, rpc_timeout=QUERY_TIMEOUT))
        except Exception as exc:  # a run that ended meanwhile, or does not answer: skip it
            log.debug("waiting run %s did not answer its state query: %s", execution.id, type(exc).__name__)
    return states


async def watch(client: Client, meter: MetricMeter, task_queue: str, interval: float) -> None:
    """Measure every `interval` seconds until cancelled; a failed look is logged and tried again."""
    failing = False
    while True:
        try:
            await measure(client, meter, task_queue)
            failing = False
        except Exception as exc:  # Temporal unreachable for a while: the gauges wait, runs go on
            if not failing:
                log.warning("cannot count the waiting runs: %s: %s", type(exc).__name__, exc)
            failing = True
        await asyncio.sleep(interval)
