"""The waiting-runs gauges over more waiting runs than the worker asks: the longest waits still count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from contracts.phases import Phase
from tests.workflows.test_run_record import record
from worker import waiting_runs

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WAITING = waiting_runs.ASKED_PER_PHASE + 10


@dataclass
class Execution:
    id: str
    run_id: str


class Visibility:
    """What Temporal's visibility answers: open runs newest first; each answers its state query."""

    def __init__(self) -> None:
        self.states = {}
        for age in range(WAITING):  # run-0 entered awaiting approval a minute ago, run-59 an hour ago
            state = record().state
            state.phase_times[Phase.AWAITING_APPROVAL.value] = NOW - timedelta(minutes=age + 1)
            state.approval_deadline = NOW + timedelta(hours=24) - timedelta(minutes=age + 1)
            self.states[f"run-{age}"] = state
        self.states["run-59"].approval_deadline = NOW + timedelta(minutes=30)  # the oldest expires soon

    async def count_workflows(self, query: str) -> Any:
        return type("Count", (), {"count": WAITING if "awaiting_approval" in query else 0})()

    async def list_workflows(self, query: str, limit: int | None = None) -> AsyncIterator[Execution]:
        found = [Execution(name, "r") for name in self.states] if "awaiting_approval" in query else []
        for execution in found[:limit]:
            yield execution

    def get_workflow_handle(self, workflow_id: str, run_id: str | None = None) -> Any:
        state = self.states[workflow_id]

        class Handle:
            async def query(self, *_: Any, **__: Any) -> Any:
                return state

        return Handle()


async def test_the_longest_wait_and_the_soonest_expiry_count_when_more_runs_wait_than_are_asked() -> None:
    """Visibility lists the newest first: asking only the first 50 would miss exactly the runs the alerts
    are about (waiting longest, expiring soonest)."""
    buffer = MetricBuffer(100)
    meter = Runtime(telemetry=TelemetryConfig(metrics=buffer)).metric_meter
    await waiting_runs.measure(Visibility(), meter, "q", now=lambda: NOW)  # type: ignore[arg-type]
    gauges = {
        (update.metric.name, update.attributes.get("phase") or update.attributes.get("within")): update.value
        for update in buffer.retrieve_updates()
    }
    assert WAITING == gauges[("opsctl_runs_waiting", "awaiting_approval")]
    assert 60 * 60 == gauges[("opsctl_runs_waiting_oldest_seconds", "awaiting_approval")]
    assert 1 == gauges[("opsctl_approvals_expiring", "1h")]
