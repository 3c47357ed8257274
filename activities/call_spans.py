"""Spans for the PostgreSQL queries and AWS API calls an activity makes, children of its span.

Small hooks into the libraries' own extension points — asyncpg's query logger, botocore's call
events — instead of instrumentation packages. They act only while the worker traces (a tracer in
`telemetry.spans`); otherwise a connection gets no logger and an API call one lookup. Nothing secret
enters a span: a query loses its literals (a SCRAM verifier is one) and never records its arguments,
an API call records its operation and never its parameters, a failure records its class and code.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from telemetry import spans

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

# '…' (with '' inside), E'…' and $tag$…$tag$: every way PostgreSQL spells a literal string.
_LITERALS = re.compile(r"[Ee]?'(?:[^']|'')*'|\$([A-Za-z_]\w*)?\$.*?\$\1\$", re.DOTALL)
_NUMBERS = re.compile(r"(?<![\w$])\d+(?:\.\d+)?\b")
QUERY_TEXT_LIMIT = 2000
_SPAN_KEY = "opsctl_span"


def sanitized(query: str) -> str:
    """The query's shape, for a span: literals and numbers become `?` (arguments, `$1`, stay placeholders)."""
    shape = _NUMBERS.sub("?", _LITERALS.sub("?", query))
    return " ".join(shape.split())[:QUERY_TEXT_LIMIT]


def operation(query: str) -> str:
    words = query.split(None, 1)
    return words[0].upper() if words else "QUERY"


# ---- PostgreSQL ----------------------------------------------------------------------


def _postgres_attributes(host: str, port: int, dbname: str) -> dict[str, Any]:
    return {"db.system.name": "postgresql", "db.namespace": dbname, "server.address": host, "server.port": port}


@asynccontextmanager
async def postgres_connect(host: str, port: int, dbname: str, user: str) -> AsyncIterator[Tracer | None]:
    """Around `asyncpg.connect`: a `connect DBNAME` span while tracing; yields the tracer (None: off)."""
    tracer = spans.current()
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    attributes = {**_postgres_attributes(host, port, dbname), "db.user": user}
    with tracer.start_as_current_span(
        f"connect {dbname}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,  # its message may quote what it was given: `_failed` records the class
        set_status_on_exception=False,
    ) as span:
        try:
            yield tracer
        except BaseException as exc:
            _failed(span, exc)
            raise


def trace_queries(conn: Any, tracer: Tracer, host: str, port: int, dbname: str) -> None:
    """One span per query on `conn`, from asyncpg's query logger (called just after each query)."""
    from opentelemetry.trace import SpanKind

    base = _postgres_attributes(host, port, dbname)

    def logged(record: Any) -> None:
        end = time.time_ns()
        text = sanitized(record.query)
        attributes = {**base, "db.operation.name": operation(text), "db.query.text": text}
        span = tracer.start_span(
            f"{operation(text)} {dbname}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(record.elapsed * 1e9),
        )
        if record.exception is not None:
            _failed(span, record.exception)
        span.end(end_time=end)

    conn.add_query_logger(logged)


def _failed(span: Span, exc: BaseException) -> None:
    """The failure's class and code only: a driver's message may quote a value."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", type(exc).__name__)
    code = getattr(exc, "sqlstate", None)
    if isinstance(code, str):
        span.set_attribute("db.response.status_code", code)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


# ---- AWS -----------------------------------------------------------------------------


def trace_calls(client: Any) -> None:
    """Register the span hooks on a boto3 client: a `SERVICE.Operation` span per API call, while tracing."""
    events = client.meta.events
    region = client.meta.region_name or ""
    events.register("before-call", lambda **kwargs: _call_started(region, **kwargs))
    events.register("after-call", _call_finished)
    events.register("after-call-error", _call_failed)


def _call_started(region: str, *, model: Any, context: dict[str, Any], **_: Any) -> None:
    tracer = spans.current()
    if tracer is None:
        return  # None: botocore goes on and makes the call
    from opentelemetry.trace import SpanKind

    service = model.service_model.service_name
    attributes = {"rpc.system": "aws-api", "rpc.service": service, "rpc.method": model.name, "cloud.region": region}
    context[_SPAN_KEY] = tracer.start_span(f"{service}.{model.name}", kind=SpanKind.CLIENT, attributes=attributes)


def _call_finished(*, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN_KEY, None)
    if span is None:
        return
    status = int(getattr(http_response, "status_code", 0) or 0)
    span.set_attribute("http.response.status_code", status)
    request_id = parsed.get("ResponseMetadata", {}).get("RequestId")
    if request_id:
        span.set_attribute("aws.request_id", str(request_id))
    if status >= 300:
        from opentelemetry.trace import Status, StatusCode

        code = str(parsed.get("Error", {}).get("Code", "")) or str(status)
        span.set_attribute("error.type", code)
        span.set_status(Status(StatusCode.ERROR, code))
    span.end()


def _call_failed(*, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN_KEY, None)
    if span is not None:
        _failed(span, exception)
        span.end()
