"""The sweep's activity inputs across opsctl/v2: steps scheduled by v1 runs still read, and read the same."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from activities.sweep_volumes import DeleteBatchInput, PlanSweepInput, classify_volume, either
from contracts.sweep_volumes import SweepStaleVolumesSpecV1, VolumeSelector, upgrade

HISTORY = Path(__file__).parents[1] / "workflows" / "histories" / "SweepStaleVolumes-dev-sweep-example-1@23ed31e4.json"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def scheduled_input(activity_type: str) -> bytes:
    """The input of the first `activity_type` step a committed (pre-v2) sweep history scheduled."""
    for event in json.loads(HISTORY.read_text())["events"]:
        attributes = event.get("activityTaskScheduledEventAttributes")
        if attributes and attributes["activityType"]["name"] == activity_type:
            return base64.b64decode(attributes["input"]["payloads"][0]["data"])
    raise AssertionError(f"no {activity_type} in {HISTORY.name}")


def test_a_plan_step_scheduled_by_a_v1_run_reads_as_its_v2_equivalent() -> None:
    payload = scheduled_input("sweep_volumes.plan")
    v1 = SweepStaleVolumesSpecV1.model_validate(json.loads(payload)["spec"])
    assert PlanSweepInput(spec=upgrade(v1)) == PlanSweepInput.model_validate_json(payload)


def test_a_delete_step_scheduled_before_v2_is_protected_by_its_keep_tag() -> None:
    old = DeleteBatchInput.model_validate_json(scheduled_input("sweep_volumes.delete_batch"))
    assert ["keep"] == old.protected_by
    assert ["keep", "retain"] == DeleteBatchInput(
        workflow_id="w",
        volume_ids=[],
        snapshot_first=False,
        concurrency=1,
        keep_tag="keep",
        exclude_tags=["keep", "retain"],
    ).protected_by


def volume(state: str = "available", age_days: int = 40, **tags: str) -> dict[str, Any]:
    return {
        "VolumeId": "vol-1",
        "State": state,
        "CreateTime": NOW - timedelta(days=age_days),
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def test_any_exclude_tag_protects_a_volume_and_is_named() -> None:
    selector = VolumeSelector(older_than_days=30, exclude_tags=["keep", "retain"])
    assert "has the 'retain' tag" == classify_volume(volume(retain="yes"), selector, NOW)
    assert "has the 'keep' tag" == classify_volume(volume(keep="", retain="yes"), selector, NOW)
    assert "" == classify_volume(volume(team="data"), selector, NOW)


def test_attached_and_young_volumes_are_skipped_whatever_the_selector() -> None:
    selector = VolumeSelector(older_than_days=30)
    assert "state is in-use (attached or changing)" == classify_volume(volume("in-use"), selector, NOW)
    assert "created less than 30 days ago" == classify_volume(volume(age_days=2), selector, NOW)


def test_one_exclude_tag_reads_as_v1_plans_did_several_as_a_list() -> None:
    """The plan's reason is hashed: a v1 request's plan must not change by being read as v2."""
    assert "'keep'" == either(["keep"])
    assert "'keep' or 'retain'" == either(["keep", "retain"])
    assert "'a', 'b' or 'c'" == either(["a", "b", "c"])
