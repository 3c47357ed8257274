"""One trace from `opsctl apply` to every activity, and the PostgreSQL and AWS calls inside them.

The CLI runs as people run it (a process, its exporter chosen by `OPSCTL_TRACE_*`) and sends its
spans over OTLP/HTTP to a small collector in this test; the worker, built as `python -m worker`
builds it, records its spans in memory. Together they must form one tree.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from client.devstack import Stack, seed_role
from client.runs import start_run
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import RunState
from telemetry.export import TraceExport
from tests.client.conftest import opsctl, opsctl_env
from tests.integration.test_rotate_credential import rotation_request
from worker.converter import DATA_CONVERTER
from worker.main import build_worker
from worker.settings import WorkerSettings
from worker.telemetry import SHUTDOWN_TIMEOUT_SECONDS, shutdown, tracer_provider, tracing_interceptors
from workflows.rotate_credential import STEPS

TOKEN = "s3cret-collector-token"  # noqa: S105 - the test's own collector credential, to be found nowhere


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


@dataclass
class Collector:
    """An OTLP/HTTP trace endpoint: what it received, and the authorization headers it came with."""

    url: str
    spans: list[Span] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@pytest.fixture
def collector() -> Iterator[Collector]:
    received = Collector("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.authorizations.append(self.headers.get("authorization", ""))
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        received.spans.append(
                            Span(
                                span.name,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                {a.key: _value(a.value) for a in span.attributes},
                            )
                        )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def _in_memory(exporter: InMemorySpanExporter) -> list[Span]:
    return [
        Span(
            span.name,
            f"{span.context.trace_id:032x}",
            f"{span.context.span_id:016x}",
            f"{span.parent.span_id:016x}" if span.parent else "",
            dict(span.attributes or {}),
        )
        for span in exporter.get_finished_spans()
        if span.context is not None
    ]


async def test_one_rotation_is_one_trace_from_opsctl_apply_to_every_postgres_and_aws_call(
    stack: Stack, worker_settings: WorkerSettings, collector: Collector, tmp_path: Path
) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    queue = f"traced-{uuid.uuid4().hex[:8]}"
    settings = worker_settings.model_copy(
        update={"temporal": worker_settings.temporal.model_copy(update={"task_queue": queue})}
    )
    traced_client = await Client.connect(
        stack.temporal_address, data_converter=DATA_CONVERTER, interceptors=tracing_interceptors(provider)
    )
    role, secret = f"t_{uuid.uuid4().hex[:8]}", f"traced/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    document = tmp_path / "rotate.json"
    document.write_text(json.dumps(rotation_request(role, secret, "dev")))
    env = {
        **opsctl_env(stack, queue, tmp_path),
        "OPSCTL_TRACE_EXPORTER": "otlp-http",
        "OPSCTL_TRACE_ENDPOINT": collector.url,
        "OPSCTL_TRACE_HEADERS": f"authorization=Bearer%20{TOKEN}",
    }
    async with build_worker(traced_client, settings):
        applied = await opsctl(env, "apply", "-f", str(document), "--wait", "-o", "json")
    provider.force_flush()
    assert 0 == applied.code, applied.stderr
    run_id = applied.json()["workflow_id"]

    cli, worker = collector.spans, _in_memory(memory)
    by_id = {span.span_id: span for span in [*cli, *worker]}
    [root] = [span for span in cli if span.name == "opsctl apply"]
    [start] = [span for span in cli if span.name == "StartWorkflow:RotateDbCredential"]
    [run] = [span for span in worker if span.name == "RunWorkflow:RotateDbCredential"]
    activities = [span for span in worker if span.name.startswith("RunActivity:")]
    postgres = [span for span in worker if span.attributes.get("db.system.name") == "postgresql"]
    aws = [span for span in worker if span.attributes.get("rpc.system") == "aws-api"]

    # one trace: the CLI's command → its StartWorkflow → the workflow → each activity → its calls
    assert {root.trace_id} == {
        span.trace_id for span in [*cli, *worker] if span.attributes.get("opsctl.run_id") == run_id
    }
    assert root.span_id == start.parent_id
    assert start.span_id == run.parent_id
    assert {"plan", "create_pending", "set_password", "test_login", "promote", "verify"} <= {
        span.name.split(".")[-1] for span in activities
    }
    for activity in activities:
        scheduled = by_id[activity.parent_id]
        assert scheduled.name.startswith("StartActivity:")
        assert start.span_id == scheduled.parent_id
        assert activity.trace_id == root.trace_id
    assert postgres
    assert aws
    assert {"RunActivity"} == {by_id[span.parent_id].name.split(":")[0] for span in [*postgres, *aws]}

    # attributes: run id, kind, environment on every span of the run; the step on the activities'
    expected = {"opsctl.run_id": run_id, "opsctl.kind": "RotateDbCredential", "opsctl.environment": "dev"}
    for span in [root, run, *activities]:
        assert expected == {key: span.attributes.get(key) for key in expected}, span.name
    scheduled = {by_id[span.parent_id].attributes.get("opsctl.step") for span in activities}
    # the Web UI's names (the policy's load is a local activity, without a summary)
    assert {"compute the plan (read-only)", *STEPS, "verify the outcome"} <= scheduled
    assert None not in scheduled
    assert all(span.attributes["opsctl.step"] == span.name.split(":")[1] for span in activities)
    assert {"secretsmanager.GetSecretValue", "secretsmanager.PutSecretValue"} <= {span.name for span in aws}
    altered = [span for span in postgres if span.attributes.get("db.operation.name") == "ALTER"]
    assert altered
    assert all("SCRAM-SHA-256$" not in str(span.attributes) for span in postgres)  # literals never enter a span

    # the collector's token went to the collector, and nowhere else
    assert {f"Bearer {TOKEN}"} == set(collector.authorizations)
    history = await traced_client.get_workflow_handle(run_id).fetch_history()
    assert TOKEN not in json.dumps(history.to_json_dict())
    assert all(TOKEN not in str(span.attributes) for span in [*cli, *worker])


async def test_a_dead_collector_neither_fails_nor_holds_up_a_command(stack: Stack, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    env = {**opsctl_env(stack, "unused", tmp_path), "OPSCTL_TRACE_EXPORTER": "otlp-http", "OPSCTL_TRACE_ENDPOINT": dead}
    began = time.monotonic()
    listed = await opsctl(env, "list", "-o", "json")
    took = time.monotonic() - began

    assert 0 == listed.code, listed.stderr
    assert isinstance(listed.json()["runs"], list)
    print("TOOK", took, repr(listed.stderr))
    assert took < 10  # the flush waits 2 s at most; an unbounded exporter retries far longer


async def test_a_dead_collector_does_not_hold_up_a_worker_s_run(
    stack: Stack, client: Client, worker_settings: WorkerSettings
) -> None:
    """Spans wait in a bounded queue and leave in the background: the run does not wait for them."""
    dead = TraceExport("otlp-http", f"http://127.0.0.1:{_closed_port()}")
    provider = tracer_provider(dead)
    assert provider is not None
    queue = f"dead-{uuid.uuid4().hex[:8]}"
    settings = worker_settings.model_copy(
        update={"temporal": worker_settings.temporal.model_copy(update={"task_queue": queue})}
    )
    traced_client = await Client.connect(
        stack.temporal_address, data_converter=DATA_CONVERTER, interceptors=tracing_interceptors(provider)
    )
    took: list[float] = []
    for runner in (client, traced_client):
        role, secret = f"d_{uuid.uuid4().hex[:8]}", f"dead/{uuid.uuid4().hex[:8]}"
        seed_role(stack, role, secret)
        request = parse_request(rotation_request(role, secret, "dev"))
        async with build_worker(runner, settings):
            began = time.monotonic()
            handle, _ = await start_run(runner, request, task_queue=queue)
            result: RunState = await handle.result()
            took.append(time.monotonic() - began)
        assert Phase.SUCCEEDED == result.phase
    began = time.monotonic()
    shutdown(provider)
    assert time.monotonic() - began < SHUTDOWN_TIMEOUT_SECONDS + 1  # the worker's stop waits a bounded time
    assert took[1] < took[0] + 5, took


def _closed_port() -> int:
    from client.devstack import free_port

    return free_port()


async def test_the_console_exporter_writes_spans_to_stderr_and_leaves_stdout_to_the_result(
    stack: Stack, tmp_path: Path
) -> None:
    env = {**opsctl_env(stack, "unused", tmp_path), "OPSCTL_TRACE_EXPORTER": "console"}
    listed = await opsctl(env, "list", "-o", "json")

    assert 0 == listed.code, listed.stderr
    assert isinstance(listed.json()["runs"], list)  # stdout is the result alone
    spans = [json.loads(line) for line in listed.stderr.splitlines() if line.startswith("{")]
    assert "opsctl list" in {span["name"] for span in spans}
