"""Schedules: a request that recurs, what its requester signs for it, and its cadence in opsctl's words.

A schedule is a Temporal Schedule whose action starts the request's workflow with one signed
`RunInput`. Temporal names each fire `<schedule id>-<fire time>`, so a signature cannot name
the run: the requester signs a `ScheduleGrant` instead (this request, under this schedule id,
at this cadence, with this answer to drift), and the workflow believes it only for runs the
schedule itself is seen to have started. The cadence is written one canonical way
(`every 30d`, `cron 0 3 * * 1`): what the requester signs and what the worker reads back
from Temporal are compared as these strings. Pure functions, no SDK: the client builds the
Temporal spec from `Cadence`, the worker describes what Temporal holds with `describe_spec`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# What opsctl's schedule ids are made of (a request's run id: KIND-ENVIRONMENT-KEY).
SCHEDULE_ID_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"
# Temporal's overlap policy for every opsctl schedule: a fire while the schedule's previous run
# is still open is skipped (counted by Temporal), never queued, never run alongside.
OVERLAP = "skip"
CATCHUP_SECONDS = 24 * 3600  # a fire missed while Temporal was down still runs within a day of its time
DRIFT_APPLY_SUFFIX = "-apply"  # a drifting dry run's apply is `<dry run's id>-apply`
MAX_EVERY_SECONDS = 366 * 24 * 3600

_UNITS = {"w": 7 * 24 * 3600, "d": 24 * 3600, "h": 3600, "m": 60, "s": 1}
_EVERY = re.compile(r"^(?:[0-9]+[wdhms])+$")


class OnDrift(StrEnum):
    """What a scheduled dry run does when its plan has changes."""

    RECORD = "record"  # mark the run (OpsctlDrift) and say so; a person applies
    SUBMIT = "submit"  # ... and submit the apply, which waits for the normal approval


class ScheduleGrant(BaseModel):
    """What the requester signs for a schedule, carried in every one of its runs' input."""

    model_config = ConfigDict(frozen=True)

    schedule_id: str = Field(pattern=SCHEDULE_ID_PATTERN)
    cadence: str = Field(min_length=1, max_length=400)  # canonical (`Cadence.text`)
    on_drift: OnDrift = OnDrift.RECORD

    @property
    def scope(self) -> str:
        """What the request's signature names as its run: the schedule, not one fire."""
        return f"schedule/{self.schedule_id}"


class ScheduledRun(BaseModel):
    """A run a schedule started (or a drift's apply), as the workflow verified it: part of its state."""

    schedule_id: str
    cadence: str
    on_drift: OnDrift = OnDrift.RECORD
    scheduled_at: datetime | None = None  # the fire's nominal time
    drift_of: str = ""  # a drift's apply: the scheduled dry run whose plan found the drift
    drift: bool = False  # a scheduled dry run whose plan has changes
    submitted: str = ""  # ... and the apply run it submitted for approval (or found still open)


def fire_id(schedule_id: str, at: datetime) -> str:
    """The workflow id Temporal gives the fire of `schedule_id` at `at` (UTC, whole seconds)."""
    return f"{schedule_id}-{at:%Y-%m-%dT%H:%M:%SZ}"


def is_drift_apply_of(schedule_id: str, workflow_id: str) -> bool:
    """Is `workflow_id` the apply a dry run of this schedule submitted (`<fire id>-apply`)?"""
    pattern = rf"{re.escape(schedule_id)}-\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ{re.escape(DRIFT_APPLY_SUFFIX)}"
    return re.fullmatch(pattern, workflow_id) is not None


# ---- every ------------------------------------------------------------------------------


def _clip(text: str, limit: int = 60) -> str:
    """What a caller typed, for a message: quoted, and cut short."""
    return repr(text if len(text) <= limit else f"{text[:limit]}…")


def parse_every(text: str) -> int:
    """`30d`, `12h`, `1h30m`, `90s`, `2w` → seconds; ValueError saying what is wrong."""
    compact = text.strip().lower()
    if not _EVERY.match(compact):
        raise ValueError(f"--every {_clip(text)}: write a duration such as 30d, 12h, 1h30m or 90s (units w d h m s)")
    found = re.findall(r"([0-9]+)([wdhms])", compact)
    if any(len(number) > 9 for number, _ in found):
        raise ValueError(f"--every {_clip(text)}: at most 366d (a schedule's signature lasts a year at most)")
    seconds = sum(int(number) * _UNITS[unit] for number, unit in found)
    if seconds < 1:
        raise ValueError(f"--every {_clip(text)}: the interval must be at least 1s")
    if seconds > MAX_EVERY_SECONDS:
        raise ValueError(f"--every {_clip(text)}: at most 366d (a schedule's signature lasts a year at most)")
    return seconds


def format_every(seconds: int) -> str:
    """Seconds in the largest whole units: 2592000 → 30d, 5400 → 1h30m (weeks are written as days)."""
    parts = []
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


# ---- cron ---------------------------------------------------------------------------------

# (field, lowest, highest) in cron's order; Temporal's calendar has the same fields (plus second and year).
CRON_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day_of_month", 1, 31),
    ("month", 1, 12),
    ("day_of_week", 0, 6),
)
_NAMES = {
    "month": {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun"), 1)}
    | {m: i for i, m in enumerate(("jul", "aug", "sep", "oct", "nov", "dec"), 7)},
    "day_of_week": {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

Ranges = tuple[tuple[int, int, int], ...]  # (start, end, step), each inclusive, as Temporal's Range


def _number(field: str, token: str, low: int, high: int, expression: str) -> int:
    value = _NAMES.get(field, {}).get(token.lower())
    if value is None:
        if not (token.isascii() and token.isdigit()):
            raise ValueError(
                f"--cron {_clip(expression)}: {_clip(token, 20)} is not a value of the {_words(field)} field"
            )
        if len(token) > 4:
            raise ValueError(f"--cron {_clip(expression)}: {_clip(token, 20)} is outside the {_words(field)} field")
        value = int(token)
    top = 7 if field == "day_of_week" else high  # cron writes Sunday as 0 or 7
    if not low <= value <= top:
        raise ValueError(f"--cron {_clip(expression)}: {token} is outside the {_words(field)} field ({low}-{high})")
    return value


def _words(field: str) -> str:
    return field.replace("_", " ")


def _field_values(field: str, text: str, low: int, high: int, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        if slash and (not (step_text.isascii() and step_text.isdigit()) or len(step_text) > 4 or int(step_text) == 0):
            raise ValueError(f"--cron {_clip(expression)}: the step in {_clip(item, 20)} must be a positive number")
        step = int(step_text or 1)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = (_number(field, token, low, high, expression) for token in (first, last))
            if end < start:
                raise ValueError(f"--cron {_clip(expression)}: the range {_clip(body, 20)} runs backwards")
        elif body:
            start = _number(field, body, low, high, expression)
            end = high if slash else start  # `10/5`: from 10 to the field's end, every 5
        else:
            raise ValueError(f"--cron {_clip(expression)}: an empty item in the {_words(field)} field")
        values.update(low if value > high else value for value in range(start, end + 1, step))  # Sunday 7 is 0
    return frozenset(values)


class Cadence(BaseModel):
    """When a schedule fires: every N seconds, or on a cron expression's minutes (UTC). `text` is canonical."""

    model_config = ConfigDict(frozen=True)

    every_seconds: int | None = None
    calendar: dict[str, Ranges] | None = None  # cron field → Temporal ranges (second 0, any year)

    @property
    def text(self) -> str:
        if self.every_seconds is not None:
            return f"every {format_every(self.every_seconds)}"
        assert self.calendar is not None, "a cadence is an interval or a calendar"
        return describe_calendar(self.calendar)


def every(text: str) -> Cadence:
    return Cadence(every_seconds=parse_every(text))


def cron(expression: str) -> Cadence:
    """A 5-field cron expression (minute hour day-of-month month day-of-week, UTC) or a macro (@daily …)."""
    text = _MACROS.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) != len(CRON_FIELDS):
        raise ValueError(
            f"--cron {_clip(expression)}: give 5 fields (minute hour day-of-month month day-of-week, in UTC), "
            "e.g. '0 3 * * 1' (Mondays 03:00), or @hourly, @daily, @weekly, @monthly, @yearly"
        )
    calendar: dict[str, Ranges] = {}
    for (field, low, high), part in zip(CRON_FIELDS, fields, strict=True):
        values = _field_values(field, part, low, high, expression)
        calendar[field] = _ranges(values)
    full = {field: _expand(((low, high, 1),)) for field, low, high in CRON_FIELDS}
    if _expand(calendar["day_of_month"]) != full["day_of_month"] and (
        _expand(calendar["day_of_week"]) != full["day_of_week"]
    ):
        raise ValueError(
            f"--cron {_clip(expression)}: restrict the day of the month or the day of the week, not both "
            "(cron fires on either, Temporal only on days that match both)"
        )
    return Cadence(calendar=calendar)


def _ranges(values: Iterable[int]) -> Ranges:
    """Sorted values → Temporal ranges: each run of consecutive values is one range, step 1."""
    ordered = sorted(values)
    ranges: list[tuple[int, int, int]] = []
    for value in ordered:
        if ranges and ranges[-1][1] == value - 1:
            ranges[-1] = (ranges[-1][0], value, 1)
        else:
            ranges.append((value, value, 1))
    return tuple(ranges)


def _expand(ranges: Iterable[tuple[int, int, int]]) -> frozenset[int]:
    """Temporal's reading of ranges: `end` below `start` means `start` alone; step 0 means 1."""
    return frozenset(value for start, end, step in ranges for value in range(start, max(start, end) + 1, step or 1))


def _cron_field(values: frozenset[int], low: int, high: int) -> str:
    if values == frozenset(range(low, high + 1)):
        return "*"
    ordered = sorted(values)
    for step in range(2, (high - low) // 2 + 1):  # at least three values: {1, 12} is not `*/11`
        if values == frozenset(range(low, high + 1, step)):
            return f"*/{step}"
    parts = [f"{start}" if start == end else f"{start}-{end}" for start, end, _ in _ranges(ordered)]
    return ",".join(parts)


def describe_calendar(calendar: dict[str, Ranges]) -> str:
    """`cron M H DOM MON DOW`, each field written from the values it matches: one spelling per meaning."""
    fields = [_cron_field(_expand(calendar.get(field, ())), low, high) for field, low, high in CRON_FIELDS]
    return "cron " + " ".join(fields)


# ---- reading back what Temporal holds ----------------------------------------------------


def _seconds(duration: Any) -> float:
    """A protobuf Duration as JSON ('2592000s', '1.5s') → seconds."""
    text = str(duration or "0s")
    return float(text[:-1]) if text.endswith("s") else float(text)


def _proto_ranges(ranges: Any) -> Ranges:
    return tuple((int(r.get("start", 0)), int(r.get("end", 0)), int(r.get("step", 0))) for r in ranges or ())


def describe_spec(spec: dict[str, Any], policies: dict[str, Any] | None = None) -> str:
    """A Temporal ScheduleSpec (and its policies) as JSON (protobuf field names) → the cadence in opsctl's words.

    What opsctl creates reads back as exactly its `Cadence.text`; anything else a schedule was
    given or changed to (a second interval, jitter, an end time, another overlap policy…) is
    named after it, so it can never read as the cadence someone signed.
    """
    parts = []
    for interval in spec.get("interval", ()):
        text = f"every {format_every(round(_seconds(interval.get('interval'))))}"
        phase = round(_seconds(interval.get("phase")))
        parts.append(text + (f" offset {format_every(phase)}" if phase else ""))
    for calendar in spec.get("structured_calendar", ()):
        fields = {name: _proto_ranges(calendar.get(name)) for name, _, _ in CRON_FIELDS}
        text = describe_calendar(fields)
        seconds = _expand(_proto_ranges(calendar.get("second"))) or frozenset({0})
        if seconds != frozenset({0}):
            text += f" at seconds {_cron_field(seconds, 0, 59)}"
        if calendar.get("year"):
            text += f" in years {_cron_field(_expand(_proto_ranges(calendar.get('year'))), 0, 9999)}"
        parts.append(text)
    extras = [f"cron {expression}" for expression in spec.get("cron_string", ())]
    if spec.get("calendar"):
        extras.append(f"{len(spec['calendar'])} calendar spec(s)")
    if spec.get("exclude_calendar") or spec.get("exclude_structured_calendar"):
        extras.append("with exclusions")
    for key, word in (("start_time", "from"), ("end_time", "until")):
        if spec.get(key):
            extras.append(f"{word} {spec[key]}")
    if _seconds(spec.get("jitter")):
        extras.append(f"jitter {format_every(round(_seconds(spec.get('jitter'))))}")
    if spec.get("timezone_name") or spec.get("timezone_data"):
        extras.append(f"time zone {spec.get('timezone_name') or 'data'}")
    overlap = str((policies or {}).get("overlap_policy", "")).removeprefix("SCHEDULE_OVERLAP_POLICY_").lower()
    if overlap not in ("", "unspecified", OVERLAP):
        extras.append(f"overlap {overlap}")
    return (" + ".join(parts) or "never") + "".join(f" ({extra})" for extra in extras)
