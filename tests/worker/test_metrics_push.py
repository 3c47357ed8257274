"""Metrics pushed over OTLP instead of served for Prometheus: the same series reach a collector."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from contracts import metrics
from telemetry.export import ExportError
from worker.telemetry import metrics_runtime


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, list[str]]]]]:
    received: list[tuple[str, str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = ExportMetricsServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
            names = [m.name for r in request.resource_metrics for s in r.scope_metrics for m in s.metrics]
            received.append((self.path, self.headers.get("authorization", ""), names))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/metrics", received
    finally:
        server.shutdown()
        server.server_close()


def test_an_otlp_endpoint_receives_opsctl_s_metrics_with_its_headers(
    collector: tuple[str, list[tuple[str, str, list[str]]]],
) -> None:
    url, received = collector
    runtime = metrics_runtime("", url, otlp_http=True, headers={"authorization": "Bearer push-token"})
    assert runtime is not None
    runtime.metric_meter.create_counter(metrics.RUNS_STARTED.name).add(1, {"kind": "RotateDbCredential"})
    deadline = time.monotonic() + 15
    while not any(metrics.RUNS_STARTED.name in names for _, _, names in received) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ("/v1/metrics", "Bearer push-token") in {(path, auth) for path, auth, _ in received}
    assert any(metrics.RUNS_STARTED.name in names for _, _, names in received)


def test_prometheus_and_otlp_at_once_are_refused() -> None:
    with pytest.raises(ExportError) as refused:
        metrics_runtime("127.0.0.1:9464", "http://collector:4318/v1/metrics")
    assert "metrics_address and metrics.otlp_endpoint are both set" == refused.value.message
