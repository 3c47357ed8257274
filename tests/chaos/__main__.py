"""`make chaos`: real faults on a real embedded stack of its own, figures into the README.

    python -m tests.chaos [--only kills,temporal,postgres,aws,concurrent,fuzz] [--match STEP@POINT]
                          [--outage SECONDS] [--cases N] [--parallel N] [--readme] [--keep]

1. every step of every operation, its worker SIGKILLed before, during and after its side effect;
2. the Temporal dev server SIGTERMed and SIGKILLed mid-run, then restarted;
3. PostgreSQL stopped during a backfill, after a migration's first commit and right after a
   rotation's ALTER ROLE; the AWS endpoint frozen during a sweep;
4. fifty `opsctl apply` of one document at once;
5. hypothesis fuzzing of documents, CLI arguments and config files (tests/chaos/fuzz.py);
6. a secret scan of every history, log and captured output.
Every run must succeed with each side effect exactly once. Exit 0 when nothing was found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client

from client.devstack import DEV_AWS_ENV, Ports, Stack
from tests.chaos import report, scenarios
from tests.chaos.scenarios import Chaos, Outcome
from tests.identities import stack_worker_settings
from worker.converter import DATA_CONVERTER

PARTS = ("kills", "temporal", "postgres", "aws", "concurrent", "fuzz")


def say(line: str) -> None:
    print(line, flush=True)


async def campaign(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.update(DEV_AWS_ENV)
    workdir = scenarios.workdir()
    stack = Stack(workdir / "stack", Ports.free())
    say(f"chaos: embedded stack in {stack.state_dir}")
    await asyncio.to_thread(stack.up, worker=False)
    figures: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    outcomes: list[Outcome] = []
    try:
        client = await Client.connect(stack.temporal_address, data_converter=DATA_CONVERTER)
        # Requests time out after 20 s, so a 60 s freeze of the AWS endpoint is met by timeouts and retries.
        settings = stack_worker_settings(stack)
        settings = settings.model_copy(update={"aws": settings.aws.model_copy(update={"read_timeout_seconds": 20})})
        chaos = Chaos(stack, client, settings, workdir)
        parts = args.only.split(",") if args.only else list(PARTS)
        if "kills" in parts:
            points = [p for p in scenarios.kill_points() if args.match in f"{p[1]}@{p[2]}"]
            say(f"1. worker SIGKILL at {len(points)} points ({args.parallel} at a time) …")
            kills = await scenarios.kill_matrix(chaos, points, parallel=args.parallel, say=say)
            outcomes += kills
            figures["recovery"] = scenarios.recovery_figures(kills)
        if "temporal" in parts:
            for how in (signal.SIGTERM, signal.SIGKILL):
                say(f"2. Temporal dev server {how.name} mid-run …")
                outcomes.append(await scenarios.restart_temporal(chaos, how))
                say_outcome(outcomes[-1])
        if "postgres" in parts:
            say(f"3. PostgreSQL stopped for {args.outage:.0f} s under three runs …")
            for outcome in await scenarios.postgres_outage(chaos, args.outage):
                outcomes.append(outcome)
                say_outcome(outcome)
        if "aws" in parts:
            say(f"3. the AWS endpoint frozen for {args.outage:.0f} s under a sweep …")
            outcomes.append(await scenarios.aws_freeze(chaos, args.outage))
            say_outcome(outcomes[-1])
        if "concurrent" in parts:
            say("4. fifty applies of one document at once …")
            outcomes.append(await scenarios.concurrent_applies(chaos, 50))
            say_outcome(outcomes[-1])
        if "fuzz" in parts:
            say(f"5. fuzzing documents, CLI arguments and config files ({args.cases:,} cases) …")
            figures["fuzz"] = await asyncio.to_thread(fuzz, args.cases)
            say(f"   {figures['fuzz']['tried']:,} inputs, {figures['fuzz']['failures']} failures")
        say("6. secret scan …")
        places, secrets, leaks = await scenarios.secret_scan(chaos, [workdir])
        figures["scan"] = {"places": places, "secrets": secrets, "leaks": leaks}
        say(f"   {places} histories and files searched for {secrets} secrets: {len(leaks)} leaks")
    finally:
        await asyncio.to_thread(stack.down)
    figures["outcomes"] = [vars(outcome) for outcome in outcomes]
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def fuzz(cases: int) -> dict[str, Any]:
    from tests.chaos.fuzz import campaign as fuzz_campaign

    return fuzz_campaign(cases).as_json()


def say_outcome(outcome: Outcome) -> None:
    verdict = "ok" if not outcome.problems else "; ".join(outcome.problems)
    say(f"   {outcome.kind}, {outcome.fault}: {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--only", default="", help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds PostgreSQL / AWS stay down")
    parser.add_argument("--cases", type=int, default=10_000, help="fuzzing cases")
    parser.add_argument("--parallel", type=int, default=4, help="kill scenarios at a time")
    parser.add_argument("--match", default="", help="only kill points whose STEP@POINT contains this")
    parser.add_argument("--readme", action="store_true", help="write the figures into README.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (stack, logs)")
    args = parser.parse_args()
    started = time.monotonic()
    figures = asyncio.run(campaign(args))
    figures["wall_seconds"] = round(time.monotonic() - started)
    summary = report.summary(figures)
    print(summary)
    Path("test-artifacts").mkdir(exist_ok=True)
    Path("test-artifacts/chaos.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if args.readme:
        report.write_readme(Path("README.md"), summary)
    return 0 if report.clean(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
