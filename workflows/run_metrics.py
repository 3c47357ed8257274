"""What a run reports as metrics as it goes: that it started, each phase it enters (and how long
it waited for a person in the phase it leaves), and how it finished.

Metrics are no commands: the SDK's workflow meter drops them while a history replays, so each run
counts once, and adding one needs no `workflow.patched`. Names and labels: `contracts.metrics`.

The environment label is the run's own only when this worker serves it (`served`: its policy has
the environment): the environment is the caller's word, and a label may take a bounded set of values.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import MetricMeter

with workflow.unsafe.imports_passed_through():
    from contracts import metrics
    from contracts.phases import Phase
    from contracts.run import RunState

APPROVAL_OUTCOMES = {Phase.REJECTED: "rejected", Phase.EXPIRED: "expired", Phase.CANCELLED: "cancelled"}
REVIEW_OUTCOMES = {Phase.SUCCEEDED: "marked_done", Phase.FAILED: "aborted", Phase.CANCELLED: "cancelled"}


def started(state: RunState, meter: MetricMeter | None = None, *, served: bool = True) -> None:
    """`meter`: the workflow's (default), or a test's."""
    meter = meter or workflow.metric_meter()
    counter = meter.create_counter(metrics.RUNS_STARTED.name, metrics.RUNS_STARTED.description)
    counter.add(1, {**_labels(state, served), "mode": state.mode.value})


def phase_changed(
    state: RunState,
    left: Phase,
    entered: Phase,
    stayed: timedelta | None,
    meter: MetricMeter | None = None,
    *,
    served: bool = True,
) -> None:
    meter = meter or workflow.metric_meter()
    labels = _labels(state, served)
    meter.create_counter(metrics.PHASES_ENTERED.name, metrics.PHASES_ENTERED.description).add(
        1, {**labels, "phase": entered.value}
    )
    if stayed is None:
        return
    if left is Phase.AWAITING_APPROVAL:  # approved: on to the re-plan (or a freeze window)
        outcome, wait = APPROVAL_OUTCOMES.get(entered, "approved"), metrics.APPROVAL_WAIT
    elif left is Phase.NEEDS_REVIEW:  # retried: back to the phase it came from
        outcome, wait = REVIEW_OUTCOMES.get(entered, "retried"), metrics.REVIEW_WAIT
    else:
        return
    histogram = meter.create_histogram_float(wait.name, wait.description, "s")
    histogram.record(stayed.total_seconds(), {**labels, "outcome": outcome})


def finished(state: RunState, phase: Phase, meter: MetricMeter | None = None, *, served: bool = True) -> None:
    meter = meter or workflow.metric_meter()
    counter = meter.create_counter(metrics.RUNS_FINISHED.name, metrics.RUNS_FINISHED.description)
    counter.add(1, {**_labels(state, served), "phase": phase.value})


def _labels(state: RunState, served: bool) -> dict[str, str | int | float | bool]:
    return {"kind": state.kind, "environment": state.environment if served else metrics.UNSERVED_ENVIRONMENT}
