"""What the benchmarks read from a run's histories: the continue-as-new chain and its activities' times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory


@dataclass
class ActivityTimes:
    """One activity as its run's history has it (its last attempt's start; retries are inside)."""

    type: str
    scheduled: datetime
    started: datetime | None = None
    closed: datetime | None = None
    attempt: int = 1
    result: Any = None  # the completed event's payloads

    @property
    def seconds(self) -> float:
        assert self.closed is not None
        return (self.closed - self.scheduled).total_seconds()


async def chain(client: Client, workflow_id: str, first_run_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow id, first to last, followed through continue-as-new (not visibility, which lags)."""
    histories, run_id = [], first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = next(
            (
                event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                for event in history.events
                if event.HasField("workflow_execution_continued_as_new_event_attributes")
            ),
            "",
        )
    return histories


def when(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime()


def activities(history: WorkflowHistory) -> list[ActivityTimes]:
    """The run's activities in the order they were scheduled."""
    found: dict[int, ActivityTimes] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            found[event.event_id] = ActivityTimes(name, when(event))
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            found[started.scheduled_event_id].started = when(event)
            found[started.scheduled_event_id].attempt = started.attempt
        else:
            for field in (
                "activity_task_completed_event_attributes",
                "activity_task_failed_event_attributes",
                "activity_task_timed_out_event_attributes",
                "activity_task_canceled_event_attributes",
            ):
                if event.HasField(field):
                    attributes = getattr(event, field)
                    found[attributes.scheduled_event_id].closed = when(event)
                    if field == "activity_task_completed_event_attributes":
                        found[attributes.scheduled_event_id].result = attributes.result
    return list(found.values())
