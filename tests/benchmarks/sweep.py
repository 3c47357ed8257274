"""Placeholder: the sweep benchmark lands here."""

from __future__ import annotations

from tests.benchmarks.common import Bench


async def run(bench: Bench) -> list[str]:
    return ["## sweep", "", "not measured yet"]
