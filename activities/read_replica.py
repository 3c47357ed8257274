"""The steps of CreateReadReplica: discover, create (or adopt) the replica, observe it, undo it.

RDS has no idempotency token for CreateDBInstanceReadReplica; the replica's identifier is
the token. It is derived from the spec (`CreateReadReplicaSpec.replica_id`), so every
attempt and every later run looks for the same instance first and adopts it when it is
a replica of the right source with the requested configuration. An instance under that
name that is anything else is never touched: the run fails before mutating.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio import activity

from activities.aws import AwsSettings, call, make_client
from activities.errors import classified, failure
from activities.rds import ALREADY_EXISTS, classify_rds, describe_instance, error_code, source_of, tags_of
from contracts.failures import FailureKind
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.read_replica import CreateReadReplicaSpec
from contracts.run import Check

KIND = "CreateReadReplica"
RUN_TAG, KIND_TAG = "opsctl:run", "opsctl:kind"
AVAILABLE = "available"
# Statuses a replica does not leave by waiting: verify stops polling and asks for review.
HOPELESS = {
    "failed",
    "deleting",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-restore",
    "inaccessible-encryption-credentials",
    "restore-error",
    "storage-full",
}


class PlanReplicaInput(BaseModel):
    spec: CreateReadReplicaSpec


class ReplicaStepInput(BaseModel):
    """What create and compensate need: the spec, and the run that tags (and owns) the replica."""

    workflow_id: str
    spec: CreateReadReplicaSpec


class CreateReplicaResult(BaseModel):
    replica_id: str
    arn: str
    status: str
    created: bool  # this attempt called CreateDBInstanceReadReplica
    owner_run: str  # the run whose tag the replica carries ("" if untagged)


class VerifyReplicaInput(BaseModel):
    spec: CreateReadReplicaSpec


class VerifyReplicaResult(BaseModel):
    checks: list[Check]
    status: str  # the replica's DBInstanceStatus ("" if it does not exist)
    hopeless: bool = False  # waiting longer cannot make the checks pass

    @property
    def converged(self) -> bool:
        return all(check.passed for check in self.checks)


class CompensateReplicaResult(BaseModel):
    changed: bool
    detail: str


def az_wanted(spec: CreateReadReplicaSpec) -> str:
    return spec.availability_zone or "chosen by RDS"


def mismatches(spec: CreateReadReplicaSpec, replica: dict[str, Any]) -> list[str]:
    """How an existing instance under the replica's name differs from the request ([] if not)."""
    problems = []
    source = source_of(replica)
    if source != spec.source_instance_id:
        what = f"a replica of {source}" if source else "not a read replica"
        problems.append(f"it is {what}, not of {spec.source_instance_id}")
    if replica.get("DBInstanceClass") != spec.instance_class:
        problems.append(f"its class is {replica.get('DBInstanceClass')}, not {spec.instance_class}")
    if spec.availability_zone and replica.get("AvailabilityZone") != spec.availability_zone:
        problems.append(f"its AZ is {replica.get('AvailabilityZone')}, not {spec.availability_zone}")
    return problems


def refuse_foreign(spec: CreateReadReplicaSpec, replica: dict[str, Any]) -> None:
    """An instance under our name that is not the requested replica is a conflict we never touch.

    It is raised as VALIDATION, not CONFLICT: in the taxonomy CONFLICT means "another run
    holds the target, retry later" (retried, exit 4, retryable yes), but this instance will
    not go away by itself. VALIDATION stops at once and tells the operator the truth: nothing
    was changed, fix the request (another replicaInstanceId) or remove the instance (exit 3).
    """
    problems = mismatches(spec, replica)
    if problems:
        raise failure(
            FailureKind.VALIDATION,
            f"conflict: instance {spec.replica_id()} already exists and {'; '.join(problems)}; "
            "opsctl does not modify or adopt it (choose another replicaInstanceId or remove it)",
        )


def source_facts(source: dict[str, Any]) -> dict[str, str]:
    """What a reviewer needs to know about the source. Its status is left out on purpose: it
    flaps (backing-up, modifying) and would change the plan's hash and void approvals; apply
    treats a busy source as transient and retries."""
    return {
        "engine": f"{source.get('Engine', '')} {source.get('EngineVersion', '')}".strip(),
        "instance_class": str(source.get("DBInstanceClass", "")),
        "availability_zone": str(source.get("AvailabilityZone", "")),
        "multi_az": str(bool(source.get("MultiAZ", False))).lower(),
        "storage": f"{source.get('AllocatedStorage', '?')} GiB {source.get('StorageType', '')}".strip(),
        "replicates": source_of(source) or "nothing (a primary)",
    }


def build_plan(spec: CreateReadReplicaSpec, source: dict[str, Any], replica: dict[str, Any] | None) -> Plan:
    """The plan from what was observed: create the replica, or adopt the one that is there."""
    replica_id = spec.replica_id()
    engine = str(source.get("Engine", ""))
    if engine.startswith("aurora"):
        raise failure(
            FailureKind.VALIDATION,
            f"{spec.source_instance_id} is an Aurora instance ({engine}): add a reader to its cluster instead",
        )
    source_step = PlannedAction(
        action=Action.NOOP,
        resource_type="rds:db-instance",
        resource_id=spec.source_instance_id,
        reason="the source: read from, never modified",
        reversible=True,
        rollback=Rollback.NONE,
        observed=source_facts(source),
    )
    if replica is None:
        replica_step = PlannedAction(
            action=Action.CREATE,
            resource_type="rds:db-instance",
            resource_id=replica_id,
            reason=(
                f"create a read replica of {spec.source_instance_id}: class {spec.instance_class}, "
                f"AZ {az_wanted(spec)}, engine and storage as the source's, tagged {RUN_TAG}"
            ),
            reversible=True,
            rollback=Rollback.COMPENSATE,  # cancel deletes a replica this run created
            # What the replica inherits from its source is part of what is approved (hashed).
            observed={
                "replica_exists": "false",
                **{
                    f"source_{k}": v
                    for k, v in source_facts(source).items()
                    if k in ("engine", "storage", "replicates")
                },
            },
        )
    else:
        refuse_foreign(spec, replica)
        replica_step = PlannedAction(
            action=Action.NOOP,
            resource_type="rds:db-instance",
            resource_id=replica_id,
            reason=f"a read replica of {spec.source_instance_id} with this configuration exists: adopted",
            reversible=True,
            rollback=Rollback.NONE,
            observed={
                "replica_exists": "true",
                "status": str(replica.get("DBInstanceStatus", "")),
                "instance_class": str(replica.get("DBInstanceClass", "")),
                "availability_zone": str(replica.get("AvailabilityZone", "")),
                "owner_run": tags_of(replica).get(RUN_TAG, "untagged"),
            },
        )
    return Plan(
        kind=KIND,
        target=f"read replica {replica_id} of {spec.source_instance_id}",
        actions=[source_step, replica_step],
    )


def replica_checks(
    spec: CreateReadReplicaSpec, replica: dict[str, Any] | None, source: dict[str, Any] | None
) -> list[Check]:
    """The postconditions, each with the observed evidence in its detail."""
    replica_id = spec.replica_id()
    if replica is None:
        return [Check(name="replica exists", passed=False, detail=f"no instance {replica_id}")]
    status = str(replica.get("DBInstanceStatus", ""))
    replicates = source_of(replica)
    cls, az = replica.get("DBInstanceClass"), replica.get("AvailabilityZone")
    listed = replica_id in (source or {}).get("ReadReplicaDBInstanceIdentifiers", [])
    return [
        Check(name="replica exists", passed=True, detail=f"{replica_id} ({replica.get('DBInstanceArn', '')})"),
        Check(
            name="replica of the source",
            passed=replicates == spec.source_instance_id,
            detail=f"replicates {replicates or 'nothing'}",
        ),
        Check(name="replica available", passed=status == AVAILABLE, detail=f"status {status or 'unknown'}"),
        Check(name="instance class", passed=cls == spec.instance_class, detail=f"{cls}"),
        Check(
            name="availability zone",
            passed=spec.availability_zone in (None, az),
            detail=f"{az}" + ("" if spec.availability_zone else " (chosen by RDS)"),
        ),
        Check(
            name="source lists the replica",
            passed=listed,
            detail=f"{spec.source_instance_id} {'lists' if listed else 'does not list'} {replica_id}",
        ),
    ]


class ReadReplicaActivities:
    def __init__(self, aws: AwsSettings) -> None:
        self._rds = make_client(aws, "rds")

    async def _source(self, spec: CreateReadReplicaSpec) -> dict[str, Any]:
        source = await describe_instance(self._rds, spec.source_instance_id)
        if source is None:
            raise failure(FailureKind.VALIDATION, f"source instance {spec.source_instance_id} does not exist")
        return source

    @activity.defn(name="read_replica.plan")
    @classified(classify_rds)
    async def plan(self, input: PlanReplicaInput) -> Plan:
        """Read-only discovery: the source, and whatever already carries the replica's name."""
        spec = input.spec
        source = await self._source(spec)
        return build_plan(spec, source, await describe_instance(self._rds, spec.replica_id()))

    @activity.defn(name="read_replica.create")
    @classified(classify_rds)
    async def create(self, input: ReplicaStepInput) -> CreateReplicaResult:
        """Create the replica unless it exists; adopt a correct one, refuse any other."""
        spec = input.spec
        replica_id = spec.replica_id()
        replica = await describe_instance(self._rds, replica_id)
        created = False
        if replica is None:
            await self._source(spec)
            arguments: dict[str, Any] = {
                "DBInstanceIdentifier": replica_id,
                "SourceDBInstanceIdentifier": spec.source_instance_id,
                "DBInstanceClass": spec.instance_class,
                "Tags": [{"Key": RUN_TAG, "Value": input.workflow_id}, {"Key": KIND_TAG, "Value": KIND}],
            }
            if spec.availability_zone:
                arguments["AvailabilityZone"] = spec.availability_zone
            try:
                replica = (await call(self._rds.create_db_instance_read_replica, **arguments))["DBInstance"]
                created = True
            except Exception as exc:
                if error_code(exc) != ALREADY_EXISTS:
                    raise
                # Someone created it between our look and our create: judge theirs like any other.
                replica = await describe_instance(self._rds, replica_id)
                if replica is None:
                    raise
        refuse_foreign(spec, replica)
        return CreateReplicaResult(
            replica_id=replica_id,
            arn=str(replica.get("DBInstanceArn", "")),
            status=str(replica.get("DBInstanceStatus", "")),
            created=created,
            owner_run=tags_of(replica).get(RUN_TAG, ""),
        )

    @activity.defn(name="read_replica.verify")
    @classified(classify_rds)
    async def verify(self, input: VerifyReplicaInput) -> VerifyReplicaResult:
        """One probe of the replica and its source. The workflow polls it within its window."""
        spec = input.spec
        replica = await describe_instance(self._rds, spec.replica_id())
        source = await describe_instance(self._rds, spec.source_instance_id)
        checks = replica_checks(spec, replica, source)
        status = str((replica or {}).get("DBInstanceStatus", ""))
        hopeless = replica is None or status in HOPELESS or source_of(replica) != spec.source_instance_id
        return VerifyReplicaResult(checks=checks, status=status, hopeless=hopeless)

    @activity.defn(name="read_replica.compensate")
    @classified(classify_rds)
    async def compensate(self, input: ReplicaStepInput) -> CompensateReplicaResult:
        """Delete the replica, but only one this run created (its tag says so): adopted ones stay."""
        replica_id = input.spec.replica_id()
        replica = await describe_instance(self._rds, replica_id)
        if replica is None or replica.get("DBInstanceStatus") == "deleting":
            return CompensateReplicaResult(changed=False, detail=f"{replica_id} is gone already")
        owner = tags_of(replica).get(RUN_TAG, "")
        if owner != input.workflow_id:
            return CompensateReplicaResult(
                changed=False, detail=f"{replica_id} was not created by this run ({owner or 'untagged'}): kept"
            )
        # A read replica cannot take a final snapshot; its data lives on in the source.
        await call(self._rds.delete_db_instance, DBInstanceIdentifier=replica_id, SkipFinalSnapshot=True)
        return CompensateReplicaResult(changed=True, detail=f"deleted {replica_id}, which this run created")
