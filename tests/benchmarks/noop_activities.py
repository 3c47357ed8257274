"""The activities of the benchmark's no-op operation and its bare twin: each does nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.request import StrictModel
from contracts.run import Check

KIND = "BenchNoOp"  # never in the public catalog: the benchmark adds it to its own process only


class NoOpSpec(StrictModel):
    steps: int = 3  # apply steps; with plan and verify, steps + 2 activities (and the policy's local one)


@activity.defn(name="bench_noop_plan")
async def plan(spec: NoOpSpec) -> Plan:
    action = PlannedAction(
        action=Action.MODIFY,
        resource_type="bench:nothing",
        resource_id="nothing",
        reason="a benchmark",
        reversible=True,
        rollback=Rollback.NONE,
    )
    return Plan(kind=KIND, target="nothing", actions=[action])


@activity.defn(name="bench_noop_step")
async def step(number: int) -> int:
    return number


@activity.defn(name="bench_noop_verify")
async def verify(spec: NoOpSpec) -> list[Check]:
    return [Check(name="nothing", passed=True, detail="nothing to check")]


@activity.defn(name="bench_noop_policy")
async def policy(environment: str) -> str:
    """The bare workflow's twin of the lifecycle's policy read (a local activity)."""
    return environment


ACTIVITIES: list[Callable[..., Any]] = [plan, step, verify, policy]
