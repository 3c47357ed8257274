"""Progress of long steps: an ETA from the heartbeat rate; a live bar on a terminal, lines elsewhere."""

from __future__ import annotations

import io

from client.main import _Progress
from client.progress import Eta


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eta_is_the_rest_at_the_rate_seen_so_far() -> None:
    now = [100.0]
    eta = Eta(clock=lambda: now[0])
    assert eta("backfill#1", 200, 2000) is None  # one reading: no rate yet
    now[0] = 110.0
    assert 80.0 == eta("backfill#1", 400, 2000)  # 200 rows in 10 s: the 1,600 left take 80 s
    assert eta("backfill#2", 400, 2000) is None  # another attempt starts its own count
    assert eta("backfill#1", 2000, 2000) is None  # done: nothing left


def test_a_terminal_gets_a_live_bar_and_lines_above_it() -> None:
    stream = Terminal()
    progress = _Progress(stream, "text", io.StringIO())
    assert progress.bar("backfill#1", "backfill (rows)", 5, 10)
    progress("[applying] step 1/1: backfill …")
    progress.close()
    shown = stream.getvalue()
    assert "[applying] step 1/1: backfill …" in shown
    assert "5/10" in shown


def test_off_a_terminal_or_in_json_there_is_no_bar() -> None:
    assert not _Progress(io.StringIO(), "text").bar("k", "label", 1, 2)
    assert not _Progress(Terminal(), "json").bar("k", "label", 1, 2)
