"""CreateReadReplica on the real stack: Temporal dev server and moto's RDS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.read_replica import ReadReplicaActivities
from client.devstack import Stack
from client.runs import decide, start_run, wait_for
from contracts.failures import FailureKind
from contracts.phases import Phase
from contracts.plan import Action
from contracts.read_replica import CreateReadReplicaSpec
from contracts.request import Request, parse_request
from contracts.run import Decision, DecisionInput
from tests.identities import KEYRING, policy_activities
from worker.main import activity_methods
from worker.settings import WorkerSettings
from workflows.read_replica import CreateReadReplica


@pytest.fixture
async def queue(client: Client, worker_settings: WorkerSettings) -> AsyncIterator[str]:
    """A Worker with CreateReadReplica and its real activities on a fresh task queue."""
    name = f"test-replica-{uuid.uuid4().hex[:8]}"
    activities = [
        *activity_methods(ReadReplicaActivities(worker_settings.aws)),
        policy_activities(search_attributes=True).resolve_policy,
    ]
    async with Worker(client, task_queue=name, workflows=[CreateReadReplica], activities=activities):
        yield name


def rds(stack: Stack) -> Any:
    return boto3.client("rds", endpoint_url=stack.aws_endpoint)


def seed_source(stack: Stack) -> str:
    source = f"src-{uuid.uuid4().hex[:8]}"
    rds(stack).create_db_instance(
        DBInstanceIdentifier=source,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-secret-1",  # moto never runs this instance
        AllocatedStorage=20,
    )
    return source


def replicas_of(stack: Stack, source: str) -> list[str]:
    pages = rds(stack).get_paginator("describe_db_instances").paginate()
    return sorted(
        i["DBInstanceIdentifier"]
        for page in pages
        for i in page["DBInstances"]
        if i.get("ReadReplicaSourceDBInstanceIdentifier") == source
    )


def replica_request(source: str, environment: str = "dev", key: str = "", **spec: Any) -> Request:
    return parse_request(
        {
            "apiVersion": "opsctl/v1",
            "kind": "CreateReadReplica",
            "metadata": {
                "environment": environment,
                "requester": "alice",
                "idempotencyKey": key or uuid.uuid4().hex[:12],
            },
            "spec": {"sourceInstanceId": source, "instanceClass": "db.t3.small", **spec},
        }
    )


async def test_an_approved_plan_creates_the_replica_and_verify_sees_it_available(
    stack: Stack, client: Client, queue: str
) -> None:
    """prod: the plan shows source, class and AZ; after approval the replica exists, available, of the source."""
    source = seed_source(stack)
    request = replica_request(source, "prod", availabilityZone="us-east-1b")
    replica_id = CreateReadReplicaSpec.model_validate(request.spec).replica_id()

    handle, _ = await start_run(client, request, task_queue=queue, keys=KEYRING)
    waiting = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
    assert waiting.plan is not None
    source_step, replica_step = waiting.plan.actions
    assert [(Action.NOOP, source), (Action.CREATE, replica_id)] == [
        (source_step.action, source_step.resource_id),
        (replica_step.action, replica_step.resource_id),
    ]
    assert "db.t3.small" in replica_step.reason
    assert "us-east-1b" in replica_step.reason
    assert [] == replicas_of(stack, source), "planning creates nothing"

    record, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=waiting.plan_hash), keys=KEYRING
    )
    assert record.accepted, record.reason
    result = await handle.result()

    assert Phase.SUCCEEDED == result.phase, (result.failure, result.uncertain)
    assert [replica_id] == replicas_of(stack, source)
    described = rds(stack).describe_db_instances(DBInstanceIdentifier=replica_id)["DBInstances"][0]
    assert ("available", "db.t3.small", "us-east-1b") == (
        described["DBInstanceStatus"],
        described["DBInstanceClass"],
        described["AvailabilityZone"],
    )
    assert [(replica_id, described["DBInstanceArn"])] == [(c.resource_id, c.external_id) for c in result.changed]
    assert all(check.passed for check in result.checks)


async def test_a_second_run_of_the_same_spec_adopts_the_replica_and_changes_nothing(
    stack: Stack, client: Client, queue: str
) -> None:
    """Another idempotencyKey, same spec: the plan is a noop, the run ends no_changes, one replica."""
    source = seed_source(stack)
    first, _ = await start_run(client, replica_request(source), task_queue=queue, keys=KEYRING)
    assert Phase.SUCCEEDED == (await first.result()).phase
    created = replicas_of(stack, source)

    second, new = await start_run(client, replica_request(source), task_queue=queue, keys=KEYRING)
    result = await second.result()

    assert new, "a separate run, not an attach to the first"
    assert Phase.NO_CHANGES == result.phase
    assert result.plan is not None
    assert [Action.NOOP, Action.NOOP] == [step.action for step in result.plan.actions]
    assert [] == result.changed
    assert 1 == len(created)
    assert created == replicas_of(stack, source)


async def test_an_instance_under_the_replica_name_with_another_source_fails_and_nothing_is_created(
    stack: Stack, client: Client, queue: str
) -> None:
    """A replica of the wrong source is never adopted or modified: validation failure, exit 3."""
    source, other = seed_source(stack), seed_source(stack)
    request = replica_request(source)
    squatter = CreateReadReplicaSpec.model_validate(request.spec).replica_id()
    rds(stack).create_db_instance_read_replica(
        DBInstanceIdentifier=squatter, SourceDBInstanceIdentifier=other, DBInstanceClass="db.t3.small"
    )

    handle, _ = await start_run(client, request, task_queue=queue, keys=KEYRING)
    result = await handle.result()

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert (FailureKind.VALIDATION, Phase.PLANNING.value) == (result.failure.kind, result.failure.step)
    assert result.failure.message.startswith(f"conflict: instance {squatter} already exists")
    assert f"a replica of {other}" in result.failure.message
    assert 3 == int(result.exit_code())
    assert [] == result.changed
    assert [] == replicas_of(stack, source)
    assert [squatter] == replicas_of(stack, other), "the squatter is left as it was"


async def test_a_missing_source_fails_validation_before_any_change(stack: Stack, client: Client, queue: str) -> None:
    missing = f"src-{uuid.uuid4().hex[:8]}"
    handle, _ = await start_run(client, replica_request(missing), task_queue=queue, keys=KEYRING)
    result = await handle.result()

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert FailureKind.VALIDATION == result.failure.kind
    assert f"source instance {missing} does not exist" == result.failure.message
