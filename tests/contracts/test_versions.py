"""Contract versions: the per-kind table, the v1 → v2 sweep converter, run ids, deprecation."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from contracts import kinds
from contracts.failures import ExitCode
from contracts.request import API_VERSIONS, DocumentError, parse_request
from contracts.sweep_volumes import (
    SweepStaleVolumesSpec,
    SweepStaleVolumesSpecV1,
    VolumeSelector,
    downgrade,
    upgrade,
)

FULL_V1 = {
    "olderThanDays": 30,
    "keepTag": "retain",
    "tagFilters": {"team": "data", "env": "dev"},
    "snapshotFirst": True,
    "batchSize": 25,
    "concurrency": 4,
}


def document(api_version: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "SweepStaleVolumes",
        "metadata": {"environment": "dev", **metadata},
        "spec": spec,
    }


def converted(v1_spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """The v2 document `opsctl convert` makes of a v1 one."""
    v2 = kinds.read_spec("SweepStaleVolumes", "opsctl/v1", v1_spec)
    return document("opsctl/v2", v2.model_dump(mode="json", by_alias=True), **metadata)


def test_every_kind_starts_at_v1_and_each_newer_version_converts_from_the_one_before() -> None:
    for kind, rows in kinds.VERSIONS.items():
        assert "opsctl/v1" == rows[0].api_version, kind
        assert {row.api_version for row in rows} <= set(API_VERSIONS), kind
        assert all(row.upgrade is not None for row in rows[1:]), kind
        assert rows[-1].spec is kinds.KINDS[kind], "a workflow reads its kind's latest spec"


def test_sweep_has_v1_deprecated_and_v2_latest_other_kinds_v1_only() -> None:
    assert ["opsctl/v1", "opsctl/v2"] == kinds.versions("SweepStaleVolumes")
    assert "opsctl/v2" == kinds.latest("SweepStaleVolumes")
    assert date(2027, 6, 30) == kinds.VERSIONS["SweepStaleVolumes"][0].stops
    others = {kind: kinds.versions(kind) for kind in kinds.VERSIONS if kind != "SweepStaleVolumes"}
    assert all(["opsctl/v1"] == found for found in others.values()), others


def test_the_converter_maps_every_v1_field_to_its_v2_place() -> None:
    v2 = upgrade(SweepStaleVolumesSpecV1.model_validate(FULL_V1))
    expected = SweepStaleVolumesSpec(
        selector=VolumeSelector(older_than_days=30, tags={"team": "data", "env": "dev"}, exclude_tags=["retain"]),
        snapshot_first=True,
        batch_size=25,
        concurrency=4,
    )
    assert expected == v2


def test_a_v1_spec_with_defaults_converts_to_v2_with_the_same_defaults() -> None:
    v2 = upgrade(SweepStaleVolumesSpecV1.model_validate({"olderThanDays": 7}))
    assert SweepStaleVolumesSpec(selector=VolumeSelector(older_than_days=7)) == v2
    assert ["keep"] == v2.selector.exclude_tags


@pytest.mark.parametrize("spec", [FULL_V1, {"olderThanDays": 0}, {"olderThanDays": 3650, "keepTag": "k"}])
def test_downgrading_a_converted_spec_gives_back_the_v1_spec(spec: dict[str, Any]) -> None:
    v1 = SweepStaleVolumesSpecV1.model_validate(spec)
    assert v1 == downgrade(upgrade(v1))


def test_a_v2_spec_with_several_exclude_tags_has_no_v1_form() -> None:
    v2 = SweepStaleVolumesSpec(selector=VolumeSelector(older_than_days=1, exclude_tags=["keep", "retain"]))
    assert downgrade(v2) is None


@pytest.mark.parametrize("bad", [[], [""], ["keep", "keep"]])
def test_exclude_tags_are_distinct_non_empty_keys_and_at_least_one(bad: list[str]) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_request(document("opsctl/v2", {"selector": {"olderThanDays": 1, "excludeTags": bad}}))
    assert "spec.selector.excludeTags" == caught.value.field
    assert ExitCode.VALIDATION_FAILED == caught.value.exit_code


def test_a_v2_request_keeps_its_v2_spec_and_reads_as_v2() -> None:
    request = parse_request(converted(FULL_V1))
    assert "opsctl/v2" == request.api_version
    assert ["retain"] == request.spec["selector"]["excludeTags"]
    spec = kinds.read_spec(request.kind, request.api_version, request.spec)
    assert upgrade(SweepStaleVolumesSpecV1.model_validate(FULL_V1)) == spec


def test_a_v1_request_keeps_its_v1_spec_and_reads_as_v2() -> None:
    """The request records what was written (and signed); the workflow reads its v2 equivalent."""
    request = parse_request(document("opsctl/v1", FULL_V1))
    assert "opsctl/v1" == request.api_version
    assert FULL_V1 == request.spec
    assert isinstance(kinds.read_spec(request.kind, request.api_version, request.spec), SweepStaleVolumesSpec)


@pytest.mark.parametrize("spec", [FULL_V1, {"olderThanDays": 30}])
@pytest.mark.parametrize("key", [None, "CHG-7"])
def test_a_v1_document_and_its_v2_conversion_are_the_same_run(spec: dict[str, Any], key: str | None) -> None:
    metadata = {"idempotencyKey": key} if key else {}
    v1 = parse_request(document("opsctl/v1", spec, **metadata))
    v2 = parse_request(converted(spec, **metadata))
    assert v1.workflow_id() == v2.workflow_id()
    assert v1.spec_hash() == v2.spec_hash(), "apply attaches to the v1 run instead of calling it another request"


def test_the_run_id_of_a_v1_document_is_what_it_was_before_v2_existed() -> None:
    """sha256 over kind, environment and the v1 spec, as opsctl computed it for every v1 sweep before."""
    request = parse_request(document("opsctl/v1", FULL_V1))
    canonical = json.dumps(
        {"kind": "SweepStaleVolumes", "environment": "dev", "spec": request.spec}, sort_keys=True, separators=(",", ":")
    )
    assert f"SweepStaleVolumes-dev-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}" == request.workflow_id()


def test_a_v2_sweep_that_v1_cannot_express_is_its_own_run() -> None:
    one = parse_request(document("opsctl/v2", {"selector": {"olderThanDays": 1, "excludeTags": ["keep"]}}))
    two = parse_request(document("opsctl/v2", {"selector": {"olderThanDays": 1, "excludeTags": ["keep", "retain"]}}))
    assert one.workflow_id() != two.workflow_id()


@pytest.mark.parametrize("kind", sorted(set(kinds.VERSIONS) - {"SweepStaleVolumes"}))
def test_v2_of_a_kind_that_has_only_v1_is_refused_naming_its_version(kind: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_request({"apiVersion": "opsctl/v2", "kind": kind, "metadata": {"environment": "dev"}, "spec": {}})
    assert "apiVersion" == caught.value.field
    assert ExitCode.INVALID_INPUT == caught.value.exit_code
    assert f"apiVersion: {kind} has no version 'opsctl/v2'; its only version is opsctl/v1" == str(caught.value)


def test_v1_of_the_sweep_is_accepted_with_a_warning_naming_the_date_and_convert_until_then() -> None:
    warnings = kinds.check_accepted("SweepStaleVolumes", "opsctl/v1", date(2027, 6, 29))
    assert 1 == len(warnings)
    assert "2027-06-30" in warnings[0]
    assert "`opsctl convert -f DOC`" in warnings[0]


@pytest.mark.parametrize("at", [date(2027, 6, 30), datetime(2027, 6, 30, 0, 0, tzinfo=UTC), date(2030, 1, 1)])
def test_v1_of_the_sweep_is_refused_from_its_date_on(at: date | datetime) -> None:
    with pytest.raises(DocumentError) as caught:
        kinds.check_accepted("SweepStaleVolumes", "opsctl/v1", at)
    assert ExitCode.VALIDATION_FAILED == caught.value.exit_code
    assert "apiVersion" == caught.value.field
    assert "stopped being accepted on 2027-06-30" in str(caught.value)
    assert "`opsctl convert -f DOC`" in str(caught.value)


def test_versions_that_are_not_deprecated_carry_no_warning_ever() -> None:
    far = date(2100, 1, 1)
    assert [] == kinds.check_accepted("SweepStaleVolumes", "opsctl/v2", far)
    assert [] == kinds.check_accepted("RotateDbCredential", "opsctl/v1", far)


@pytest.mark.parametrize(
    ("api_version", "definition"), [("opsctl/v1", "SweepStaleVolumesSpecV1"), ("opsctl/v2", "SweepStaleVolumesSpec")]
)
def test_the_json_schema_is_per_version(api_version: str, definition: str) -> None:
    schema = kinds.json_schema("SweepStaleVolumes", api_version)
    assert {"const": api_version} == schema["properties"]["apiVersion"]
    assert {"$ref": f"#/$defs/{definition}"} == schema["properties"]["spec"]
    assert (api_version == "opsctl/v1") == schema.get("deprecated", False)


def test_the_json_schema_defaults_to_the_latest_version() -> None:
    assert kinds.json_schema("SweepStaleVolumes", "opsctl/v2") == kinds.json_schema("SweepStaleVolumes")
    assert "selector" in kinds.json_schema("SweepStaleVolumes")["$defs"]["SweepStaleVolumesSpec"]["properties"]
