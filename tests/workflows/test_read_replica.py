"""CreateReadReplica's convergence window, with same-name fake activities on the time-skipping server.

moto makes replicas available at once, so waiting (and not converging) is tested here,
where an hour-long window passes in milliseconds.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.read_replica import (
    HOPELESS,
    CompensateReplicaResult,
    CreateReplicaResult,
    PlanReplicaInput,
    ReplicaStepInput,
    VerifyReplicaInput,
    VerifyReplicaResult,
    build_plan,
    replica_checks,
)
from contracts.failures import ExitCode
from contracts.phases import Phase
from contracts.read_replica import CreateReadReplicaSpec
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput, ResolveInput, RunInput, RunState
from contracts.words import plural
from tests.identities import policy_activities
from workflows.read_replica import CreateReadReplica

SOURCE = "orders-db"


class FakeReplica:
    """Plays RDS: `statuses` are what successive verify probes observe (the last one repeats)."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.calls: list[str] = []

    def _instance(self, spec: CreateReadReplicaSpec, status: str) -> dict[str, Any]:
        return {
            "DBInstanceArn": f"arn:aws:rds:us-east-1:1:db:{spec.replica_id()}",
            "DBInstanceStatus": status,
            "DBInstanceClass": spec.instance_class,
            "AvailabilityZone": "us-east-1a",
            "ReadReplicaSourceDBInstanceIdentifier": SOURCE,
        }

    @activity.defn(name="read_replica.plan")
    async def plan(self, input: PlanReplicaInput) -> Any:
        self.calls.append("plan")
        return build_plan(input.spec, {"Engine": "postgres", "EngineVersion": "16.3"}, None)

    @activity.defn(name="read_replica.create")
    async def create(self, input: ReplicaStepInput) -> CreateReplicaResult:
        self.calls.append("create")
        spec = input.spec
        return CreateReplicaResult(
            replica_id=spec.replica_id(),
            arn=f"arn:aws:rds:us-east-1:1:db:{spec.replica_id()}",
            status="creating",
            created=True,
            owner_run=input.workflow_id,
        )

    @activity.defn(name="read_replica.verify")
    async def verify(self, input: VerifyReplicaInput) -> VerifyReplicaResult:
        self.calls.append("verify")
        status = self.statuses[min(self.calls.count("verify"), len(self.statuses)) - 1]
        spec = input.spec
        source = {"ReadReplicaDBInstanceIdentifiers": [spec.replica_id()]}
        checks = replica_checks(spec, self._instance(spec, status), source)
        return VerifyReplicaResult(checks=checks, status=status, hopeless=status in HOPELESS)

    @activity.defn(name="read_replica.compensate")
    async def compensate(self, input: ReplicaStepInput) -> CompensateReplicaResult:
        self.calls.append("compensate")
        return CompensateReplicaResult(changed=True, detail=f"deleted {input.spec.replica_id()}")

    def activities(self) -> list[Any]:
        return [self.plan, self.create, self.verify, self.compensate, policy_activities().resolve_policy]


def run_input(window_seconds: int = 600) -> RunInput:
    request = parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "CreateReadReplica",
            "metadata": {"environment": "dev", "requester": "alice"},
            "spec": {
                "sourceInstanceId": SOURCE,
                "instanceClass": "db.t3.small",
                "convergenceTimeoutSeconds": window_seconds,
            },
        }
    )
    return RunInput(request=request)


async def start(env: WorkflowEnvironment, queue: str, input: RunInput) -> WorkflowHandle[Any, RunState]:
    return await env.client.start_workflow(
        CreateReadReplica.run, input, id=f"wf-{uuid.uuid4().hex[:8]}", task_queue=queue, result_type=RunState
    )


async def until_phase(env: WorkflowEnvironment, handle: WorkflowHandle[Any, RunState], phase: Phase) -> RunState:
    """Poll the state; between looks, let 30 s of workflow time pass (time skips only while we wait)."""
    for _ in range(200):
        state = await handle.query(CreateReadReplica.state)
        if state.phase is phase:
            return state
        await env.sleep(30)
    raise AssertionError(f"never reached {phase}; last phase {state.phase}")


def worker(env: WorkflowEnvironment, fake: FakeReplica, queue: str) -> Worker:
    return Worker(env.client, task_queue=queue, workflows=[CreateReadReplica], activities=fake.activities())


async def test_a_replica_that_becomes_available_within_the_window_verifies(env: WorkflowEnvironment) -> None:
    """Verify keeps probing (with durable sleeps) while the replica is creating, then succeeds."""
    fake, queue = FakeReplica(["creating", "backing-up", "available"]), uuid.uuid4().hex
    async with worker(env, fake, queue):
        result = await (await start(env, queue, run_input())).result()
    assert Phase.SUCCEEDED == result.phase
    assert ["plan", "create", "verify", "verify", "verify"] == fake.calls
    assert [] == [check.name for check in result.checks if not check.passed]


async def test_a_replica_that_does_not_converge_in_time_needs_review_with_the_evidence(
    env: WorkflowEnvironment,
) -> None:
    """Still creating when the window closes: needs_review, the last status in uncertain; retry re-opens it."""
    fake, queue = FakeReplica(["creating"]), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, queue, run_input(window_seconds=600))
        review = await until_phase(env, handle, Phase.NEEDS_REVIEW)
        probes = fake.calls.count("verify")

        assert ExitCode.NEEDS_REVIEW == review.exit_code()
        assert "replica available: status creating" in review.uncertain
        assert f"convergence: did not converge within 0:10:00: {plural(probes, 'probe')}, last status creating" in (
            review.uncertain
        )
        assert probes > 2, "it polled, it did not give up after one look"
        waited = review.phase_times[Phase.NEEDS_REVIEW.value] - review.phase_times[Phase.VERIFYING.value]
        assert timedelta(seconds=600) <= waited < timedelta(seconds=660), "it waited out the window, no longer"
        replica_id = CreateReadReplicaSpec.model_validate(review.request.spec).replica_id()
        assert [(replica_id, f"arn:aws:rds:us-east-1:1:db:{replica_id}")] == [
            (r.resource_id, r.external_id) for r in review.changed
        ], "the replica's identifier was checkpointed"

        fake.statuses = ["available"]
        retry = ResolveInput(actor="carol", comment="RDS console shows it ready", resolution=Decision.RETRY)
        await handle.signal(CreateReadReplica.resolve, retry)
        result = await handle.result()
    assert Phase.SUCCEEDED == result.phase
    assert 1 == fake.calls.count("create"), "a retried verify never creates again"


async def test_a_failed_replica_stops_polling_at_once_and_needs_review(env: WorkflowEnvironment) -> None:
    fake, queue = FakeReplica(["incompatible-parameters"]), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, queue, run_input(window_seconds=3600))
        review = await until_phase(env, handle, Phase.NEEDS_REVIEW)
        await handle.signal(CreateReadReplica.resolve, ResolveInput(actor="carol", resolution=Decision.ABORT))
        result = await handle.result()
    assert 1 == fake.calls.count("verify")
    assert "convergence: cannot converge by waiting: 1 probe, last status incompatible-parameters" in (review.uncertain)
    assert Phase.FAILED == result.phase


async def test_cancel_in_review_deletes_the_replica_this_run_created(env: WorkflowEnvironment) -> None:
    fake, queue = FakeReplica(["creating"]), uuid.uuid4().hex
    async with worker(env, fake, queue):
        handle = await start(env, queue, run_input(window_seconds=60))
        await until_phase(env, handle, Phase.NEEDS_REVIEW)
        await handle.signal(CreateReadReplica.cancel, DecisionInput(actor="carol", comment="wrong class"))
        result = await handle.result()
    assert Phase.CANCELLED == result.phase
    assert "compensate" == fake.calls[-1]
    assert any(warning.startswith("compensation: deleted") for warning in result.warnings)
