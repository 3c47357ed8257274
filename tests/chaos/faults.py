"""A real opsctl worker that hurts itself at one point of one step: `python -m tests.chaos.faults`.

    python -m tests.chaos.faults --settings worker.json --at ACTIVITY@POINT [--writes N] (--kill | --pause FILE)

POINT is where in the activity ACTIVITY (e.g. `rotate_credential.set_password`) the fault
strikes, on its first attempt only:

- `before`: the attempt has started, nothing has happened yet;
- `during`: right after its Nth side effect *committed* (`--writes N`, default 1) — an AWS call
  that changes something returned, or a PostgreSQL transaction (or autocommitted statement)
  that wrote committed — and before the step has finished or reported anything. For a step
  that works through many items (a backfill's batches, a sweep's volumes) N > 1 strikes in the
  middle of its range;
- `after`: the step's body returned its result, which never reaches the server.

`--kill` sends the worker SIGKILL (no cleanup, no goodbye to the server). `--pause FILE` writes
FILE and waits until the harness removes it (for it to stop PostgreSQL or freeze the AWS
endpoint at exactly that point), then lets the step go on into the outage.

Side effects are recognised below the activities (botocore's API call, asyncpg's execute and
transaction), so the production code carries no hook.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from worker.main import serve
from worker.settings import WorkerSettings

POINTS = ("before", "during", "after")
READS = ("Describe", "Get", "List", "Head")
WRITES = ("ALTER", "UPDATE", "INSERT", "DELETE", "CREATE", "DROP", "GRANT", "REVOKE", "TRUNCATE", "COMMENT")


class Fault:
    """One fault at one point of one activity, striking once."""

    def __init__(self, activity_type: str, point: str, pause_file: Path | None, writes: int = 1) -> None:
        self.activity_type, self.point, self.pause_file = activity_type, point, pause_file
        self.writes_left = writes
        self.struck = False

    def targets(self, point: str) -> bool:
        if self.struck or point != self.point or not activity.in_activity():
            return False
        info = activity.info()
        return info.activity_type == self.activity_type and info.attempt == 1

    def committed(self) -> bool:
        """One more write of the target committed: is it the one to strike after?"""
        if not self.targets("during"):
            return False
        self.writes_left -= 1
        return self.writes_left <= 0

    def _begin(self) -> None:
        self.struck = True
        if self.pause_file is None:
            logging.warning("chaos: SIGKILL at %s@%s", self.activity_type, self.point)
            os.kill(os.getpid(), signal.SIGKILL)
            return
        self.pause_file.write_text(f"{self.activity_type}@{self.point}\n")
        logging.warning("chaos: paused at %s@%s until %s is removed", self.activity_type, self.point, self.pause_file)

    async def strike(self) -> None:
        self._begin()
        while self.pause_file is not None and self.pause_file.exists():  # noqa: ASYNC110 - another process removes it
            await asyncio.sleep(0.05)

    def strike_in_thread(self) -> None:
        """The same, from the worker thread a botocore call runs in (asyncio.to_thread)."""
        self._begin()
        while self.pause_file is not None and self.pause_file.exists():
            time.sleep(0.05)


class FaultInterceptor(Interceptor):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _AroundActivity(next, self.fault)


class _AroundActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, fault: Fault) -> None:
        super().__init__(next)
        self.fault = fault

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if self.fault.targets("before"):
            await self.fault.strike()
        result = await super().execute_activity(input)
        if self.fault.targets("after"):
            await self.fault.strike()
        return result


def install_side_effect_hooks(fault: Fault) -> None:
    """Strike `during` right after the first committed write of the target activity."""
    import asyncpg.connection
    import asyncpg.transaction
    import botocore.client

    make_api_call = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

    def api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        result = make_api_call(self, operation_name, api_params)
        if not operation_name.startswith(READS) and fault.committed():
            fault.strike_in_thread()
        return result

    setattr(botocore.client.BaseClient, "_make_api_call", api_call)  # noqa: B010 - private, untyped

    uncommitted: set[int] = set()  # connections holding a write their transaction has not committed
    execute = asyncpg.connection.Connection.execute

    async def execute_and_strike(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        result = await execute(self, query, *args, **kwargs)
        if query.lstrip().upper().startswith(WRITES) and fault.targets("during"):
            if self.is_in_transaction():
                uncommitted.add(id(self))
            elif fault.committed():
                await fault.strike()
        return result

    asyncpg.connection.Connection.execute = execute_and_strike
    aexit = asyncpg.transaction.Transaction.__aexit__

    async def aexit_and_strike(self: Any, extype: Any, ex: Any, tb: Any) -> Any:
        result = await aexit(self, extype, ex, tb)
        connection = id(self._connection)
        if connection in uncommitted and not self._connection.is_in_transaction():
            uncommitted.discard(connection)
            if extype is None and fault.committed():
                await fault.strike()
        return result

    asyncpg.transaction.Transaction.__aexit__ = aexit_and_strike


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.faults", description=__doc__)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--at", required=True, metavar="ACTIVITY@POINT")
    parser.add_argument("--writes", type=int, default=1, metavar="N", help="`during`: strike after the Nth write")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--kill", action="store_true")
    how.add_argument("--pause", type=Path, metavar="FILE")
    args = parser.parse_args()
    activity_type, _, point = args.at.partition("@")
    if point not in POINTS:
        parser.error(f"POINT must be one of {', '.join(POINTS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    fault = Fault(activity_type, point, args.pause, args.writes)
    install_side_effect_hooks(fault)
    asyncio.run(serve(WorkerSettings.load(args.settings), [FaultInterceptor(fault)]))


if __name__ == "__main__":
    main()
