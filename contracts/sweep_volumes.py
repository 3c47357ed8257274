"""SweepStaleVolumes: delete unattached EBS volumes older than N days, within a blast radius."""

from __future__ import annotations

from pydantic import Field

from contracts.request import StrictModel


class SweepStaleVolumesSpec(StrictModel):
    older_than_days: int = Field(ge=0, description="Only volumes created more than this many days ago.")
    keep_tag: str = Field(default="keep", description="Volumes carrying this tag key are never swept.")
    tag_filters: dict[str, str] = Field(default_factory=dict, description="Only volumes with all these tags.")
    snapshot_first: bool = Field(default=False, description="Snapshot each volume before deleting it.")
