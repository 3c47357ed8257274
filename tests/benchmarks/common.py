"""What every benchmark shares: the stack, a client, timing and percentiles, markdown tables."""

from __future__ import annotations

import os
import statistics
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from client.devstack import DEV_AWS_ENV, Ports, Stack
from worker.converter import DATA_CONVERTER

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Bench:
    stack: Stack
    client: Client
    quick: bool  # smaller sizes, for a smoke run

    @classmethod
    @asynccontextmanager
    async def started(cls, folder: Path, *, quick: bool) -> AsyncIterator[Bench]:
        os.environ.update(DEV_AWS_ENV)
        stack = Stack(folder / "stack", Ports.free())
        try:
            stack.up(worker=True, progress=print)
            client = await Client.connect(stack.temporal_address, data_converter=DATA_CONVERTER)
            yield cls(stack, client, quick)
        finally:
            stack.down()


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table; numbers are the caller's to format."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines
