"""CreateReadReplica: an RDS read replica of a source instance, adopted if it already exists.

The replica's identifier is a pure function of the spec, so every run, retry and re-plan
of the same request looks for the same instance and adopts it instead of creating another.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import Field, model_validator

from contracts.request import StrictModel

# RDS identifiers: 1-63 lowercase letters, digits and hyphens, starting with a letter, with
# no two hyphens in a row and no hyphen at the end (written without look-arounds, which
# pydantic's regex engine does not support).
RDS_IDENTIFIER = r"^[a-z](-?[a-z0-9])*$"
RDS_IDENTIFIER_MAX = 63
INSTANCE_CLASS = r"^db\.[a-z0-9]+\.[a-z0-9]+$"
AVAILABILITY_ZONE = r"^[a-z]{2}(-[a-z0-9]+)+[a-z]$"

REPLICA_SUFFIX = "-replica-"
HASH_DIGITS = 8
# Room left for the source's name in a derived identifier: {source}-replica-{8 hex digits}.
_SOURCE_ROOM = RDS_IDENTIFIER_MAX - len(REPLICA_SUFFIX) - HASH_DIGITS


class CreateReadReplicaSpec(StrictModel):
    """Create an RDS read replica of `sourceInstanceId`, or adopt the one that already exists."""

    source_instance_id: str = Field(
        pattern=RDS_IDENTIFIER, max_length=RDS_IDENTIFIER_MAX, description="The RDS instance to replicate."
    )
    instance_class: str = Field(pattern=INSTANCE_CLASS, description="The replica's class, e.g. db.t3.medium.")
    availability_zone: str | None = Field(
        default=None, pattern=AVAILABILITY_ZONE, description="AZ of the replica, e.g. us-east-1b; default: RDS chooses."
    )
    replica_instance_id: str | None = Field(
        default=None,
        pattern=RDS_IDENTIFIER,
        max_length=RDS_IDENTIFIER_MAX,
        description="The replica's identifier. Default: {source}-replica-{hash of source, class and AZ}.",
    )
    convergence_timeout_seconds: int = Field(
        default=3600,
        ge=60,
        le=86400,
        description="How long verify waits for the replica to become available before asking for review.",
    )

    @model_validator(mode="after")
    def _replica_is_not_its_source(self) -> CreateReadReplicaSpec:
        if self.replica_instance_id == self.source_instance_id:
            raise ValueError("replicaInstanceId must differ from sourceInstanceId")
        return self

    def replica_id(self) -> str:
        """The replica's identifier: explicit, or derived from what defines the replica.

        Derived from the source, the class and the AZ — not from the run id and not from
        the convergence window — so a later run of the same request (another idempotencyKey)
        finds and adopts the replica instead of creating a second one, while a request for a
        differently configured replica names a different instance.
        """
        if self.replica_instance_id:
            return self.replica_instance_id
        defining = {"source": self.source_instance_id, "class": self.instance_class, "az": self.availability_zone}
        digest = hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:HASH_DIGITS]
        return f"{self.source_instance_id[:_SOURCE_ROOM].rstrip('-')}{REPLICA_SUFFIX}{digest}"
