"""The change calendar: is a freeze in force at an instant, and until when. Pure and in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from contracts.policy import Freeze, Weekday, WeeklyFreeze

_DAYS = list(Weekday)
_LONGEST = timedelta(days=366)  # a calendar frozen for longer than this is reported as such


def _weekly(window: WeeklyFreeze, around: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The window's occurrences in the weeks before, of and after `around`."""
    monday = around.date() - timedelta(days=around.weekday())
    for week in (-1, 0, 1):
        for day in window.days:
            on: date = monday + timedelta(days=7 * week + _DAYS.index(day))
            start = datetime.combine(on, window.start, UTC)
            end = datetime.combine(on, window.end, UTC)
            if end <= start:  # ends the next day (00:00 is the day's midnight)
                end += timedelta(days=1)
            yield start, end


def _covering(freeze: Freeze, at: datetime) -> tuple[datetime, str] | None:
    """The latest end among the freezes in force at `at`, with the reason of the first one."""
    hits = [(blackout.end, blackout.reason) for blackout in freeze.dates if blackout.start <= at < blackout.end]
    for window in freeze.weekly:
        hits += [(end, window.reason) for start, end in _weekly(window, at) if start <= at < end]
    if not hits:
        return None
    return max(end for end, _ in hits), hits[0][1]


def frozen_until(freeze: Freeze, now: datetime) -> tuple[datetime, str] | None:
    """None when changes may run at `now`; else when the freeze (and any freeze it runs into) ends, and why.

    Adjacent and overlapping windows chain: a Friday-evening freeze followed by a weekend
    freeze ends on Monday morning.
    """
    at, reason = now.astimezone(UTC), ""
    while at - now < _LONGEST:
        hit = _covering(freeze, at)
        if hit is None:
            break
        at, why = hit
        reason = reason or why
    return (at, reason) if at != now else None
