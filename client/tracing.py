"""The CLI's traces, when `trace_exporter` is configured: one trace per command — a root span
`opsctl COMMAND` with the run's attributes, and under it Temporal's client spans (`StartWorkflow`,
queries, updates). Their context travels in the run's headers, so the worker's spans of that run
join the same trace (`worker.tracing`).

Imported only when an exporter is configured: with `none`, the default, the CLI imports nothing of
OpenTelemetry. Spans leave in the background; at the end a command waits at most `FLUSH_SECONDS`
for them, so a dead or slow collector costs a command that much at most and never fails it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from client.config import Config
from contracts.failures import ExitCode, OpsctlError
from telemetry.export import ExportError, TraceExport, redacted_endpoint

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

    from telemetry.tracing import Noting

FLUSH_SECONDS = 1.0
EXPORT_SECONDS = 0.8  # each export gives up before the flush stops waiting: its failure is known in time
_PROVIDERS: dict[tuple[Any, ...], TracerProvider] = {}  # one per configuration, for the process's life
_EXPORTERS: dict[tuple[Any, ...], list[Noting]] = {}


def provider(export: TraceExport) -> TracerProvider:
    """The process's provider for `export` (raises `OpsctlError`, exit 2, when it cannot be built)."""
    key = (export.exporter, export.url(), tuple(sorted(export.headers.items())))
    if key not in _PROVIDERS:
        import logging

        from telemetry.tracing import tracer_provider

        # The SDK's own complaints (a retry, each failed batch) would go to stderr: `flush` says it once instead.
        logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
        noted: list[Noting] = []
        try:
            _PROVIDERS[key] = tracer_provider(
                export, service="opsctl", timeout=EXPORT_SECONDS, console=sys.stderr, noted=noted
            )
        except ExportError as exc:
            raise OpsctlError(ExitCode.INVALID_INPUT, exc.message, hint=exc.hint) from None
        _EXPORTERS[key] = noted
    return _PROVIDERS[key]


def interceptors(config: Config) -> list[Interceptor]:
    """Temporal's tracing interceptor for this command's client, or none when tracing is off."""
    export = config.trace_export()
    if export.exporter == "none":
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider(export).get_tracer("opsctl.cli"))]


@contextmanager
def command_span(config: Config, command: str, attributes: Mapping[str, str]) -> Iterator[None]:
    """The command's root span (nothing when tracing is off); the client's spans become its children."""
    export = config.trace_export()
    if export.exporter == "none":
        yield
        return
    from opentelemetry.trace import SpanKind

    tracer = provider(export).get_tracer("opsctl.cli")
    named = {"opsctl.command": command, **{key: value for key, value in attributes.items() if value}}
    with tracer.start_as_current_span(
        f"opsctl {command}", kind=SpanKind.CLIENT, attributes=named, record_exception=False
    ):
        yield


def flush(stderr: TextIO) -> None:
    """Hand the finished spans to their exporters, waiting at most FLUSH_SECONDS each; say once if
    some could not be sent (the command's outcome stays what it was)."""
    for key, found in _PROVIDERS.items():
        found.force_flush(int(FLUSH_SECONDS * 1000))
        if any(exporter.failed for exporter in _EXPORTERS.get(key, [])):
            where = redacted_endpoint(key[1]) if key[1] else f"the {key[0]} exporter's default endpoint"
            print(f"warning: traces not exported to {where} (collector unreachable or slow)", file=stderr)
            for exporter in _EXPORTERS[key]:
                exporter.failed = False
