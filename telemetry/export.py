"""Where spans go: `none` (the default: nothing is imported, nothing is traced), `console`,
`otlp-http` or `otlp-grpc` (a collector's endpoint and headers), and for the worker a JSON-lines file.

Pure: checking a configuration imports no OpenTelemetry. Header values are credentials (a
collector's token): they are kept here and handed to the exporter, never rendered, logged or
put into an error message; an endpoint is shown only as `redacted_endpoint` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

EXPORTERS = ("none", "console", "otlp-http", "otlp-grpc")
OTLP_HTTP_PATH = "/v1/traces"
REDACTED = "<redacted>"


class ExportError(ValueError):
    """A tracing configuration that cannot work; the message names the setting, never a header value."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class TraceExport:
    exporter: str = "none"
    endpoint: str = ""  # '' : the exporter's own default (or $OTEL_EXPORTER_OTLP_…)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # secrets: never rendered
    file: str = ""  # the worker's JSON-lines file ('' : none)

    @property
    def enabled(self) -> bool:
        return self.exporter != "none" or bool(self.file)

    def url(self) -> str:
        """The endpoint as the exporter takes it: otlp-http's full URL (`/v1/traces` added to a bare
        collector address), otlp-grpc's address; '' for the exporter's default."""
        if self.exporter == "otlp-http" and self.endpoint:
            parts = urlsplit(self.endpoint)
            return self.endpoint if parts.path not in ("", "/") else self.endpoint.rstrip("/") + OTLP_HTTP_PATH
        return self.endpoint


def trace_export(
    exporter: str, endpoint: str = "", headers: str = "", file: str = "", *, sources: tuple[str, str, str]
) -> TraceExport:
    """Check and build a configuration from its words; raises `ExportError` naming the setting that
    cannot work (`sources`: what to call the exporter, endpoint and headers settings in a message)."""
    exporter = exporter.strip() or "none"
    if exporter not in EXPORTERS:
        raise ExportError(
            f"{sources[0]}: unknown trace exporter {exporter!r}", hint=f"choose one of {', '.join(EXPORTERS)}"
        )
    endpoint = endpoint.strip()
    if endpoint and exporter in ("otlp-http", "otlp-grpc"):
        _check_endpoint(exporter, endpoint, sources[1])
    return TraceExport(exporter, endpoint, parse_headers(headers, source=sources[2]), file)


def _check_endpoint(exporter: str, endpoint: str, source: str) -> None:
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    scheme_ok = parts.scheme in ("http", "https") or (exporter == "otlp-grpc" and not parts.scheme)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if not (scheme_ok and parts.hostname and port_ok) or parts.query or parts.fragment:
        example = "http://collector:4318" if exporter == "otlp-http" else "collector:4317 or https://collector:4317"
        shown = redacted_endpoint(endpoint)
        raise ExportError(f"{source}: {shown!r} is not an {exporter} endpoint", hint=f"e.g. {example}")
    if exporter == "otlp-grpc" and parts.path not in ("", "/"):
        shown = redacted_endpoint(endpoint)
        raise ExportError(f"{source}: an otlp-grpc endpoint has no path ({shown!r})", hint="e.g. collector:4317")


def parse_headers(text: str, *, source: str) -> dict[str, str]:
    """`key=value,key2=value2` (values percent-encoded, as $OTEL_EXPORTER_OTLP_HEADERS has them; newlines
    separate too, for a headers file). An error names the item's position, never its value."""
    headers: dict[str, str] = {}
    items = [item.strip() for line in text.splitlines() for item in line.split(",")]
    for position, item in enumerate((item for item in items if item and not item.startswith("#")), 1):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in key):
            raise ExportError(
                f"{source}: header {position} is not key=value", hint="e.g. authorization=Bearer%20TOKEN,x-team=ops"
            )
        headers[key.lower()] = unquote(value.strip())
    return headers


def redacted_headers(text: str) -> str:
    """Header names with their values hidden, for `opsctl config show` (an unparseable text is hidden whole)."""
    if not text.strip():
        return ""
    try:
        names = parse_headers(text, source="")
    except ExportError:
        return REDACTED
    return ",".join(f"{name}={REDACTED}" for name in names)


def redacted_endpoint(endpoint: str) -> str:
    """An endpoint as it may be shown: the password of a `user:password@` hidden, a lone `token@` (a
    collector's key as the user name) hidden whole, and so are a query and a fragment."""
    bare = "://" not in endpoint
    try:
        parts = urlsplit(f"//{endpoint}" if bare else endpoint)
        password = parts.password
    except ValueError:  # not even a URL: nothing of it can be shown
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{REDACTED}@{host}" if password is not None else f"{REDACTED}@{host}"
    shown = urlunsplit(
        (parts.scheme, netloc, parts.path, REDACTED if parts.query else "", REDACTED if parts.fragment else "")
    )
    return shown.removeprefix("//") if bare else shown
