"""CreateReadReplica's pure parts: the spec, the replica's identifier, the plan, the checks, RDS errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.rds import classify_rds, source_of
from activities.read_replica import build_plan, replica_checks
from contracts.failures import FailureKind
from contracts.plan import Action
from contracts.read_replica import RDS_IDENTIFIER_MAX, CreateReadReplicaSpec


def spec(**fields: Any) -> CreateReadReplicaSpec:
    return CreateReadReplicaSpec.model_validate(
        {"sourceInstanceId": "orders-db", "instanceClass": "db.t3.medium", **fields}
    )


def instance(identifier: str, **fields: Any) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": identifier,
        "DBInstanceArn": f"arn:aws:rds:us-east-1:123456789012:db:{identifier}",
        "DBInstanceStatus": "available",
        "DBInstanceClass": "db.t3.medium",
        "AvailabilityZone": "us-east-1a",
        "Engine": "postgres",
        "EngineVersion": "16.3",
        **fields,
    }


def test_the_derived_replica_id_is_stable_and_names_the_source() -> None:
    """Same source, class and AZ → same identifier, whatever the convergence window."""
    first = spec().replica_id()
    assert first == spec(convergenceTimeoutSeconds=600).replica_id()
    assert first.startswith("orders-db-replica-")
    assert 8 == len(first.removeprefix("orders-db-replica-"))


def test_a_differently_configured_replica_gets_another_id() -> None:
    ids = {
        spec().replica_id(),
        spec(instanceClass="db.r6g.large").replica_id(),
        spec(availabilityZone="us-east-1b").replica_id(),
    }
    assert 3 == len(ids)


def test_an_explicit_replica_id_wins() -> None:
    assert "orders-ro" == spec(replicaInstanceId="orders-ro").replica_id()


def test_a_long_source_name_still_gives_a_valid_rds_identifier() -> None:
    long_source = "a" * 62 + "b"
    derived = spec(sourceInstanceId=long_source).replica_id()
    assert len(derived) <= RDS_IDENTIFIER_MAX
    assert spec(replicaInstanceId=derived).replica_id() == derived, "it passes the identifier pattern"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"sourceInstanceId": "Orders"}, "sourceInstanceId"),
        ({"sourceInstanceId": "orders--db"}, "sourceInstanceId"),
        ({"sourceInstanceId": "orders-"}, "sourceInstanceId"),
        ({"instanceClass": "t3.medium"}, "instanceClass"),
        ({"availabilityZone": "east"}, "availabilityZone"),
        ({"convergenceTimeoutSeconds": 5}, "convergenceTimeoutSeconds"),
        ({"replicas": 2}, "replicas"),
    ],
)
def test_the_spec_is_strict(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        spec(**fields)
    assert field in str(raised.value)


def test_a_replica_may_not_be_its_own_source() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        spec(replicaInstanceId="orders-db")


def test_without_a_replica_the_plan_creates_one_and_shows_source_class_and_az() -> None:
    wanted = spec(availabilityZone="us-east-1b")
    plan = build_plan(wanted, instance("orders-db"), None)
    source_step, replica_step = plan.actions
    assert [Action.NOOP, Action.CREATE] == [source_step.action, replica_step.action]
    assert ("orders-db", wanted.replica_id()) == (source_step.resource_id, replica_step.resource_id)
    assert "postgres 16.3" == source_step.observed["engine"]
    assert "db.t3.medium" in replica_step.reason
    assert "us-east-1b" in replica_step.reason
    assert plan.hash() == build_plan(wanted, instance("orders-db"), None).hash(), "plans are deterministic"


def test_a_correct_replica_makes_the_plan_a_noop() -> None:
    wanted = spec()
    replica = instance(wanted.replica_id(), ReadReplicaSourceDBInstanceIdentifier="orders-db")
    plan = build_plan(wanted, instance("orders-db"), replica)
    assert not plan.has_changes
    assert "true" == plan.actions[1].observed["replica_exists"]


@pytest.mark.parametrize(
    ("replica_fields", "complaint"),
    [
        ({"ReadReplicaSourceDBInstanceIdentifier": "billing-db"}, "a replica of billing-db"),
        ({}, "not a read replica"),
        ({"ReadReplicaSourceDBInstanceIdentifier": "orders-db", "DBInstanceClass": "db.t3.small"}, "class"),
    ],
)
def test_a_foreign_instance_under_the_replica_name_fails_without_retry(
    replica_fields: dict[str, Any], complaint: str
) -> None:
    wanted = spec()
    with pytest.raises(ApplicationError) as raised:
        build_plan(wanted, instance("orders-db"), instance(wanted.replica_id(), **replica_fields))
    assert (FailureKind.VALIDATION.value, True) == (raised.value.type, raised.value.non_retryable)
    assert complaint in raised.value.message


def test_an_aurora_source_is_refused() -> None:
    with pytest.raises(ApplicationError, match="Aurora"):
        build_plan(spec(), instance("orders-db", Engine="aurora-postgresql"), None)


def test_checks_pass_only_for_an_available_replica_of_the_source_listed_by_it() -> None:
    wanted = spec()
    replica_id = wanted.replica_id()
    source = instance("orders-db", ReadReplicaDBInstanceIdentifiers=[replica_id])
    creating = instance(replica_id, DBInstanceStatus="creating", ReadReplicaSourceDBInstanceIdentifier="orders-db")
    ready = {**creating, "DBInstanceStatus": "available"}

    assert ["replica available"] == [c.name for c in replica_checks(wanted, creating, source) if not c.passed]
    assert [] == [c.name for c in replica_checks(wanted, ready, source) if not c.passed]
    assert [("replica exists", False)] == [(c.name, c.passed) for c in replica_checks(wanted, None, source)]


def test_a_cross_region_source_arn_names_the_source() -> None:
    arn = "arn:aws:rds:eu-west-1:123456789012:db:orders-db"
    assert "orders-db" == source_of({"ReadReplicaSourceDBInstanceIdentifier": arn})


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("code", "status", "kind", "non_retryable"),
    [
        ("DBInstanceNotFound", 404, FailureKind.VALIDATION, True),
        ("InvalidDBInstanceState", 400, FailureKind.DEPENDENCY_UNAVAILABLE, False),
        ("DBInstanceAlreadyExists", 400, FailureKind.CONFLICT, False),
        ("InstanceQuotaExceeded", 400, FailureKind.POLICY_DENIED, True),
        ("Throttling", 400, FailureKind.DEPENDENCY_UNAVAILABLE, False),
    ],
)
def test_rds_error_codes_are_classified(code: str, status: int, kind: FailureKind, non_retryable: bool) -> None:
    classified = classify_rds(client_error(code, status))
    assert classified is not None
    assert (kind.value, non_retryable) == (classified.type, classified.non_retryable)
