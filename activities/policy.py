"""The worker's answer to "which rules govern this run?": its environment's policy and switches.

Run as a local activity at the start of every run, so the answer is recorded in the run's
history (replays read it back; a changed file never changes a run in flight). The policy
file is read and checked once, when the worker starts: a broken file stops the worker.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity

from contracts.policy import BUILT_IN, BUILT_IN_POLICIES, PolicySet, ServedPolicies, parse_policy_file
from contracts.run import RunSettings
from encryption.codec import is_encrypted

T = TypeVar("T")


class ResolvePolicyInput(BaseModel):
    environment: str
    workflow_id: str = ""
    run_id: str = ""


# What opsctl's run ids are made of (a schedule's fire adds its time: `…-2026-01-01T03:00:00Z`); safe in a query.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._@:-]{1,255}$")


def load_policies(path: str) -> tuple[PolicySet, str]:
    """The policy set in `path` (or the built-in one for ''), and where it came from."""
    if not path:
        return BUILT_IN_POLICIES, BUILT_IN
    return parse_policy_file(Path(path).read_text(encoding="utf-8"), path), path


class PolicyActivities:
    def __init__(
        self,
        policies: PolicySet,
        source: str,
        *,
        environments: list[str] | None = None,
        search_attributes: bool = True,
        history_event_limit: int = 4000,
        retry_window_seconds: int | None = None,
        check_id_reuse: bool = True,
        encrypts: bool = False,
    ) -> None:
        self._encrypts = encrypts  # payload encryption is on: a run's request must arrive encrypted
        self._policies = policies
        self._source = source
        # What this worker serves: the listed environments; unlisted, every one that requires
        # approval. An environment that needs none (dev) is served only when listed by name.
        self._environments = environments or sorted(
            name for name, rules in policies.environments.items() if rules.required_approvals
        )
        self._search_attributes = search_attributes
        self._history_event_limit = history_event_limit
        self._retry_window_seconds = retry_window_seconds
        self._check_id_reuse = check_id_reuse  # off only on the time-skipping test server (no visibility)

    @activity.defn(name="opsctl.resolve_policy")
    async def resolve_policy(self, input: ResolvePolicyInput) -> RunSettings:
        served = input.environment in self._environments
        # Two questions to Temporal about this run, asked at once: each is a round trip before planning.
        earlier_run, arrived_in_clear = await asyncio.gather(
            self._earlier_run(input) if self._check_id_reuse and input.workflow_id else _answer(""),
            self._arrived_in_clear(input) if self._encrypts and input.workflow_id else _answer(False),
        )
        return RunSettings(
            earlier_run=earlier_run,
            policy=self._policies.policy_for(input.environment) if served else None,
            policy_source=self._source
            if served
            else f"{self._source}, as this worker serves only {', '.join(self._environments)}",
            search_attributes=self._search_attributes,
            history_event_limit=self._history_event_limit,
            retry_window_seconds=self._retry_window_seconds,
            arrived_in_clear=arrived_in_clear,
        )

    async def _arrived_in_clear(self, input: ResolvePolicyInput) -> bool:
        """The run's start input as stored by Temporal (raw, before any codec) is not all encrypted."""
        handle = activity.client().get_workflow_handle(input.workflow_id, run_id=input.run_id or None)
        async for event in handle.fetch_history_events():
            started = event.workflow_execution_started_event_attributes
            if started.continued_execution_run_id:
                return False  # written by a worker of this run, through its codec
            return not all(is_encrypted(payload) for payload in started.input.payloads)
        return False

    async def _earlier_run(self, input: ResolvePolicyInput) -> str:
        """Another execution that used this workflow id before (opsctl never reuses one), if any."""
        if not _SAFE_ID.match(input.workflow_id):
            return "a workflow id opsctl would never make"
        query = f"WorkflowId = '{input.workflow_id}'"
        async for execution in activity.client().list_workflows(query, limit=10):
            if execution.run_id != input.run_id:
                return execution.run_id
        return ""

    @activity.defn(name="opsctl.served_policies")
    async def served_policies(self) -> ServedPolicies:
        policies = {name: self._policies.policy_for(name) for name in self._environments}
        return ServedPolicies(source=self._source, policies={k: v for k, v in policies.items() if v is not None})


async def _answer(value: T) -> T:
    """A question this worker does not ask, answered."""
    return value
