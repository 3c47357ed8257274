"""Worker settings: one JSON file (`OPSCTL_WORKER_SETTINGS`) plus environment overrides.

The same shape serves the embedded stack (written by `opsctl dev up`) and a real
deployment (a mounted file or plain environment variables). Secrets are referenced
(a file path or an environment variable name), never written here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from activities.aws import AwsSettings
from activities.postgres import DatabaseTarget
from encryption.keys import EncryptionKeys, load_keys
from telemetry.export import ExportError, TraceExport, parse_headers, trace_export

TRACE_HEADERS_ENV = "OPSCTL_TRACE_HEADERS"  # inline `key=value,…`: a collector's token, never in the file


class TemporalSettings(BaseModel):
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "opsctl"


class CodecSettings(BaseModel):
    """Payload encryption (`encryption.keys`): a keys file referenced here, never the keys themselves.

    `OPSCTL_CODEC_KEYS_FILE`, `OPSCTL_CODEC_KEYS` (inline) and `OPSCTL_CODEC_KEY_ID` override these.
    Empty: no encryption, unless the environment configures keys.
    """

    keys_file: str = ""
    key_id: str = ""  # the id that encrypts; empty: the last key of the file


class TracingSettings(BaseModel):
    """Where the worker's spans go (`telemetry.export`). `OPSCTL_TRACE_EXPORTER`, `OPSCTL_TRACE_ENDPOINT`
    and `OPSCTL_TRACE_HEADERS` (inline `key=value,…`) override these, as they do for the CLI.

    exporter `none` (and no file): the worker installs no tracing at all and imports no SDK.
    """

    model_config = ConfigDict(extra="forbid")

    exporter: str = "none"  # none | console | otlp-http | otlp-grpc
    endpoint: str = ""  # otlp-http: http(s)://collector:4318 (/v1/traces added); otlp-grpc: collector:4317
    headers_file: str = ""  # `key=value` lines (a collector's token): a mounted secret, referenced here
    file: str = ""  # also append finished spans as JSON lines to this file


class MetricsSettings(BaseModel):
    """Metrics beyond the Prometheus endpoint (`metrics_address`): OTLP push, and the waiting-runs poll."""

    model_config = ConfigDict(extra="forbid")

    # Push every metric over OTLP instead of serving /metrics (one of the two: Temporal's runtime has one sink).
    otlp_endpoint: str = ""  # e.g. http://collector:4317 (gRPC) or http://collector:4318/v1/metrics (http)
    otlp_http: bool = False
    otlp_headers_file: str = ""  # `key=value` lines, as tracing.headers_file
    # How often this worker asks Temporal's visibility how many runs wait for a person (opsctl_runs_waiting,
    # opsctl_approvals_expiring); 0: never. Only with metrics on and search attributes registered.
    waiting_runs_interval_seconds: int = Field(default=60, ge=0)


class WorkerSettings(BaseModel):
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    databases: dict[str, DatabaseTarget] = Field(default_factory=dict)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    trace_file: str = ""  # the earlier name of tracing.file (still read)
    metrics_address: str = ""  # host:port serving Prometheus /metrics; empty: no endpoint
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    # The policies runs obey (YAML or JSON, `opsctl policy check -f` validates it); empty: built-in.
    policy_file: str = ""
    # The environments this worker runs (its credentials reach their targets): a run for any other
    # environment has no policy here and fails validation. Empty: every environment of the policy file.
    # Production workers serve one environment each, on their own task queue.
    environments: list[str] = Field(default_factory=list)
    # Test-only: the time-skipping test server knows no custom search attributes.
    search_attributes: bool = True
    check_id_reuse: bool = True  # test-only off: the time-skipping server has no visibility to ask
    history_event_limit: int = 4000  # continue-as-new once a run's history reaches this many events
    # Overrides every policy's retryWindowSeconds when set (test stacks: seconds instead of minutes).
    retry_window_seconds: int | None = Field(default=None, ge=1)

    @classmethod
    def load(cls, path: str | None = None) -> WorkerSettings:
        path = path or os.environ.get("OPSCTL_WORKER_SETTINGS")
        data = json.loads(Path(path).read_text()) if path else {}
        settings = cls.model_validate(data)
        temporal = settings.temporal.model_copy(
            update={
                key: os.environ[env]
                for key, env in (
                    ("address", "OPSCTL_TEMPORAL_ADDRESS"),
                    ("namespace", "OPSCTL_NAMESPACE"),
                    ("task_queue", "OPSCTL_TASK_QUEUE"),
                )
                if os.environ.get(env)
            }
        )
        tracing = settings.tracing.model_copy(
            update={
                key: os.environ[env]
                for key, env in (("exporter", "OPSCTL_TRACE_EXPORTER"), ("endpoint", "OPSCTL_TRACE_ENDPOINT"))
                if os.environ.get(env)
            }
        )
        policy_file = os.environ.get("OPSCTL_POLICY_FILE") or settings.policy_file
        return settings.model_copy(update={"temporal": temporal, "policy_file": policy_file, "tracing": tracing})

    def trace_export(self) -> TraceExport:
        """Where spans go, checked (raises `ExportError`: the worker refuses to start)."""
        tracing = self.tracing
        inline = os.environ.get(TRACE_HEADERS_ENV, "")
        headers = inline or _read_headers(tracing.headers_file, "tracing.headers_file")
        headers_source = f"${TRACE_HEADERS_ENV}" if inline else f"tracing.headers_file {tracing.headers_file}"
        return trace_export(
            tracing.exporter,
            tracing.endpoint,
            headers,
            tracing.file or self.trace_file,
            sources=("tracing.exporter", "tracing.endpoint", headers_source),
        )

    def metrics_headers(self) -> dict[str, str]:
        text = _read_headers(self.metrics.otlp_headers_file, "metrics.otlp_headers_file")
        return parse_headers(text, source="metrics.otlp_headers_file")

    def secret_values(self) -> list[str]:
        """Values the worker's logs must never show: database passwords, collector headers, payload keys."""
        found: list[str] = []
        for target in self.databases.values():
            try:
                found.append(target.admin_password() or "")
            except OSError:  # an unreadable file fails the step that needs it, with its own message
                continue
        try:
            found += self.trace_export().headers.values()
            found += self.metrics_headers().values()
        except ExportError:
            pass  # refused at start, before any log line that could quote them
        try:
            keys = self.encryption_keys()
        except Exception:  # a malformed keyring is refused at start, by its own check
            keys = None
        if keys is not None:
            import base64

            found += [base64.b64encode(key).decode() for key in keys.keys.values()]
        return [value for value in found if value]

    def encryption_keys(self) -> EncryptionKeys | None:
        """The keyring this worker encrypts and decrypts with (raises `KeysError` when malformed)."""
        return load_keys(self.codec.keys_file, self.codec.key_id)


def _read_headers(path: str, setting: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{setting} {path} is unreadable: {type(exc).__name__}") from None
