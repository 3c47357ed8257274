"""SweepStaleVolumes: delete unattached EBS volumes older than N days, within a blast radius."""

from __future__ import annotations

from pydantic import Field

from contracts.request import StrictModel


class SweepStaleVolumesSpec(StrictModel):
    older_than_days: int = Field(ge=0, le=3650, description="Only volumes created more than this many days ago.")
    keep_tag: str = Field(default="keep", min_length=1, description="Volumes carrying this tag key are never swept.")
    tag_filters: dict[str, str] = Field(
        default_factory=dict, description="Only volumes carrying all these tags (key: value) are considered."
    )
    snapshot_first: bool = Field(default=False, description="Snapshot each volume before deleting it.")
    batch_size: int = Field(default=100, ge=1, le=1000, description="Volumes per apply step.")
    concurrency: int = Field(default=8, ge=1, le=32, description="Deletions in flight at once within a step.")
