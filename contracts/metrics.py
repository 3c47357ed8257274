"""The metrics opsctl's workers emit: one definition for the code that records them, the README,
and the example alert rules in `deploy/` (a test checks every name those rules use is here).

Names and labels only (no SDK import: contracts stay pure). `labels` are opsctl's; Temporal's meter
adds `namespace` and `task_queue` to every run and step metric, and `workflow_type` (a run's) or
`activity_type` (a step's). Label values are bounded on purpose: a step is labelled by its activity
type, never by its name (a sweep names each batch), no label carries a run id, and a run's environment
(the caller's word) labels its metrics only when the worker serves it, else `unserved`. Temporal's own
SDK metrics (`temporal_…`) are served beside these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    type: str  # counter, histogram or gauge
    labels: tuple[str, ...]
    description: str
    buckets: tuple[float, ...] = ()  # histograms: upper bounds, in the metric's unit


# The environment label of a run for an environment the worker does not serve (any string a caller sends).
UNSERVED_ENVIRONMENT = "unserved"

RUNS_STARTED = Metric(
    "opsctl_runs_started",
    "counter",
    ("kind", "environment", "mode"),
    "runs that started (a continue-as-new is not one)",
)
RUNS_FINISHED = Metric(
    "opsctl_runs_finished", "counter", ("kind", "environment", "phase"), "runs that reached a terminal phase"
)
PHASES_ENTERED = Metric(
    "opsctl_phases_entered", "counter", ("kind", "environment", "phase"), "phase transitions, by the phase entered"
)
STEP_DURATION = Metric(
    "opsctl_step_duration_seconds",
    "histogram",
    ("kind", "outcome"),
    "one activity attempt, start to end; outcome is ok or the failure's class",
    (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
STEP_FAILURES = Metric(
    "opsctl_step_failures",
    "counter",
    ("kind", "error_class", "retryable"),
    "failed activity attempts by error class; retryable=true ones are retried while the step's window lasts",
)
# Seconds a person may take: a minute to a week.
WAIT_BUCKETS = (60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600, 7 * 86400)
APPROVAL_WAIT = Metric(
    "opsctl_approval_wait_seconds",
    "histogram",
    ("kind", "environment", "outcome"),
    "from the plan being ready for approval to the decision: approved, rejected, expired or cancelled",
    WAIT_BUCKETS,
)
REVIEW_WAIT = Metric(
    "opsctl_review_wait_seconds",
    "histogram",
    ("kind", "environment", "outcome"),
    "time in needs_review until an operator answered: retried, marked_done, aborted or cancelled",
    WAIT_BUCKETS,
)
RUNS_WAITING = Metric(
    "opsctl_runs_waiting",
    "gauge",
    ("task_queue", "phase"),
    "open runs waiting for a person in this phase (Temporal visibility, polled by every worker)",
)
RUNS_WAITING_OLDEST = Metric(
    "opsctl_runs_waiting_oldest_seconds",
    "gauge",
    ("task_queue", "phase"),
    "how long the longest-waiting run has been in this phase (0: none waits)",
)
APPROVALS_EXPIRING = Metric(
    "opsctl_approvals_expiring",
    "gauge",
    ("task_queue", "within"),
    "runs awaiting approval whose approval deadline falls within the next 1h or 4h",
)

METRICS: tuple[Metric, ...] = (
    RUNS_STARTED,
    RUNS_FINISHED,
    PHASES_ENTERED,
    STEP_DURATION,
    STEP_FAILURES,
    APPROVAL_WAIT,
    REVIEW_WAIT,
    RUNS_WAITING,
    RUNS_WAITING_OLDEST,
    APPROVALS_EXPIRING,
)

# The phases a run waits in for a person: each gets a `opsctl_runs_waiting` series.
WAITING_PHASES = ("awaiting_approval", "needs_review", "waiting_for_window", "awaiting_review", "review_overdue")
# ... and those whose longest wait is measured (each run waiting there is asked its state).
TIMED_PHASES = ("awaiting_approval", "needs_review")
EXPIRY_WINDOWS = {"1h": 3600, "4h": 4 * 3600}


def series_names() -> set[str]:
    """Every name a Prometheus scrape can show for these metrics (a histogram is three series)."""
    names: set[str] = set()
    for metric in METRICS:
        if metric.type == "histogram":
            names |= {f"{metric.name}_bucket", f"{metric.name}_sum", f"{metric.name}_count"}
        else:
            names.add(metric.name)
    return names
