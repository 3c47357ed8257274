"""Exporter configuration: checked before anything is built, errors naming the setting, never a token."""

from __future__ import annotations

import importlib.util
import io

import pytest

from telemetry.export import REDACTED, ExportError, TraceExport, redacted_endpoint, redacted_headers, trace_export

SOURCES = ("exporter", "endpoint", "headers")


def test_an_otlp_http_endpoint_without_a_path_gets_the_traces_path() -> None:
    assert (
        "http://collector:4318/v1/traces" == trace_export("otlp-http", "http://collector:4318", sources=SOURCES).url()
    )
    assert (
        "https://c.example/otlp/v1/traces"
        == trace_export("otlp-http", "https://c.example/otlp/v1/traces", sources=SOURCES).url()
    )
    assert "collector:4317" == trace_export("otlp-grpc", "collector:4317", sources=SOURCES).url()


@pytest.mark.parametrize(
    ("exporter", "endpoint", "message"),
    [
        ("jaeger", "", "exporter: unknown trace exporter 'jaeger'"),
        ("otlp-http", "collector:4318", "endpoint: 'collector:4318' is not an otlp-http endpoint"),
        ("otlp-http", "ftp://collector:4318", "endpoint: 'ftp://collector:4318' is not an otlp-http endpoint"),
        ("otlp-http", "http://collector:99999", "endpoint: 'http://collector:99999' is not an otlp-http endpoint"),
        (
            "otlp-grpc",
            "collector:4317/v1/traces",
            "endpoint: an otlp-grpc endpoint has no path ('collector:4317/v1/traces')",
        ),
    ],
)
def test_a_configuration_that_cannot_work_is_refused_naming_the_setting(
    exporter: str, endpoint: str, message: str
) -> None:
    with pytest.raises(ExportError) as refused:
        trace_export(exporter, endpoint, sources=SOURCES)
    assert message == refused.value.message


def test_headers_are_parsed_percent_decoded_and_a_bad_one_is_named_by_position_not_value() -> None:
    export = trace_export("otlp-http", headers="Authorization=Bearer%20t0ken, x-team=ops", sources=SOURCES)
    assert {"authorization": "Bearer t0ken", "x-team": "ops"} == export.headers
    assert "t0ken" not in repr(export)
    with pytest.raises(ExportError) as refused:
        trace_export("otlp-http", headers="x-team=ops,s3cr3t-without-a-key", sources=SOURCES)
    assert "headers: header 2 is not key=value" == refused.value.message
    assert "s3cr3t" not in str(refused.value) + refused.value.hint


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("https://ops:s3cr3t@collector:4318", f"https://ops:{REDACTED}@collector:4318"),
        ("https://s3cr3t@collector:4318/v1/traces", f"https://{REDACTED}@collector:4318/v1/traces"),
        ("http://collector:4318/v1/traces?api_key=s3cr3t", f"http://collector:4318/v1/traces?{REDACTED}"),
        ("ops:s3cr3t@collector:4317", f"ops:{REDACTED}@collector:4317"),
        ("http://collector:4318", "http://collector:4318"),
        ("collector:4317", "collector:4317"),
    ],
)
def test_an_endpoint_is_shown_without_its_credentials(endpoint: str, shown: str) -> None:
    assert shown == redacted_endpoint(endpoint)


@pytest.mark.parametrize(
    ("exporter", "endpoint"),
    [
        ("otlp-http", "http://ops:s3cr3t@collector:99999"),
        ("otlp-http", "http://collector:4318/v1/traces?api_key=s3cr3t"),
        ("otlp-grpc", "ops:s3cr3t@collector:4317/v1/traces"),
    ],
)
def test_a_refused_endpoint_is_named_without_its_credentials(exporter: str, endpoint: str) -> None:
    with pytest.raises(ExportError) as refused:
        trace_export(exporter, endpoint, sources=SOURCES)
    assert "s3cr3t" not in refused.value.message + refused.value.hint
    assert "endpoint: " in refused.value.message


def test_redacted_headers_keep_the_names_and_hide_every_value() -> None:
    assert f"authorization={REDACTED},x-team={REDACTED}" == redacted_headers("authorization=Bearer%20x,x-team=ops")
    assert REDACTED == redacted_headers("garbled-secret")
    assert "" == redacted_headers("")


def test_none_is_off_and_a_file_alone_turns_tracing_on() -> None:
    assert not trace_export("", sources=SOURCES).enabled
    assert trace_export("none", file="spans.jsonl", sources=SOURCES).enabled


@pytest.mark.skipif(importlib.util.find_spec("grpc") is not None, reason="the otlp-grpc extra is installed here")
def test_otlp_grpc_without_its_package_says_which_package_to_install() -> None:
    from telemetry.tracing import tracer_provider

    with pytest.raises(ExportError) as refused:
        tracer_provider(TraceExport("otlp-grpc"), service="t", timeout=1, console=io.StringIO())
    assert (
        "the otlp-grpc trace exporter needs the opentelemetry-exporter-otlp-proto-grpc package" == refused.value.message
    )
    assert "pip install 'opsctl[otlp-grpc]', or use otlp-http" == refused.value.hint


def test_the_console_exporter_writes_one_json_line_per_span() -> None:
    import json

    from telemetry.tracing import shutdown, tracer_provider

    out = io.StringIO()
    provider = tracer_provider(TraceExport("console"), service="t", timeout=1, console=out)
    with provider.get_tracer("t").start_as_current_span("hello", attributes={"opsctl.kind": "K"}):
        pass
    shutdown(provider, 5)
    [line] = out.getvalue().splitlines()
    assert ("hello", "K") == (json.loads(line)["name"], json.loads(line)["attributes"]["opsctl.kind"])


def test_an_exception_s_text_never_leaves_in_a_span_only_its_type() -> None:
    import json

    from opentelemetry.trace import Status, StatusCode

    from telemetry.tracing import shutdown, tracer_provider

    out = io.StringIO()
    provider = tracer_provider(TraceExport("console"), service="t", timeout=1, console=out)
    with provider.get_tracer("t").start_as_current_span("step") as span:
        span.record_exception(ValueError("role app_owner: password hunter2 refused"))
        span.set_status(Status(StatusCode.ERROR, "ApplicationError: secret prod/db belongs to user x"))
    shutdown(provider, 5)
    [line] = out.getvalue().splitlines()
    exported = json.loads(line)
    assert ("ERROR", "ApplicationError") == (exported["status"]["status_code"], exported["status"]["description"])
    assert "ValueError" == exported["events"][0]["attributes"]["exception.type"]
    assert {"exception.message", "exception.stacktrace"}.isdisjoint(exported["events"][0]["attributes"])
    assert "hunter2" not in line
    assert "prod/db" not in line


def test_the_cli_s_warning_about_a_dead_collector_does_not_show_the_endpoint_s_password() -> None:
    from client import tracing
    from client.devstack import free_port

    dead = trace_export("otlp-http", f"http://ops:s3cr3t@127.0.0.1:{free_port()}", sources=SOURCES)
    with tracing.provider(dead).get_tracer("test").start_as_current_span("opsctl test"):
        pass
    stderr = io.StringIO()
    tracing.flush(stderr)
    assert f"warning: traces not exported to http://ops:{REDACTED}@127.0.0.1:" in stderr.getvalue()
    assert "s3cr3t" not in stderr.getvalue()
