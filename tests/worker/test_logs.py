"""The worker's log lines: one valid JSON object each, whatever the message holds, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worker import logs
from worker.logs import REDACTED, JsonFormatter, Redactor

ROOT = Path(__file__).resolve().parents[2]
DB_PASSWORD = "Xq7-unlikely-db-password"  # noqa: S105 - a value the worker knows is secret


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(Redactor([DB_PASSWORD])))
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_message_with_quotes_newlines_and_odd_characters_is_one_valid_json_line() -> None:
    """Formatted directly (the lone surrogate, a byte that was not UTF-8, would upset pytest's own capture)."""
    message = 'role "a\\b" said: \'hi\'\n\tnext line \x00 \udcff ü 💥 "}'
    record = logging.LogRecord("opsctl.test", logging.INFO, __file__, 1, message, None, None)
    line = JsonFormatter().format(record)
    assert 1 == len(line.splitlines())
    assert line.isascii()
    entry = json.loads(line)
    assert message == entry["message"]
    assert ("INFO", "opsctl.test") == (entry["level"], entry["logger"])
    assert entry["time"].endswith("Z")


def test_secrets_are_redacted_from_messages_extras_and_tracebacks(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.warning("connect failed with password=%s for %s", "hunter2!", "postgres://admin:pw0rd@db:5432/app")
    logger.info('sent {"token": "abc.def", "user": "alice"} with Authorization: Bearer eyJabc.def')
    logger.info("rotated", extra={"new_password": "p4ss-word", "role": "app", "outcome": "ok"})
    try:
        raise RuntimeError(f"the server refused {DB_PASSWORD}")
    except RuntimeError:
        logger.exception("step failed")
    first, second, third, fourth = lines(stream)
    text = stream.getvalue()
    for secret in ("hunter2!", "pw0rd", "abc.def", "eyJabc", "p4ss-word", DB_PASSWORD):
        assert secret not in text
    assert f"connect failed with password={REDACTED} for postgres://admin:{REDACTED}@db:5432/app" == first["message"]
    assert f'sent {{"token": "{REDACTED}", "user": "alice"}} with Authorization: {REDACTED}' == second["message"]
    assert (REDACTED, "app", "ok") == (third["new_password"], third["role"], third["outcome"])
    assert f"RuntimeError: the server refused {REDACTED}" in fourth["error"]


def test_temporal_s_run_details_become_fields(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    details = {
        "activity_type": "rotate_credential.promote",
        "attempt": 2,
        "workflow_id": "RotateDbCredential-prod-1",
        "workflow_run_id": "0190-run",
        "workflow_type": "RotateDbCredential",
    }
    logger.info("step finished", extra={"temporal_activity": details, "duration_ms": 12.5, "outcome": "ok"})
    [entry] = lines(stream)
    fields = {key: entry[key] for key in ("workflow_id", "run_id", "kind", "step", "attempt")}
    assert {
        "workflow_id": "RotateDbCredential-prod-1",
        "run_id": "0190-run",
        "kind": "RotateDbCredential",
        "step": "rotate_credential.promote",
        "attempt": 2,
    } == fields
    assert (12.5, "ok") == (entry["duration_ms"], entry["outcome"])
    assert "temporal_activity" not in entry


def test_the_worker_process_logs_json_and_refuses_a_tracing_exporter_it_does_not_know(tmp_path: Path) -> None:
    settings = tmp_path / "worker.json"
    settings.write_text(json.dumps({"tracing": {"exporter": "jaeger"}}))
    ran = subprocess.run(
        [sys.executable, "-m", "worker", "--settings", str(settings)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == ran.returncode
    expected = (
        "opsctl worker: tracing.exporter: unknown trace exporter 'jaeger' "
        "(choose one of none, console, otlp-http, otlp-grpc)"
    )
    assert expected == ran.stderr.strip().splitlines()[-1]


def test_configure_sends_json_to_the_stream_and_keeps_temporal_details_out_of_the_text() -> None:
    from temporalio import activity, workflow

    root = logging.getLogger()
    kept = (
        root.handlers[:],
        root.level,
        workflow.logger.workflow_info_on_message,
        activity.logger.activity_info_on_message,
    )
    stream = io.StringIO()
    try:
        logs.configure([DB_PASSWORD], stream=stream)
        logging.getLogger("opsctl.test").info("worker polling q on %s", DB_PASSWORD)
        assert (False, False) == (workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message)
    finally:
        root.handlers[:], level, workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message = (
            kept
        )
        root.setLevel(level)
    assert f"worker polling q on {REDACTED}" == json.loads(stream.getvalue())["message"]
