"""Telemetry for the worker: metrics (Temporal SDK metrics plus opsctl's own, `contracts.metrics`) on
a Prometheus endpoint or pushed over OTLP, and traces (`worker.tracing`) to the configured exporter.

With tracing off (`tracing.exporter` none, no file) nothing of OpenTelemetry's SDK is imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from temporalio.runtime import OpenTelemetryConfig, PrometheusConfig, Runtime, TelemetryConfig

from contracts.metrics import METRICS
from telemetry.export import ExportError, TraceExport, redacted_endpoint

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

# A collector that does not answer costs each export at most this; spans wait in a bounded queue meanwhile.
EXPORT_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 5.0
# opsctl's histograms in their own units (seconds), not the SDK's default millisecond buckets.
BUCKETS = {metric.name: list(metric.buckets) for metric in METRICS if metric.buckets}


def metrics_runtime(
    address: str, otlp_endpoint: str = "", *, otlp_http: bool = False, headers: dict[str, str] | None = None
) -> Runtime | None:
    """A Temporal runtime exporting SDK and opsctl metrics on http://ADDRESS/metrics, or pushing
    them to an OTLP collector; None when neither is configured (no metrics)."""
    if address and otlp_endpoint:
        raise ExportError(
            "metrics_address and metrics.otlp_endpoint are both set", hint="serve Prometheus or push OTLP: set one"
        )
    if address:
        config = TelemetryConfig(metrics=PrometheusConfig(bind_address=address, histogram_bucket_overrides=BUCKETS))
        return _runtime(config, f"metrics_address {address}")
    if otlp_endpoint:
        otlp = OpenTelemetryConfig(
            url=otlp_endpoint, headers=headers or None, http=otlp_http, histogram_bucket_overrides=BUCKETS
        )
        return _runtime(TelemetryConfig(metrics=otlp), f"metrics.otlp_endpoint {redacted_endpoint(otlp_endpoint)!r}")
    return None


def _runtime(config: TelemetryConfig, setting: str) -> Runtime:
    try:
        return Runtime(telemetry=config)
    except Exception as exc:  # the port is taken, the URL is not one: Temporal's core says which
        raise ExportError(f"{setting} cannot be used: {exc}") from None


def tracer_provider(export: TraceExport) -> TracerProvider | None:
    """The worker's tracer provider, or None when tracing is off (nothing imported)."""
    if not export.enabled:
        return None
    from telemetry.tracing import tracer_provider as provider

    return provider(export, service="opsctl-worker", timeout=EXPORT_TIMEOUT_SECONDS, console=sys.stdout)


def tracing_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """For the worker's client: Temporal's tracing interceptor with opsctl's attributes, when tracing is on."""
    if provider is None:
        return []
    from worker.tracing import RunTracingInterceptor

    return [RunTracingInterceptor(provider.get_tracer("opsctl.worker"))]


def shutdown(provider: TracerProvider | None) -> None:
    if provider is not None:
        from telemetry.tracing import shutdown as stop

        stop(provider, SHUTDOWN_TIMEOUT_SECONDS)
