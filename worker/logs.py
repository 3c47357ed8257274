"""The worker's logs: one JSON object per line on stderr, encoded by `json.dumps` (any quote, newline
or odd byte in a message stays inside its string), with the run's fields where they are known.

Fields: time, level, logger, message, and — from Temporal's workflow and activity loggers, the
activity's run context (`worker.run_context`) and a record's own extras — workflow_id (opsctl's run
id), run_id (Temporal's), kind, environment, step (the activity type), attempt, duration_ms, outcome; an
exception's traceback as `error`.

Secrets are redacted on the way out, three ways: the values the worker knows to be secret (database
passwords, collector headers, payload keys: `WorkerSettings.secret_values`), the value of any extra
whose key names a secret, and in every text anything written like `password=…`, `"token": "…"`,
`Bearer …` or a URL's `user:password@`. It is the last line of defence: the adapters already keep
secrets out of what they raise and return.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from worker import run_context

REDACTED = "<redacted>"
SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|api[-_]?key|credential|private[-_]?key", re.I
)
_KEY_WORDS = (
    r"[\w.-]*(?:pass(?:word|wd|phrase)?|secret|token|authori[sz]ation|api[-_]?key|credential|private[-_]?key)[\w.-]*"
)
# key=value, key: value, "key": "value", 'key'='value' … (the value: quoted, or up to a separator)
_ASSIGNED = re.compile(
    rf"""(?P<key>["']?{_KEY_WORDS}["']?\s*(?:=|:)\s*)(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:Bearer|Basic)\s+[^\s,;&)}}\]]+|[^\s,;&)}}\]]+)""",
    re.I,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+@", re.I)
MIN_SECRET_LENGTH = 4  # shorter known "secrets" would redact ordinary words

# Temporal's dictionaries on a record's extra → our field names.
_TEMPORAL_FIELDS = {
    "temporal_workflow": {
        "workflow_id": "workflow_id",
        "run_id": "run_id",
        "workflow_type": "kind",
        "attempt": "attempt",
    },
    "temporal_activity": {
        "workflow_id": "workflow_id",
        "workflow_run_id": "run_id",
        "workflow_type": "kind",
        "activity_type": "step",
        "attempt": "attempt",
    },
}
_FIELDS = ("workflow_id", "run_id", "kind", "environment", "step", "attempt", "duration_ms", "outcome")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", *_TEMPORAL_FIELDS}


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _ASSIGNED.sub(lambda m: m["key"] + _hidden(m["value"]), text)
        text = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)
        return _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED + "@", text)

    def value(self, key: str, value: Any) -> Any:
        if SECRET_KEY.search(key) and value not in (None, "", 0, False):
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {str(k): self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(key, item) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.text(str(value))


def _hidden(value: str) -> str:
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{quote}{REDACTED}{quote}"


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redactor.text(record.getMessage()),
        }
        entry.update(self._run_fields(record))
        for key, value in vars(record).items():  # extras given to the call
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = self.redactor.value(key, value)
        if record.exc_info:
            entry["error"] = self.redactor.text(self.formatException(record.exc_info))
        elif record.stack_info:
            entry["error"] = self.redactor.text(record.stack_info)
        # ensure_ascii: whatever bytes a message carried, the line is plain ASCII JSON
        return json.dumps(entry, ensure_ascii=True, default=str)

    def _run_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        context = run_context.current()
        if context is not None:
            fields.update(context.log_fields())
        for name, renames in _TEMPORAL_FIELDS.items():
            given = getattr(record, name, None)
            if isinstance(given, Mapping):
                fields.update({ours: given[theirs] for theirs, ours in renames.items() if given.get(theirs)})
        ordered = {key: fields[key] for key in _FIELDS if key in fields}
        return {key: self.redactor.value(key, value) for key, value in ordered.items()}


def configure(secrets: Iterable[str] = (), stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """The worker process's logging: JSON lines on stderr, Temporal's run details as fields, not text."""
    from temporalio import activity, workflow

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(Redactor(secrets)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The same details go into the record's extra (temporal_workflow / temporal_activity): not into the text.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
