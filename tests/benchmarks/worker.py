"""A real `python -m worker` for one benchmark section: its own task queue and policy file, on the
bench's stack, in a process of its own, so its peak memory is read from /proc (VmHWM) and is the
worker's alone, not the benchmark's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from client.devstack import DEMO_DATABASE, DEV_AWS_ENV
from tests.benchmarks.common import ROOT, Bench
from tests.identities import policy_document

READY = "worker polling"  # what `python -m worker` logs once its Worker runs


@dataclass
class Memory:
    rss_mib: float  # VmRSS now
    peak_mib: float  # VmHWM: the most the process ever held


@dataclass
class BenchWorker:
    queue: str
    process: subprocess.Popen[bytes]
    log: Path

    def memory(self) -> Memory:
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        kib = {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}
        return Memory(kib["VmRSS"] / 1024, kib["VmHWM"] / 1024)


@asynccontextmanager
async def bench_worker(bench: Bench, name: str, **environments: dict[str, Any]) -> AsyncIterator[BenchWorker]:
    """`python -m worker` polling a fresh queue; `environments` replace policy environments (e.g. dev)."""
    folder = bench.stack.state_dir / "bench" / f"{name}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    policy = folder / "policy.yaml"
    policy.write_text(yaml.safe_dump(policy_document(**environments)))
    queue = folder.name
    settings = {
        "temporal": {"address": bench.stack.temporal_address, "task_queue": queue},
        # moto answers a listing of 10,000 volumes in one unpaged response that takes it minutes.
        "aws": {"endpoint_url": bench.stack.aws_endpoint, "region": "us-east-1", "read_timeout_seconds": 900},
        "databases": {DEMO_DATABASE: bench.stack.database_target(DEMO_DATABASE)},
        "policy_file": str(policy),
        "environments": sorted(environments) or ["dev"],
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPSCTL_")}  # no codec keys: plain
    env.update({**DEV_AWS_ENV, "PYTHONPATH": str(ROOT)})
    log = folder / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - starting it takes milliseconds; it then runs on its own
            [sys.executable, "-m", "worker", "--settings", str(folder / "settings.json")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while READY not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bench worker did not start; see {log}")
            await asyncio.sleep(0.2)
        yield BenchWorker(queue, process, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
