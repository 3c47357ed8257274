"""The tracer provider for an exporter configuration (`telemetry.export`): OpenTelemetry's SDK,
imported only when tracing is on.

Spans leave in the background (a batch processor with a bounded queue, each export bounded by
`timeout`): a slow or dead collector drops spans, it never holds up a run or a command. The provider
is never made the process's global one (OpenTelemetry allows that once per process): it is passed
to the tracing interceptor, so tests and several workers in one process each keep their own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status

from telemetry.export import ExportError, TraceExport

# A batch leaves every 2 s, or sooner when 512 spans wait; at most 2048 wait (more are dropped).
SCHEDULE_DELAY_MILLIS = 2000


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


class Noting(SpanExporter):
    """An exporter that remembers whether a batch failed (the CLI says so once, in its own words)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter, self.failed = exporter, False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.exporter.export(spans)
        self.failed = self.failed or result is not SpanExportResult.SUCCESS
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class Scrubbing(SpanExporter):
    """Exports spans without the text of the exceptions they record: a failure's message may quote a
    role, a secret's id or a value (with payload encryption on, the run's history holds it encrypted;
    a collector would get it in clear). What stays: the exception's type, `error.type`, the status."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    events = [
        Event(
            event.name, {k: v for k, v in (event.attributes or {}).items() if k not in _EXCEPTION_TEXT}, event.timestamp
        )
        if event.name == "exception"
        else event
        for event in span.events
    ]
    if status.description is None and events == list(span.events):
        return span
    description = status.description.split(":", 1)[0] if status.description else None
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(status.status_code, description),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


_EXCEPTION_TEXT = ("exception.message", "exception.stacktrace")


def tracer_provider(
    export: TraceExport, *, service: str, timeout: float, console: TextIO, noted: list[Noting] | None = None
) -> TracerProvider:
    """A provider exporting to `export`'s destinations (`console`: where the console exporter writes;
    `noted`: gets each exporter, wrapped to tell whether a batch failed).

    Raises `ExportError` when the exporter cannot be built (otlp-grpc without its package)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    for found in exporters(export, timeout=timeout, console=console):
        exporter: SpanExporter = Scrubbing(found)
        if noted is not None:
            noted.append(Noting(exporter))
            exporter = noted[-1]
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter, schedule_delay_millis=SCHEDULE_DELAY_MILLIS, export_timeout_millis=int(timeout * 1000)
            )
        )
    return provider


def exporters(export: TraceExport, *, timeout: float, console: TextIO) -> list[SpanExporter]:
    found: list[SpanExporter] = []
    if export.exporter == "console":
        found.append(ConsoleSpanExporter(out=console, formatter=lambda span: span.to_json(indent=None) + "\n"))
    elif export.exporter == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        found.append(HttpExporter(endpoint=export.url() or None, headers=export.headers or None, timeout=timeout))
    elif export.exporter == "otlp-grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError:
            raise ExportError(
                "the otlp-grpc trace exporter needs the opentelemetry-exporter-otlp-proto-grpc package",
                hint="pip install 'opsctl[otlp-grpc]', or use otlp-http",
            ) from None
        endpoint = export.url()
        insecure = True if endpoint.startswith("http://") else False if endpoint.startswith("https://") else None
        found.append(
            GrpcExporter(endpoint=endpoint or None, insecure=insecure, headers=export.headers or None, timeout=timeout)
        )
    if export.file:
        found.append(JsonLinesExporter(Path(export.file)))
    return found


def shutdown(provider: TracerProvider, timeout: float) -> None:
    """Send what is left and stop, waiting at most `timeout` seconds: a dead collector must not hold
    the process (the exporting thread is left behind; it is a daemon)."""
    stopping = threading.Thread(target=provider.shutdown, name="opsctl-trace-shutdown", daemon=True)
    stopping.start()
    stopping.join(timeout)
