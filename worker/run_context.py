"""What every activity knows of the run it serves, and what it reports: the worker interceptor.

The workflow side puts the run's environment into an `opsctl-run` header of each activity it
schedules (a header is no command: replay ignores it; it travels in plain text, like the search
attribute that already says the environment — a step's name does not go there: with payload
encryption on, the history holds it encrypted, as the activity's summary). The activity side reads
it back into `current()` — for the log lines and spans of that activity — and reports
each attempt: a `opsctl_step_duration_seconds` observation, a `opsctl_step_failures` count by error
class, and one log line with its step, attempt, duration and outcome. Operation code stays as it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import temporalio.api.common.v1
from temporalio import activity, workflow
from temporalio.converter import PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from contracts import metrics

HEADER = "opsctl-run"
log = logging.getLogger("opsctl.steps")


@dataclass(frozen=True)
class RunContext:
    """The run an activity attempt serves: ids and kind from Temporal, environment and step from the header."""

    workflow_id: str = ""  # opsctl's run id
    run_id: str = ""  # Temporal's run id of the execution
    kind: str = ""
    environment: str = ""
    step: str = ""  # the activity type (its name in the Web UI is the workflow's StartActivity span's)
    attempt: int = 0

    def log_fields(self) -> dict[str, Any]:
        fields = {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "kind": self.kind,
            "environment": self.environment,
            "step": self.step,
            "attempt": self.attempt,
        }
        return {key: value for key, value in fields.items() if value}

    def span_attributes(self) -> dict[str, str | int]:
        attributes: dict[str, str | int] = {
            "opsctl.run_id": self.workflow_id,
            "opsctl.kind": self.kind,
            "opsctl.environment": self.environment,
            "opsctl.step": self.step,
            "opsctl.attempt": self.attempt,
        }
        return {key: value for key, value in attributes.items() if value}


_CURRENT: ContextVar[RunContext | None] = ContextVar("opsctl_run_context", default=None)


def current() -> RunContext | None:
    """The run context of the activity attempt running here, or None outside one."""
    return _CURRENT.get()


def activity_context(headers: Mapping[str, temporalio.api.common.v1.Payload]) -> RunContext:
    """The run context of the running activity: `activity.info()` and the workflow's header."""
    info = activity.info()
    sent: dict[str, Any] = {}
    if HEADER in headers:
        try:
            value = PayloadConverter.default.from_payloads([headers[HEADER]])[0]
            sent = value if isinstance(value, dict) else {}
        except Exception:  # a header someone else wrote must not fail the step
            sent = {}
    return RunContext(
        workflow_id=info.workflow_id or "",
        run_id=info.workflow_run_id or "",
        kind=info.workflow_type or "",
        environment=str(sent.get("environment", "")),
        step=info.activity_type,
        attempt=info.attempt,
    )


def run_environment(args: Sequence[Any]) -> str:
    """The environment a run's input names (a RunInput's request), '' for other workflows."""
    request = getattr(args[0], "request", None) if args else None
    metadata = getattr(request, "metadata", None)
    environment = getattr(metadata, "environment", "")
    return environment if isinstance(environment, str) else ""


def error_class(exc: BaseException) -> tuple[str, bool]:
    """(the failure's class, whether Temporal retries it): the taxonomy's kind for classified failures."""
    if isinstance(exc, ApplicationError):
        kind = exc.type or "ApplicationError"
        policy = activity.info().retry_policy
        excluded = kind in (policy.non_retryable_error_types or ()) if policy else False
        attempts = policy.maximum_attempts if policy else 0
        exhausted = bool(attempts) and activity.info().attempt >= attempts
        return kind, not (exc.non_retryable or excluded or exhausted)
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", False
    return type(exc).__name__, True


class RunContextInterceptor(Interceptor):
    """Installed on every worker (`worker.main.build_worker`): cheap, and on with metrics or without."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityReport(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _WorkflowRunContext


class _ActivityReport(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        context = activity_context(input.headers)
        token = _CURRENT.set(context)
        started = time.monotonic()
        outcome, retryable = "ok", False
        try:
            return await super().execute_activity(input)
        except BaseException as exc:
            outcome, retryable = error_class(exc)
            raise
        finally:
            elapsed = time.monotonic() - started
            try:
                _report(context, outcome, retryable, elapsed)
            except Exception:  # reporting never changes a step's outcome
                log.debug("could not report the step's metrics", exc_info=True)
            _CURRENT.reset(token)


def _report(context: RunContext, outcome: str, retryable: bool, elapsed: float) -> None:
    meter = activity.metric_meter()
    labels: dict[str, str | int | float | bool] = {"kind": context.kind, "outcome": outcome}
    duration = metrics.STEP_DURATION
    meter.create_histogram_float(duration.name, duration.description, "s").record(elapsed, labels)
    if outcome != "ok":
        failures = meter.create_counter(metrics.STEP_FAILURES.name, metrics.STEP_FAILURES.description)
        failures.add(1, {"kind": context.kind, "error_class": outcome, "retryable": str(retryable).lower()})
    level = logging.INFO if outcome == "ok" else logging.WARNING
    fields = {"duration_ms": round(elapsed * 1000, 1), "outcome": outcome}
    if outcome != "ok":
        fields["retryable"] = retryable
    log.log(level, "step %s", "finished" if outcome == "ok" else "failed", extra=fields)


class _WorkflowRunContext(WorkflowInboundInterceptor):
    """Inside the sandbox: remembers the run's environment, and hands it to each activity."""

    environment = ""

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_StepHeaders(outbound, self))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        self.environment = run_environment(input.args)
        return await super().execute_workflow(input)


class _StepHeaders(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, run: _WorkflowRunContext) -> None:
        super().__init__(next)
        self._run = run

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = self._with_header(input.headers)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = self._with_header(input.headers)
        return super().start_local_activity(input)

    def _with_header(
        self, headers: Mapping[str, temporalio.api.common.v1.Payload]
    ) -> Mapping[str, temporalio.api.common.v1.Payload]:
        sent = {"environment": self._run.environment}
        return {**headers, HEADER: PayloadConverter.default.to_payloads([sent])[0]}
