"""Benchmark a's two workflows: a no-op operation on the full lifecycle, and a bare temporalio
workflow calling the same activities, as many of them, with no lifecycle around them."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.lifecycle import Lifecycle, NothingApplied

with workflow.unsafe.imports_passed_through():
    from contracts.plan import Plan
    from contracts.run import Check, RunInput, RunState
    from tests.benchmarks import noop_activities
    from tests.benchmarks.noop_activities import KIND, NoOpSpec

TIMEOUT = timedelta(seconds=60)


@workflow.defn(name=KIND)
class BenchNoOp(Lifecycle[NoOpSpec, NothingApplied]):
    spec_model = NoOpSpec
    applied_model = NothingApplied

    @workflow.run
    async def run(self, input: RunInput) -> RunState:
        return await self.run_lifecycle(input)

    async def plan(self, spec: NoOpSpec) -> Plan:
        return await self.probe(noop_activities.plan, spec)

    def apply_steps(self, spec: NoOpSpec, plan: Plan) -> list[str]:
        return [f"step {number}" for number in range(1, spec.steps + 1)]

    async def apply(self, spec: NoOpSpec, plan: Plan, applied: NothingApplied) -> NothingApplied:
        for number, name in enumerate(self.apply_steps(spec, plan), 1):
            await self.step(name, noop_activities.step, number)
        return applied

    async def verify(self, spec: NoOpSpec, applied: NothingApplied) -> list[Check]:
        return await self.probe(noop_activities.verify, spec)


@workflow.defn(name="BenchBare")
class BenchBare:
    """The same activities in the same order: a local policy read, plan, each step, verify."""

    @workflow.run
    async def run(self, spec: NoOpSpec) -> int:
        await workflow.execute_local_activity(noop_activities.policy, "dev", start_to_close_timeout=TIMEOUT)
        await workflow.execute_activity(noop_activities.plan, spec, start_to_close_timeout=TIMEOUT)
        for number in range(1, spec.steps + 1):
            await workflow.execute_activity(noop_activities.step, number, start_to_close_timeout=TIMEOUT)
        await workflow.execute_activity(noop_activities.verify, spec, start_to_close_timeout=TIMEOUT)
        return spec.steps + 3


if __name__ == "__main__":  # the sandbox re-imports this module: nothing runs on import
    raise SystemExit("the benchmark's workflows: python -m tests.benchmarks --only lifecycle")
