"""The chaos scenarios, each on the real embedded stack, each returning what it saw.

A scenario injects real faults — SIGKILL of a worker process, SIGTERM/SIGKILL of the Temporal
dev server, PostgreSQL stopped, the AWS endpoint frozen with SIGSTOP, fifty CLIs at once —
then counts side effects (operations.py) and measures recovery from the run's own history.
`tests.chaos.__main__` runs them all (`make chaos`); tests/integration/test_chaos.py runs a
reduced set inside the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from client.devstack import Stack
from client.runs import start_run
from contracts.run import RunState
from tests.chaos.operations import (
    DURING_WRITES,
    OPERATIONS,
    Operation,
    Prepared,
    backfilled,
    prepare_backfill,
    prepare_migration,
    prepare_rotation,
    prepare_sweep,
)
from tests.identities import KEYRING, KEYS_DIR, POLICY_FILE
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 180.0


@dataclass
class Outcome:
    """One run under one fault: what struck, how long the run took to come back, what went wrong."""

    scenario: str
    kind: str
    fault: str
    struck: bool = False
    recovery_seconds: float | None = None
    problems: list[str] = field(default_factory=list)
    workflow_id: str = ""
    at_kill: str = ""  # how far a step that works through many items had got when it was killed


@dataclass
class Chaos:
    """What every scenario shares: the stack, a client, the worker settings, a folder for logs."""

    stack: Stack
    client: Client
    settings: WorkerSettings
    workdir: Path
    secrets: list[str] = field(default_factory=list)
    workflow_ids: list[str] = field(default_factory=list)

    def settings_file(self, queue: str) -> Path:
        temporal = self.settings.temporal.model_copy(update={"task_queue": queue})
        path = self.workdir / f"worker-{queue}.json"
        path.write_text(self.settings.model_copy(update={"temporal": temporal}).model_dump_json())
        return path

    async def start_worker(self, queue: str, *fault: str, name: str = "") -> asyncio.subprocess.Process:
        """`python -m worker` (or the fault-injecting one with `fault` args), logging to the workdir."""
        module = ["tests.chaos.faults", *fault] if fault else ["worker"]
        log = (self.workdir / f"{name or queue}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *module,
            "--settings",
            str(self.settings_file(queue)),
            cwd=ROOT,
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        log.close()
        return process

    @contextlib.asynccontextmanager
    async def worker(self, queue: str, *fault: str, name: str = "") -> AsyncIterator[asyncio.subprocess.Process]:
        process = await self.start_worker(queue, *fault, name=name)
        try:
            yield process
        finally:
            await stop(process)

    async def start(self, prepared: Prepared, queue: str) -> WorkflowHandle[Any, RunState]:
        handle, _ = await start_run(self.client, prepared.request, task_queue=queue, keys=KEYRING)
        self.workflow_ids.append(handle.id)
        return handle

    async def finish(self, prepared: Prepared, handle: WorkflowHandle[Any, RunState]) -> list[str]:
        state = await asyncio.wait_for(handle.result(), RUN_TIMEOUT)
        problems = await prepared.check(state)
        self.secrets.extend(prepared.secrets)
        return problems


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


def queue_name(what: str) -> str:
    return f"chaos-{what}-{uuid.uuid4().hex[:6]}".replace(".", "-").replace("@", "-")


# ---- 1. worker SIGKILL at every point of every step --------------------------------------------


def kill_points(operations: Iterable[Operation] = OPERATIONS) -> list[tuple[Operation, str, str]]:
    return [(op, step, point) for op in operations for step, points in op.steps.items() for point in points]


async def kill_worker(chaos: Chaos, operation: Operation, step: str, point: str) -> Outcome:
    """Start the run on a worker that SIGKILLs itself at `step@point`; a fresh worker finishes it."""
    outcome = Outcome("worker SIGKILL", operation.kind, f"{step}@{point}")
    prepared = await operation.prepare(chaos.stack)
    queue = queue_name(f"{step}-{point}")
    writes = str(DURING_WRITES.get(step, 1))
    doomed = await chaos.start_worker(queue, "--at", f"{step}@{point}", "--writes", writes, "--kill")
    handle = await chaos.start(prepared, queue)
    outcome.workflow_id = handle.id
    result = asyncio.ensure_future(handle.result())
    died = asyncio.ensure_future(doomed.wait())
    await asyncio.wait([result, died], timeout=RUN_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    killed_at = datetime.now().astimezone()
    outcome.struck = died.done() and doomed.returncode == -signal.SIGKILL
    if outcome.struck and point == "during" and step in DURING_WRITES and operation.progress:
        done, total = await operation.progress(chaos.stack, prepared)
        outcome.at_kill = f"{done} of {total} done"
        if not 0 < done < total:
            outcome.problems.append(f"the kill missed the middle of the step: {done} of {total} done")
    if not outcome.struck:
        await stop(doomed)
        died.cancel()
    async with chaos.worker(queue, name=f"{queue}-after"):
        try:
            await asyncio.wait_for(asyncio.shield(result), RUN_TIMEOUT)
        except TimeoutError:
            outcome.problems.append(f"the run did not finish within {RUN_TIMEOUT:.0f} s of the kill")
            result.cancel()
            return outcome
    outcome.problems += await prepared.check(result.result())
    chaos.secrets.extend(prepared.secrets)
    if outcome.struck:
        outcome.recovery_seconds = await retried_after(handle, step, killed_at)
    else:
        outcome.problems.append(f"the fault never struck: {step} did not reach {point}")
    return outcome


async def retried_after(handle: WorkflowHandle[Any, RunState], step: str, killed_at: datetime) -> float | None:
    """Seconds from the kill to the start of the step's retry, from the run's history (server clock)."""
    scheduled: set[int] = set()
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == step:
                scheduled.add(event.event_id)
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in scheduled and started.attempt >= 2:
                return max(0.0, (event.event_time.ToDatetime().astimezone() - killed_at).total_seconds())
    return None  # a kill after a step's last attempt (a probe read again later): nothing retried


async def kill_matrix(
    chaos: Chaos, points: list[tuple[Operation, str, str]], parallel: int = 4, say: Callable[[str], None] = print
) -> list[Outcome]:
    limit = asyncio.Semaphore(parallel)

    async def one(operation: Operation, step: str, point: str) -> Outcome:
        async with limit:
            started = time.monotonic()
            try:
                outcome = await kill_worker(chaos, operation, step, point)
            except Exception as exc:  # a scenario that breaks is a finding, not a crash of the campaign
                outcome = Outcome("worker SIGKILL", operation.kind, f"{step}@{point}", problems=[repr(exc)])
            recovery = "-" if outcome.recovery_seconds is None else f"{outcome.recovery_seconds:.1f} s"
            verdict = "ok" if not outcome.problems else "; ".join(outcome.problems)
            where = f" ({outcome.at_kill} at the kill)" if outcome.at_kill else ""
            say(
                f"  kill {step}@{point}{where}: recovered {recovery}, "
                f"{time.monotonic() - started:.0f} s in all: {verdict}"
            )
            return outcome

    return list(await asyncio.gather(*(one(*point) for point in points)))


# ---- 2. the Temporal server killed mid-run -----------------------------------------------------


async def restart_temporal(chaos: Chaos, how: signal.Signals, down_for: float = 3.0) -> Outcome:
    """A backfill is half-way when the dev server gets `how`; it comes back on the same database."""
    outcome = Outcome("Temporal server", "BackfillTable", f"{how.name} mid-run, down {down_for:.0f} s")
    prepared = await prepare_backfill(chaos.stack, rows=6000, rate=1000)
    queue = queue_name("temporal")
    async with chaos.worker(queue):
        handle = await chaos.start(prepared, queue)
        outcome.workflow_id = handle.id
        await until(lambda: rows_at_least(chaos, prepared, 1500), timeout=60)
        pieces = chaos.stack.pieces()
        os.kill(pieces["temporal"].pid, how)
        await asyncio.to_thread(wait_dead, pieces["temporal"].pid)
        outcome.struck = True
        await asyncio.sleep(down_for)
        await asyncio.to_thread(chaos.stack.up, worker=False)  # starts what is not running: Temporal
        outcome.problems += await chaos.finish(prepared, handle)
    return outcome


def wait_dead(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split()[2] == "Z":
                    return
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.05)
    raise TimeoutError(f"process {pid} still alive after {timeout} s")


async def rows_at_least(chaos: Chaos, prepared: Prepared, rows: int) -> bool:
    return await backfilled(chaos.stack, prepared) >= rows


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("the run never got there")
        await asyncio.sleep(0.1)


# ---- 3. PostgreSQL down, the AWS endpoint frozen ----------------------------------------------


async def postgres_outage(chaos: Chaos, down_for: float = 60.0) -> list[Outcome]:
    """PostgreSQL stops while a backfill runs, right after a migration committed its first
    statement, and right after a rotation's ALTER ROLE; it is back `down_for` seconds later."""
    fault = f"PostgreSQL stopped {down_for:.0f} s"
    backfill = await prepare_backfill(chaos.stack, rows=20_000, rate=2000)
    migration = await prepare_migration(chaos.stack)
    rotation = await prepare_rotation(chaos.stack)
    queue = queue_name("pg")
    pauses = {name: chaos.workdir / f"{queue}-{name}.pause" for name in ("migration", "rotation")}
    outcomes = [
        Outcome("PostgreSQL outage", "BackfillTable", f"{fault} during the batches"),
        Outcome("PostgreSQL outage", "MigrateSchema", f"{fault} after the first migration"),
        Outcome("PostgreSQL outage", "RotateDbCredential", f"{fault} right after ALTER ROLE"),
    ]
    async with (
        chaos.worker(f"{queue}-b"),
        chaos.worker(
            f"{queue}-m", "--at", "migrate_schema.apply_migration@during", "--pause", str(pauses["migration"])
        ),
        chaos.worker(f"{queue}-r", "--at", "rotate_credential.set_password@during", "--pause", str(pauses["rotation"])),
    ):
        handles = [
            await chaos.start(backfill, f"{queue}-b"),
            await chaos.start(migration, f"{queue}-m"),
            await chaos.start(rotation, f"{queue}-r"),
        ]
        for outcome, handle in zip(outcomes, handles, strict=True):
            outcome.workflow_id = handle.id
        await until(lambda: rows_at_least(chaos, backfill, 2000), timeout=60)
        await until(lambda: all_exist(pauses.values()), timeout=60)
        if await rows_at_least(chaos, backfill, 20_000):
            outcomes[0].problems.append("the backfill finished before PostgreSQL stopped: the outage missed it")
        await asyncio.to_thread(chaos.stack.postgres.stop)
        for pause in pauses.values():
            pause.unlink()
        for outcome in outcomes:
            outcome.struck = True
        await asyncio.sleep(down_for)
        await asyncio.to_thread(chaos.stack.restart_postgres)
        for outcome, prepared, handle in zip(outcomes, [backfill, migration, rotation], handles, strict=True):
            outcome.problems += await chaos.finish(prepared, handle)
    return outcomes


async def all_exist(paths: Iterable[Path]) -> bool:
    return all(path.exists() for path in paths)


async def aws_freeze(chaos: Chaos, frozen_for: float = 60.0) -> Outcome:
    """The AWS endpoint stops answering (SIGSTOP) while a sweep is between its batches' deletions."""
    outcome = Outcome("AWS endpoint frozen", "SweepStaleVolumes", f"SIGSTOP {frozen_for:.0f} s during the batches")
    prepared = await prepare_sweep(chaos.stack, volumes=40)
    queue = queue_name("aws")
    pause = chaos.workdir / f"{queue}.pause"
    async with chaos.worker(queue, "--at", "sweep_volumes.delete_batch@during", "--pause", str(pause)):
        handle = await chaos.start(prepared, queue)
        outcome.workflow_id = handle.id
        await until(lambda: all_exist([pause]), timeout=60)
        moto = chaos.stack.pieces()["aws"].pid
        os.kill(moto, signal.SIGSTOP)
        outcome.struck = True
        pause.unlink()
        try:
            await asyncio.sleep(frozen_for)
        finally:
            os.kill(moto, signal.SIGCONT)
        outcome.problems += await chaos.finish(prepared, handle)
    return outcome


# ---- 4. fifty applies of one document at once --------------------------------------------------


async def concurrent_applies(chaos: Chaos, callers: int = 50) -> Outcome:
    """`callers` CLIs apply the same document at the same moment: one run, one rotation, one run id."""
    outcome = Outcome("concurrent applies", "RotateDbCredential", f"{callers} applies of one document")
    prepared = await prepare_rotation(chaos.stack)
    queue = queue_name("concurrent")
    document = chaos.workdir / f"{queue}.json"
    document.write_text(prepared.request.model_dump_json(by_alias=True, exclude_none=True))
    env = {
        **os.environ,
        "OPSCTL_TEMPORAL_ADDRESS": chaos.stack.temporal_address,
        "OPSCTL_TASK_QUEUE": queue,
        "OPSCTL_USER": "alice",
        "OPSCTL_KEYS_DIR": str(KEYS_DIR),
        "OPSCTL_POLICY_FILE": str(POLICY_FILE),
        "OPSCTL_CONFIG": "",
        "OPSCTL_STATE_DIR": str(chaos.workdir / "no-state"),
    }
    opsctl = str(Path(sys.executable).parent / "opsctl")

    async def apply() -> tuple[int | None, str, str]:
        process = await asyncio.create_subprocess_exec(
            opsctl, "apply", "-f", str(document), "--format", "json", env=env, stdout=-1, stderr=-1
        )
        out, err = await process.communicate()
        return process.returncode, out.decode(), err.decode()

    async with chaos.worker(queue):
        answers = await asyncio.gather(*(apply() for _ in range(callers)))
        runs = set()
        for code, out, err in answers:
            (chaos.workdir / f"{queue}-outputs.txt").open("a").write(out + err)
            try:
                answer = json.loads(out)
                runs.add((answer["workflow_id"], answer["first_run_id"]))
            except (ValueError, KeyError):
                outcome.problems.append(f"exit {code} without a run: {err.strip()[-300:]}")
        outcome.struck = True
        if len(runs) != 1:
            outcome.problems.append(f"{len(runs)} different runs answered: {sorted(runs)}")
        handle = chaos.client.get_workflow_handle(prepared.request.workflow_id(), result_type=RunState)
        outcome.workflow_id = handle.id
        chaos.workflow_ids.append(handle.id)
        executions = [e async for e in chaos.client.list_workflows(f'WorkflowId = "{handle.id}"')]
        if len(executions) != 1:
            outcome.problems.append(f"{len(executions)} executions of {handle.id}")
        outcome.problems += await chaos.finish(prepared, handle)
    return outcome


# ---- 6. no secret anywhere ---------------------------------------------------------------------


async def secret_scan(chaos: Chaos, folders: Iterable[Path]) -> tuple[int, int, list[str]]:
    """Every history of every run the campaign started, every log and captured output, searched for
    every password it handled (old and new) and the database admin's: (places, secrets, leaks)."""
    secrets = {s for s in chaos.secrets if s} | {chaos.stack.postgres.admin_password_file.read_text().strip()}
    leaks, places = [], 0
    for workflow_id in sorted(set(chaos.workflow_ids)):
        async for execution in chaos.client.list_workflows(f'WorkflowId = "{workflow_id}"'):
            handle = chaos.client.get_workflow_handle(workflow_id, run_id=execution.run_id)
            history = await handle.fetch_history()
            raw = b"".join(event.SerializeToString() for event in history.events) + history.to_json().encode()
            places += 1
            leaks += [f"history {workflow_id}/{execution.run_id}" for s in secrets if s.encode() in raw]
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in {".log", ".txt", ".jsonl", ".json"}:
                content = path.read_bytes()
                places += 1
                leaks += [str(path) for s in secrets if s.encode() in content]
    return places, len(secrets), leaks


def recovery_figures(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    """Per point (before / during / after): the median and the worst time to the step's retry."""
    by_point: dict[str, list[float]] = {}
    for outcome in outcomes:
        if outcome.recovery_seconds is not None:
            by_point.setdefault(outcome.fault.rsplit("@", 1)[1], []).append(outcome.recovery_seconds)
    return {
        point: {"kills": len(times), "median": statistics.median(times), "max": max(times)}
        for point, times in sorted(by_point.items())
    }


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="opsctl-chaos-"))
