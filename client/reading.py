"""Reading a run, the same way over either transport: the SDK's gRPC client or Temporal's HTTP API.

A transport answers a few plain questions — the run's status, its result, its `state` query,
its pending activities, a page of a visibility listing — each decoded as the SDK's data
converter would (`client.runs` for gRPC, `client.http_runs` for HTTP). What a run's state *is*
(a finished run's result, a running one's query plus what its running steps heartbeat) is
decided here once, for both. Nothing here imports temporalio.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from contracts.failures import INVALID_WORKFLOW_INPUT, ExitCode, OpsctlError
from contracts.phases import PHASE_WORDS, Phase
from contracts.run import LiveActivity, RunState
from contracts.words import visible

QUERY_TIMEOUT = 5.0  # seconds a running run has to answer its `state` query (through a worker)


@dataclass(frozen=True)
class Pending:
    """A pending activity as its transport decoded it."""

    activity_type: str
    attempt: int
    details: list[Any]  # its last heartbeat's values
    last_failure: str  # the message of the failure it is retrying after ('': none)


@dataclass(frozen=True)
class Listed:
    """One row of a visibility listing."""

    workflow_id: str
    workflow_type: str
    start_time: datetime
    attributes: dict[str, Any]  # the typed search attributes by name


class NoAnswer(Exception):
    """The run's `state` query was not answered (no worker polls its task queue, or it timed out)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunReader(Protocol):
    """One run, as one transport reads it. `status` comes first; the rest read the run it described."""

    workflow_id: str

    async def status(self) -> str:
        """The execution's status in lower case (`running`, `completed`, `terminated`, …; '' unknown)."""

    async def result(self) -> RunState:
        """The result of the completed run."""

    async def query_state(self, timeout: float) -> RunState:
        """The `state` query's answer; NoAnswer when none came within `timeout` seconds."""

    async def pending(self) -> list[Pending]:
        """The run's pending activities, from the description `status` read."""

    async def failure(self) -> tuple[str, str]:
        """A failed run's failure: (its type, its message); ('', '') when its close event says none."""


class Runs(Protocol):
    """The runs one transport reads: what `opsctl status` and `opsctl list` need."""

    async def reader(self, workflow_id: str) -> RunReader:
        """The run of that id; `no_run` (exit 2) when Temporal has none."""

    async def listing(self, query: str, limit: int) -> list[Listed]:
        """Runs matching a visibility query, newest first, at most `limit`."""


def no_run(run: str) -> OpsctlError:
    return OpsctlError(ExitCode.INVALID_INPUT, f"no run {run!r}", hint="list runs with `opsctl list`")


async def read_run(reader: RunReader) -> RunState:
    """The run's state: from the result if it finished, else from the `state` query."""
    status = await reader.status()
    if status == "completed":
        return await reader.result()
    if status != "running":
        raise ended_elsewhere(reader.workflow_id, status, *(await reader.failure() if status == "failed" else ("", "")))
    try:
        state = await reader.query_state(QUERY_TIMEOUT)
    except NoAnswer as exc:
        raise OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"run {reader.workflow_id} did not answer within {QUERY_TIMEOUT:.0f}s ({exc.message})",
            hint="a run answers through a worker: is one polling its task queue? `opsctl dev status`",
        ) from exc
    state.live = [_live(activity) for activity in await reader.pending()]
    for activity in state.live:  # the step as the runbook names it, not the activity's type
        activity.step = state.progress.step if state.phase is Phase.APPLYING else PHASE_WORDS[state.phase]
    return state


def ended_elsewhere(run: str, status: str, kind: str, message: str) -> OpsctlError:
    """A run that did not end with opsctl's record: terminated, timed out, or failed by Temporal or
    the worker — refused before it began when its input was no RunInput (exit 3)."""
    said = visible(message[:MESSAGE_CHARS]) + ("…" if len(message) > MESSAGE_CHARS else "")
    if kind == INVALID_WORKFLOW_INPUT:
        return OpsctlError(ExitCode.VALIDATION_FAILED, f"run {run} was refused before it began: {said}")
    return OpsctlError(
        ExitCode.UNEXPECTED,
        f"run {run} ended as {status or 'unknown'}{f': {said}' if said else ''}",
        hint="inspect its history in the Temporal Web UI",
    )


MESSAGE_CHARS = 600  # of a failure's message, in an error line


def _live(pending: Pending) -> LiveActivity:
    """What a running step reports through heartbeats: progress inside one long step."""
    details = pending.details[0] if pending.details and isinstance(pending.details[0], dict) else {}
    return LiveActivity(
        activity_type=pending.activity_type,
        attempt=pending.attempt,
        details=details,
        last_failure=pending.last_failure,
    )
