"""CreateReadReplica: create (or adopt) an RDS read replica and wait until it serves.

The plan shows the source, the replica's identifier, class and AZ. Apply is one step:
create the replica, or adopt the one an earlier attempt or run created. Verify polls the
replica with growing pauses (durable timers) until it is available as requested, inside
the spec's convergence window; if it does not converge, the failing checks carry the last
observation and the run waits in needs_review.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.lifecycle import Lifecycle, NothingApplied

with workflow.unsafe.imports_passed_through():
    from activities.read_replica import (
        PlanReplicaInput,
        ReadReplicaActivities,
        ReplicaStepInput,
        VerifyReplicaInput,
    )
    from contracts.plan import Plan
    from contracts.read_replica import CreateReadReplicaSpec
    from contracts.run import Check, Resource, RunInput, RunState
    from contracts.words import plural

PROBE_TIMEOUT = timedelta(seconds=30)
# Creating a replica takes minutes to hours (RDS snapshots the source first): probe soon,
# then back off so an hour-long wait stays a few hundred history events.
FIRST_PAUSE = timedelta(seconds=10)
LONGEST_PAUSE = timedelta(seconds=60)


@workflow.defn(name="CreateReadReplica")
class CreateReadReplica(Lifecycle[CreateReadReplicaSpec, NothingApplied]):
    spec_model = CreateReadReplicaSpec
    applied_model = NothingApplied

    @workflow.run
    async def run(self, input: RunInput) -> RunState:
        return await self.run_lifecycle(input)

    async def plan(self, spec: CreateReadReplicaSpec) -> Plan:
        return await self.probe(ReadReplicaActivities.plan, PlanReplicaInput(spec=spec), timeout=PROBE_TIMEOUT)

    def apply_steps(self, spec: CreateReadReplicaSpec, plan: Plan) -> list[str]:
        return [f"create read replica {spec.replica_id()}"]

    async def apply(self, spec: CreateReadReplicaSpec, plan: Plan, applied: NothingApplied) -> NothingApplied:
        step_input = ReplicaStepInput(workflow_id=workflow.info().workflow_id, spec=spec)
        (create,) = self.apply_steps(spec, plan)
        replica = await self.step(
            create,
            ReadReplicaActivities.create,
            step_input,
            timeout=PROBE_TIMEOUT,
        )
        resource = Resource(resource_type="rds:db-instance", resource_id=replica.replica_id, external_id=replica.arn)
        if replica.created or replica.owner_run == step_input.workflow_id:
            detail = "created" if replica.created else "created by an earlier attempt of this run, adopted"
            self.record_change(resource.model_copy(update={"detail": f"read replica {detail} ({replica.status})"}))
        else:
            # Another run made it between our plan and our create: not our change, but ours to verify.
            owner = replica.owner_run or "outside opsctl"
            self.record_skip(resource.model_copy(update={"detail": f"adopted: created by {owner}"}))
            self.warn(f"{replica.replica_id} already existed (created by {owner}): adopted, not created")
        return applied

    async def verify(self, spec: CreateReadReplicaSpec, applied: NothingApplied) -> list[Check]:
        """Probe until the replica converges or the window closes; the last probe is the evidence."""
        window = timedelta(seconds=spec.convergence_timeout_seconds)
        deadline = workflow.now() + window
        pause, probes = FIRST_PAUSE, 0
        while True:
            observed = await self.probe(
                ReadReplicaActivities.verify, VerifyReplicaInput(spec=spec), step="verify", timeout=PROBE_TIMEOUT
            )
            probes += 1
            if observed.converged:
                return observed.checks
            remaining = deadline - workflow.now()
            if observed.hopeless or remaining <= timedelta(0):
                why = "cannot converge by waiting" if observed.hopeless else f"did not converge within {window}"
                evidence = f"{why}: {plural(probes, 'probe')}, last status {observed.status or 'none'}"
                return [*observed.checks, Check(name="convergence", passed=False, detail=evidence)]
            await workflow.sleep(min(pause, remaining), summary="wait, then probe the replica again")
            pause = min(pause * 2, LONGEST_PAUSE)

    async def compensate(self, spec: CreateReadReplicaSpec, applied: NothingApplied) -> bool:
        result = await self.probe(
            ReadReplicaActivities.compensate,
            ReplicaStepInput(workflow_id=workflow.info().workflow_id, spec=spec),
            step="compensate",
            timeout=PROBE_TIMEOUT,
        )
        self.warn(f"compensation: {result.detail}")
        return True  # deleted what this run created; an adopted replica was never this run's change


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
