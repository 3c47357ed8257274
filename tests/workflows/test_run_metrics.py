"""A run's metrics as its phases change: what is counted and observed, with which labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from contracts.phases import Phase
from tests.workflows.test_run_record import record
from workflows import run_metrics
from workflows.run_record import RunRecord

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def recorded(changes: list[tuple[Phase, Phase, timedelta | None]]) -> list[tuple[str, Any, dict[str, Any]]]:
    buffer = MetricBuffer(100)
    meter = Runtime(telemetry=TelemetryConfig(metrics=buffer)).metric_meter
    run = record()
    for left, entered, stayed in changes:
        run_metrics.phase_changed(run.state, left, entered, stayed, meter)
    updates = buffer.retrieve_updates()
    return [(u.metric.name, u.value, {k: v for k, v in u.attributes.items() if k != "service_name"}) for u in updates]


def test_leaving_the_approval_wait_observes_how_long_it_lasted_and_how_it_ended() -> None:
    hour = timedelta(hours=1)
    updates = recorded(
        [(Phase.AWAITING_APPROVAL, Phase.REPLANNING, hour), (Phase.AWAITING_APPROVAL, Phase.EXPIRED, hour)]
    )
    waits = [(value, labels["outcome"]) for name, value, labels in updates if name == "opsctl_approval_wait_seconds"]
    assert [(3600.0, "approved"), (3600.0, "expired")] == waits


def test_leaving_needs_review_observes_the_review_wait_by_the_operator_s_answer() -> None:
    minute = timedelta(minutes=1)
    answers = [(Phase.APPLYING, "retried"), (Phase.SUCCEEDED, "marked_done"), (Phase.FAILED, "aborted")]
    updates = recorded([(Phase.NEEDS_REVIEW, entered, minute) for entered, _ in answers])
    waits = [labels["outcome"] for name, _, labels in updates if name == "opsctl_review_wait_seconds"]
    assert [outcome for _, outcome in answers] == waits


def test_every_phase_entered_is_counted_with_the_run_s_kind_and_environment() -> None:
    updates = recorded([(Phase.PLANNING, Phase.AWAITING_APPROVAL, None), (Phase.APPLYING, Phase.VERIFYING, None)])
    entered = [labels for name, _, labels in updates if name == "opsctl_phases_entered"]
    assert [
        {"kind": "RotateDbCredential", "environment": "prod", "phase": "awaiting_approval"},
        {"kind": "RotateDbCredential", "environment": "prod", "phase": "verifying"},
    ] == entered
    assert {"opsctl_phases_entered"} == {name for name, _, _ in updates}  # no wait observed: none was timed


def test_the_record_reports_each_phase_change_with_the_time_spent_in_the_phase_left() -> None:
    seen: list[tuple[Phase, Phase, timedelta | None]] = []
    clock = iter([NOW, NOW + timedelta(minutes=5)])
    earlier = record(phase=Phase.PLANNING)
    run = RunRecord(earlier.state, earlier.policy, clock=lambda: next(clock), phase_changed=lambda *c: seen.append(c))
    run.enter(Phase.AWAITING_APPROVAL)
    run.enter(Phase.REJECTED)
    assert [
        (Phase.PLANNING, Phase.AWAITING_APPROVAL, None),  # planning's start is not in this record
        (Phase.AWAITING_APPROVAL, Phase.REJECTED, timedelta(minutes=5)),
    ] == seen


def test_a_run_the_worker_does_not_serve_is_labelled_unserved_not_by_the_caller_s_environment() -> None:
    buffer = MetricBuffer(100)
    meter = Runtime(telemetry=TelemetryConfig(metrics=buffer)).metric_meter
    state = record().state
    run_metrics.started(state, meter, served=False)
    run_metrics.phase_changed(state, Phase.AWAITING_APPROVAL, Phase.EXPIRED, timedelta(hours=1), meter, served=False)
    run_metrics.finished(state, Phase.EXPIRED, meter, served=False)
    environments = {update.attributes["environment"] for update in buffer.retrieve_updates()}
    assert {"unserved"} == environments
