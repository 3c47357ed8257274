"""CreateReadReplica: an RDS read replica of a source instance, adopted if it already exists."""

from __future__ import annotations

from pydantic import Field

from contracts.request import StrictModel

RDS_IDENTIFIER = r"^[a-z][a-z0-9-]{0,62}$"


class CreateReadReplicaSpec(StrictModel):
    source_instance_id: str = Field(pattern=RDS_IDENTIFIER, description="The RDS instance to replicate.")
    instance_class: str = Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$", description="e.g. db.t3.medium")
    availability_zone: str | None = Field(default=None, description="AZ of the replica; default: RDS chooses.")
