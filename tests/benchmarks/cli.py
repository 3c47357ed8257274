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


async def applies(bench: Bench, env: dict[str, str], runs: int) -> list[tuple[float, float]]:
    """For `runs` fresh dev rotations: (what `apply --wait` added to the run's duration, that duration), ms."""
    folder = bench.stack.state_dir / "bench-cli"
    folder.mkdir(exist_ok=True)
    pairs = []
    for n in range(runs):
        key = f"bench-apply-{time.time_ns()}-{n}"
        document = folder / f"{key}.yaml"
        document.write_text(ROTATION.format(key=key))
        wall, done = await asyncio.to_thread(timed, [OPSCTL, "apply", "-f", str(document), "--wait"], env)
        if done.returncode != 0:
            raise SystemExit(f"apply --wait exited {done.returncode}: {done.stderr.strip()}")
        own, _ = await run_times(bench, f"RotateDbCredential-dev-{key}")
        pairs.append((wall - own, own))
    return pairs


async def approvals(bench: Bench, env: dict[str, str], runs: int) -> list[tuple[float, float]]:
    """For `runs` prod rotations awaiting approval, with `opsctl result RUN --wait --until-approved`
    already following each: bob approves through `client.runs.decide` (what `opsctl approve` calls:
    read the run, send the signed update, its verdict, the run as it left it).

    Returns (the decision's ms, ms from the run's close event to the waiting command's exit)."""
    from client.config import load_config
    from client.runs import connect, decide, read_state
    from contracts.run import Decision, DecisionInput

    config = load_config("bob", str(bench.stack.state_dir))
    client = await connect(config)
    folder = bench.stack.state_dir / "bench-cli"
    measured = []
    for n in range(runs):
        key = f"bench-approve-{time.time_ns()}-{n}"
        document = folder / f"{key}.yaml"
        document.write_text(ROTATION.format(key=key).replace("environment: dev", "environment: prod"))
        await asyncio.to_thread(timed, [OPSCTL, "apply", "-f", str(document), "--wait"], env)  # exit 7: awaiting
        run = f"RotateDbCredential-prod-{key}"
        waiting = await asyncio.create_subprocess_exec(
            OPSCTL,
            "result",
            run,
            "--wait",
            "--until-approved",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.sleep(3)  # it has started and is following the run
        handle = client.get_workflow_handle(run)
        approval = DecisionInput(actor="bob", plan_hash=(await read_state(handle)).plan_hash)
        started = time.perf_counter()
        record, _ = await decide(handle, Decision.APPROVE, approval, keys=config.keyring())
        decided = (time.perf_counter() - started) * 1000
        if not record.accepted:
            raise SystemExit(f"bob's approval was refused: {record.reason}")
        code = await waiting.wait()
        exited = time.time()
        if code != 0:
            raise SystemExit(f"result --wait exited {code}")
        _, closed = await run_times(bench, run)
        measured.append((decided, (exited - closed) * 1000))
    return measured


async def run(bench: Bench) -> list[str]:
    env = environment(bench)
    seed_role(bench.stack, "bench_user", "bench/bench_user")
    example = str(ROOT / "examples" / "rotate-db-credential.yaml")
    runs = 3 if bench.quick else RUNS
    applied = await applies(bench, env, runs)
    approved = await approvals(bench, env, runs)
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
    added = [extra for extra, _ in applied]
    decided, after_close = [ms for ms, _ in approved], [ms for _, ms in approved]
    return [
        "## b. CLI",
        "",
        f"Each command in a fresh process, {runs} times, on this stack (a real worker, `opsctl dev up`'s).",
        "",
        *table(["command", "median ms", "p95 ms", "over `python -c pass`"], rows),
        "",
        "`opsctl apply --wait` of a dev rotation (no approval): the run's own duration (its history's first to",
        f"last event) median {median([own for _, own in applied]):.0f} ms; the command adds median "
        f"+{median(added):.0f} ms, max +{max(added):.0f} ms (target +300 ms).",
        "",
        "A prod rotation, `opsctl result RUN --wait --until-approved` following it; bob approves through",
        "`client.runs.decide` (what `opsctl approve` calls: read the run, send the signed update, take its",
        f"verdict, read the run as it left it): median {median(decided):.0f} ms, max {max(decided):.0f} ms "
        "(target: the verdict within 200 ms).",
        f"The run then applies and closes; `result --wait` exits median {median(after_close):.0f} ms, max "
        f"{max(after_close):.0f} ms after the close event (target 100 ms).",
    ]
