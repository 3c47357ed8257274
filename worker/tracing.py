"""Traces of runs: Temporal's OpenTelemetry interceptor, with opsctl's attributes on its spans.

One trace runs from the CLI's command (`opsctl apply`, whose `StartWorkflow` span's context travels
in the run's headers) through the workflow's spans (`RunWorkflow`, one `StartActivity` per step) to
each activity (`RunActivity`) and the PostgreSQL and AWS calls inside it (`telemetry.spans`). The
workflow's and the activities' spans carry `opsctl.run_id` (the workflow id), `opsctl.kind`,
`opsctl.environment`, and a step's `opsctl.step`: on `StartActivity` its name as the Web UI shows
it, on `RunActivity` its activity type.

Temporal's interceptor makes workflow spans at once and with no duration (a long-lived span cannot
survive a replay); runs started without a traced client (a schedule, the Web UI) still get them
(`always_create_workflow_spans`), each its own trace. Imported only when tracing is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInterceptorClassInput,
)

from telemetry import spans
from worker.run_context import activity_context, error_class, run_environment

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


class RunTracingInterceptor(TracingInterceptor):
    """For the worker's client: its spans, the workflows' and the activities', with opsctl's attributes."""

    def __init__(self, tracer: Tracer) -> None:
        super().__init__(tracer, always_create_workflow_spans=True)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)  # registers the extern function its spans are made with
        return RunTracingWorkflowInterceptor

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        # Temporal's interceptor opens the activity's span; inside it, ours names the run and the step.
        return super().intercept_activity(_ActivityAttributes(next, self.tracer))


class _ActivityAttributes(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, tracer: Tracer) -> None:
        super().__init__(next)
        self._tracer = tracer

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        from opentelemetry import trace

        span = trace.get_current_span()
        span.set_attributes(activity_context(input.headers).span_attributes())
        with spans.tracing_with(self._tracer):  # the PostgreSQL and AWS calls become its children
            try:
                return await super().execute_activity(input)
            except BaseException as exc:  # the class stays on the span; its message is scrubbed on export
                kind, retryable = error_class(exc)
                span.set_attributes({"error.type": kind, "opsctl.retryable": retryable})
                raise


class RunTracingWorkflowInterceptor(TracingWorkflowInboundInterceptor):
    """Temporal's workflow-side tracing, adding the run's attributes to each span it completes.

    `_completed_span` is the hook Temporal's interceptor documents for subclasses that set attributes."""

    _environment = ""

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        self._environment = run_environment(input.args)
        return await super().execute_workflow(input)

    def _completed_span(self, span_name: str, **kwargs: Any) -> None:
        info = workflow.info()
        attributes: dict[str, Any] = {"opsctl.run_id": info.workflow_id, "opsctl.kind": info.workflow_type}
        if self._environment:
            attributes["opsctl.environment"] = self._environment
        outbound = kwargs.get("add_to_outbound")
        if isinstance(outbound, StartActivityInput):
            attributes["opsctl.step"] = outbound.summary or outbound.activity
        elif isinstance(outbound, StartLocalActivityInput):  # a local activity has no summary
            attributes["opsctl.step"] = outbound.activity
        kwargs["additional_attributes"] = {**attributes, **(kwargs.get("additional_attributes") or {})}
        super()._completed_span(span_name, **kwargs)
