"""SweepStaleVolumes: delete unattached EBS volumes older than N days, within a blast radius.

Two versions of the spec. opsctl/v1 (deprecated) spreads what selects a volume over flat
fields (`olderThanDays`, `keepTag`, `tagFilters`) beside how the sweep runs. opsctl/v2 groups
the selection in one `selector` — age, the tags a volume must carry, the tag keys that
protect it (any number, v1 had exactly one) — and keeps the rest as it was. Workflows and
activities read v2 only: a v1 spec is converted on the way in (`upgrade`), exactly.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from contracts.request import StrictModel


class SweepStaleVolumesSpecV1(StrictModel):
    """opsctl/v1 (deprecated): the selection as flat fields. `opsctl convert` prints its v2 equivalent."""

    older_than_days: int = Field(ge=0, le=3650, description="Only volumes created more than this many days ago.")
    keep_tag: str = Field(default="keep", min_length=1, description="Volumes carrying this tag key are never swept.")
    tag_filters: dict[str, str] = Field(
        default_factory=dict, description="Only volumes carrying all these tags (key: value) are considered."
    )
    snapshot_first: bool = Field(default=False, description="Snapshot each volume before deleting it.")
    batch_size: int = Field(default=100, ge=1, le=1000, description="Volumes per apply step.")
    concurrency: int = Field(default=8, ge=1, le=32, description="Deletions in flight at once within a step.")


class VolumeSelector(StrictModel):
    """Which volumes are candidates: available (unattached), older than `olderThanDays`, carrying
    every tag in `tags` and none of the keys in `excludeTags`. Attached volumes are never swept."""

    older_than_days: int = Field(ge=0, le=3650, description="Only volumes created more than this many days ago.")
    tags: dict[str, str] = Field(
        default_factory=dict, description="Only volumes carrying all these tags (key: value) are considered."
    )
    exclude_tags: list[str] = Field(
        default_factory=lambda: ["keep"],
        min_length=1,
        max_length=50,
        description="Volumes carrying any of these tag keys are never swept (at least one: a volume can always "
        "be protected).",
    )

    @field_validator("exclude_tags")
    @classmethod
    def _distinct_keys(cls, keys: list[str]) -> list[str]:
        if any(not key for key in keys):
            raise ValueError("a tag key is never empty")
        if len(set(keys)) != len(keys):
            raise ValueError("each tag key once")
        return keys


class SweepStaleVolumesSpec(StrictModel):
    """opsctl/v2, what the workflow and its activities read: the selection in one `selector`."""

    selector: VolumeSelector = Field(description="Which volumes the sweep considers and which it never touches.")
    snapshot_first: bool = Field(default=False, description="Snapshot each volume before deleting it.")
    batch_size: int = Field(default=100, ge=1, le=1000, description="Volumes per apply step.")
    concurrency: int = Field(default=8, ge=1, le=32, description="Deletions in flight at once within a step.")


def upgrade(v1: SweepStaleVolumesSpecV1) -> SweepStaleVolumesSpec:
    """The v2 spec that means exactly what `v1` means: keepTag is the one exclude tag, tagFilters the tags."""
    return SweepStaleVolumesSpec(
        selector=VolumeSelector(
            older_than_days=v1.older_than_days, tags=dict(v1.tag_filters), exclude_tags=[v1.keep_tag]
        ),
        snapshot_first=v1.snapshot_first,
        batch_size=v1.batch_size,
        concurrency=v1.concurrency,
    )


def downgrade(v2: SweepStaleVolumesSpec) -> SweepStaleVolumesSpecV1 | None:
    """The v1 spec that means exactly what `v2` means, or None if v1 cannot say it (not one exclude tag)."""
    if len(v2.selector.exclude_tags) != 1:
        return None
    return SweepStaleVolumesSpecV1(
        older_than_days=v2.selector.older_than_days,
        keep_tag=v2.selector.exclude_tags[0],
        tag_filters=dict(v2.selector.tags),
        snapshot_first=v2.snapshot_first,
        batch_size=v2.batch_size,
        concurrency=v2.concurrency,
    )
