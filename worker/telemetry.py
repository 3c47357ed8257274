"""Telemetry for the worker: OpenTelemetry traces of every workflow and activity (JSON lines)
and metrics (Temporal SDK metrics plus opsctl's own) on a Prometheus endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig


class JsonLinesExporter(SpanExporter):
    """Appends each finished span as one JSON line: easy to grep, easy to ship."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._path.open("a") as out:
            for span in spans:
                out.write(span.to_json(indent=None) + "\n")
        return SpanExportResult.SUCCESS


def metrics_runtime(address: str) -> Runtime | None:
    """A Temporal runtime exporting SDK and workflow metrics on http://ADDRESS/metrics."""
    if not address:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


def setup_tracing(trace_file: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "opsctl-worker"}))
    if trace_file:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesExporter(Path(trace_file))))
    trace.set_tracer_provider(provider)
