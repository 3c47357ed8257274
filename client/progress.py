"""How long a step has left, from its heartbeats; and a live bar for it on a terminal (rich).

Off a terminal (CI logs, pipes) progress stays plain lines; the ETA is in the line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO


class Eta:
    """Time left for `total` at the rate seen since the step was first seen (per step and attempt)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first: dict[str, tuple[float, float]] = {}

    def __call__(self, key: str, done: float, total: float) -> float | None:
        now = self._clock()
        started, at_start = self._first.setdefault(key, (now, done))
        elapsed, moved = now - started, done - at_start
        if elapsed <= 0 or moved <= 0 or total <= done:
            return None
        return (total - done) * elapsed / moved


class Bars:
    """rich progress bars on a terminal; lines printed meanwhile go above them."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(file=stream)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    def update(self, key: str, label: str, done: float, total: float) -> None:
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(label, total=total)
        self._progress.update(self._tasks[key], completed=done, total=total, description=label)

    def print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        self._progress.stop()
