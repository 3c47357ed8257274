"""Figures, not assertions: `make bench` prints how fast the CLI starts and plans hash.

CLI start-up matters because CI calls opsctl in loops; the plan hash is computed on every
phase change of a run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from contracts.plan import Action, Plan, PlannedAction, Rollback

ROOT = Path(__file__).resolve().parents[1]


def wall(argv: list[str], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, max(samples) * 1000


def plan_hashes_per_second(actions: int, seconds: float = 1.0) -> float:
    plan = Plan(
        kind="Bench",
        target="t",
        actions=[
            PlannedAction(
                action=Action.DELETE,
                resource_type="ec2:volume",
                resource_id=f"vol-{n:08x}",
                reason="stale",
                reversible=False,
                rollback=Rollback.NONE,
                observed={"state": "available"},
            )
            for n in range(actions)
        ],
    )
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        plan.hash()
        count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    opsctl = [sys.executable, "-m", "client.main"]
    example = str(ROOT / "examples" / "rotate-db-credential.yaml")
    for name, argv in (
        ("opsctl --help", [*opsctl, "--help"]),
        ("opsctl validate", [*opsctl, "validate", "-f", example]),
    ):
        median, worst = wall(argv, 10)
        print(f"{name:<18} median {median:7.1f} ms   max {worst:7.1f} ms   (10 runs)")
    for actions in (3, 1000):
        print(f"plan hash, {actions:>5} actions: {plan_hashes_per_second(actions):10.0f} per second")


if __name__ == "__main__":
    main()
