"""b. The CLI: what a person or a CI loop waits for, each command against `python -c pass`,
and `apply --wait` / `result --wait` against the run's own duration (its history's start to close).

Every command is the installed `opsctl` in a fresh process, as CI calls it, on the bench's stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

from client.devstack import seed_role
from tests.benchmarks.common import ROOT, Bench, median, percentile, table

OPSCTL = str(Path(sys.executable).with_name("opsctl"))
RUNS = 10
ROTATION = """apiVersion: opsctl/v1
kind: RotateDbCredential
metadata: {{environment: dev, idempotencyKey: {key}}}
spec: {{database: app, role: bench_user, secretId: bench/bench_user}}
"""


def environment(bench: Bench) -> dict[str, str]:
    """The stack's own settings and nothing from this machine's: no user config file."""
    return {**os.environ, "OPSCTL_STATE_DIR": str(bench.stack.state_dir), "OPSCTL_CONFIG": "", "OPSCTL_USER": "alice"}


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return (time.perf_counter() - started) * 1000, done


def samples(argv: list[str], env: dict[str, str], runs: int = RUNS) -> list[float]:
    walls = []
    for _ in range(runs):
        wall, done = timed(argv, env)
        if done.returncode != 0:
            raise SystemExit(f"`{' '.join(argv)}` exited {done.returncode}: {done.stderr.strip()}")
        walls.append(wall)
    return walls


async def run_times(bench: Bench, workflow_id: str) -> tuple[float, float]:
    """(start to close in the run's own history in ms, its close as a Unix time): what a wait is measured against."""
    handle = bench.client.get_workflow_handle(workflow_id)
    events = [event async for event in handle.fetch_history_events()]
    first, last = events[0].event_time.ToDatetime(UTC), events[-1].event_time.ToDatetime(UTC)
    return (last - first).total_seconds() * 1000, last.timestamp()


async def waits(bench: Bench, env: dict[str, str], command: str, runs: int) -> list[tuple[float, float]]:
    """For `runs` fresh dev rotations: (what the command added in ms, the run's own duration in ms).

    `apply --wait` adds its wall time over the run's duration; `result --wait` (called once `apply` has
    started the run) adds the time from the run's close to the command's exit."""
    folder = bench.stack.state_dir / "bench-cli"
    folder.mkdir(exist_ok=True)
    pairs = []
    for n in range(runs):
        key = f"bench-{command}-{time.time_ns()}-{n}"
        document = folder / f"{key}.yaml"
        document.write_text(ROTATION.format(key=key))
        run = f"RotateDbCredential-dev-{key}"
        if command == "apply":
            wall, done = await asyncio.to_thread(timed, [OPSCTL, "apply", "-f", str(document), "--wait"], env)
        else:  # result --wait: started by the next command, so the wait covers the whole run
            started = await asyncio.to_thread(timed, [OPSCTL, "apply", "-f", str(document)], env)
            if started[1].returncode != 0:
                raise SystemExit(f"apply exited {started[1].returncode}: {started[1].stderr.strip()}")
            wall, done = await asyncio.to_thread(timed, [OPSCTL, "result", run, "--wait"], env)
        exited = time.time()
        if done.returncode != 0:
            raise SystemExit(f"{command} --wait exited {done.returncode}: {done.stderr.strip()}")
        own, closed = await run_times(bench, run)
        pairs.append((wall - own if command == "apply" else (exited - closed) * 1000, own))
    return pairs


async def run(bench: Bench) -> list[str]:
    env = environment(bench)
    seed_role(bench.stack, "bench_user", "bench/bench_user")
    example = str(ROOT / "examples" / "rotate-db-credential.yaml")
    runs = 3 if bench.quick else RUNS
    pairs = {command: await waits(bench, env, command, runs) for command in ("apply", "result")}
    last = json.loads(timed([OPSCTL, "list", "-o", "json", "--limit", "1"], env)[1].stdout)["runs"][0]["run_id"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "opsctl --help": [OPSCTL, "--help"],
        "opsctl validate -f examples/rotate-db-credential.yaml": [OPSCTL, "validate", "-f", example],
        "opsctl status RUN": [OPSCTL, "status", last],
        "opsctl list": [OPSCTL, "list"],
    }
    walls = {name: await asyncio.to_thread(samples, argv, env, runs) for name, argv in commands.items()}
    floor = median(walls["python -c pass"])
    rows = [
        [f"`{name}`", f"{median(ms):.0f}", f"{percentile(ms, 0.95):.0f}", f"+{median(ms) - floor:.0f}"]
        for name, ms in walls.items()
    ]
    wait_rows = [
        [
            f"`opsctl {command} --wait`",
            f"{median([own for _, own in measured]):.0f}",
            f"+{median([added for added, _ in measured]):.0f}",
            f"+{max(added for added, _ in measured):.0f}",
        ]
        for command, measured in pairs.items()
    ]
    return [
        "## b. CLI",
        "",
        f"Each command in a fresh process, {runs} times, on this stack (a real worker, `opsctl dev up`'s).",
        "",
        *table(["command", "median ms", "p95 ms", "over `python -c pass`"], rows),
        "",
        "A dev rotation (no approval) each time; the run's own duration is its history's first to last event.",
        "`apply --wait` adds its wall time over that duration (target +300 ms); `result --wait`, called once",
        "`apply` has started the run, adds the time from the run's close event to its exit (target +100 ms).",
        "",
        *table(["command", "run's own median ms", "added median ms", "added max ms"], wait_rows),
    ]
