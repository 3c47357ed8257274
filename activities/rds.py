"""RDS adapter: describe an instance (absent is an answer, not an error) and classify RDS codes.

RDS speaks its own error codes (`DBInstanceNotFound` with HTTP 404, `InvalidDBInstanceState`
…) that the generic AWS classifier does not know; they are classified here, before it.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from activities.aws import call, classify_aws
from activities.errors import failure, first_known
from contracts.failures import FailureKind

NOT_FOUND = "DBInstanceNotFound"
ALREADY_EXISTS = "DBInstanceAlreadyExists"

RDS_CODES: dict[str, FailureKind] = {
    # The source (or a replica we were told exists) is missing: the request cannot work as written.
    NOT_FOUND: FailureKind.VALIDATION,
    "InvalidParameterCombination": FailureKind.VALIDATION,  # e.g. a class the engine does not offer
    ALREADY_EXISTS: FailureKind.CONFLICT,  # a concurrent create won the race: retry adopts it
    # The source is busy (backing up, modifying): it will be available again shortly.
    "InvalidDBInstanceState": FailureKind.DEPENDENCY_UNAVAILABLE,
    "InsufficientDBInstanceCapacity": FailureKind.DEPENDENCY_UNAVAILABLE,
    # Account limits do not lift by retrying: someone must raise the quota first.
    "InstanceQuotaExceeded": FailureKind.POLICY_DENIED,
    "StorageQuotaExceeded": FailureKind.POLICY_DENIED,
}


def error_code(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _classify_rds_only(exc: BaseException) -> ApplicationError | None:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return None
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    kind = RDS_CODES.get(code)
    return failure(kind, f"RDS {code}: {error.get('Message', '')}") if kind else None


classify_rds = first_known(_classify_rds_only, classify_aws)


async def describe_instance(rds: Any, instance_id: str) -> dict[str, Any] | None:
    """The instance as RDS describes it, or None if there is none with that identifier."""
    from botocore.exceptions import ClientError

    try:
        answer = await call(rds.describe_db_instances, DBInstanceIdentifier=instance_id)
    except ClientError as exc:
        if error_code(exc) == NOT_FOUND:
            return None
        raise
    instances: list[dict[str, Any]] = answer.get("DBInstances", [])
    return instances[0] if instances else None


def source_of(instance: dict[str, Any]) -> str:
    """The identifier of the instance this one replicates ("" if it is no replica).

    Cross-region replicas name their source by ARN (arn:aws:rds:REGION:ACCOUNT:db:ID); the
    identifier is its last part.
    """
    source = str(instance.get("ReadReplicaSourceDBInstanceIdentifier") or "")
    return source.rsplit(":db:", 1)[-1]


def tags_of(instance: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("TagList", [])}
