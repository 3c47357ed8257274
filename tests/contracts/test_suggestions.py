"""Errors that say what was meant: misspelt kinds and fields, a spec of another version, YAML syntax."""

from __future__ import annotations

import pytest

from contracts.failures import ExitCode
from contracts.request import DocumentError, parse_document
from contracts.suggest import closest

SWEEP_V2 = """\
apiVersion: opsctl/v2
kind: SweepStaleVolumes
metadata:
  environment: dev
spec:
  selector:
    olderThanDays: 30
    tags: {team: data}
  batchSize: 50
"""


def refusal(text: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        parse_document(text)
    return caught.value


def test_the_closest_name_ignores_case_and_needs_to_be_close() -> None:
    assert "SweepStaleVolumes" == closest("sweepstalevolume", ["RotateDbCredential", "SweepStaleVolumes"])
    assert closest("Nope", ["RotateDbCredential", "SweepStaleVolumes"]) is None


def test_a_misspelt_kind_is_suggested() -> None:
    error = refusal(SWEEP_V2.replace("kind: SweepStaleVolumes", "kind: SweepStaleVolume"))
    assert "kind" == error.field
    assert ExitCode.INVALID_INPUT == error.exit_code
    assert "did you mean 'SweepStaleVolumes'?" in str(error)


def test_a_kind_like_no_other_gets_the_list_only() -> None:
    error = refusal(SWEEP_V2.replace("kind: SweepStaleVolumes", "kind: DropEverything"))
    assert "did you mean" not in str(error)
    assert "known kinds: BackfillTable, CreateReadReplica" in str(error)


def test_a_misspelt_api_version_is_suggested() -> None:
    error = refusal(SWEEP_V2.replace("apiVersion: opsctl/v2", "apiVersion: opsctl/V2"))
    assert "apiVersion" == error.field
    assert "did you mean 'opsctl/v2'?" in str(error)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("batchSize: 50", "batchSise: 50"), "spec.batchSise: unknown field; did you mean 'spec.batchSize'?"),
        (
            ("olderThanDays: 30", "olderThanDay: 30"),
            "spec.selector.olderThanDay: unknown field; did you mean 'spec.selector.olderThanDays'?",
        ),
        (
            ("  batchSize: 50", "  batchSize: 50\n  excludeTags: [keep]"),
            "spec.excludeTags: unknown field; did you mean 'spec.selector.excludeTags'?",
        ),
        (("environment: dev", "environment: dev\n  enviroment: x"), "did you mean 'metadata.environment'?"),
        (("metadata:", "metdata: {}\nmetadata:"), "metdata: unknown field; did you mean 'metadata'?"),
        (("  batchSize: 50", "  batchSize: 50\n  force: true"), "spec.force: unknown field"),
    ],
)
def test_an_unknown_field_names_the_field_it_resembles(change: tuple[str, str], message: str) -> None:
    error = refusal(SWEEP_V2.replace(*change))
    assert ExitCode.VALIDATION_FAILED == error.exit_code
    assert message in str(error)
    if "force" in message:
        assert "did you mean" not in str(error)


def test_a_v1_spec_under_a_v2_header_is_named_for_what_it_is() -> None:
    text = SWEEP_V2.replace("  selector:\n    olderThanDays: 30\n    tags: {team: data}\n", "  olderThanDays: 30\n")
    error = refusal(text)
    assert "spec.selector" == error.field
    assert "the spec is a valid SweepStaleVolumes opsctl/v1 spec: set apiVersion: opsctl/v1" in error.hint
    assert "opsctl convert -f DOC" in error.hint


def test_a_spec_error_points_at_the_schema_of_the_document_s_own_version() -> None:
    error = refusal(SWEEP_V2.replace("batchSize: 50", "batchSize: 0"))
    assert "`opsctl schema SweepStaleVolumes --version opsctl/v2` shows the document's shape" == error.hint


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("apiVersion: opsctl/v2\nkind: [SweepStaleVolumes\n", "line 3, column 1"),
        ("apiVersion: opsctl/v2\n kind: x\n", "line 2, column 6"),
        ('apiVersion: "opsctl/v2\n', "line 2, column 1"),
        ("apiVersion: opsctl/v2\n\tkind: x\n", "line 2, column 1"),
    ],
)
def test_a_yaml_syntax_error_says_so_and_where_not_to_read_the_schema(text: str, where: str) -> None:
    error = refusal(text)
    assert ExitCode.INVALID_INPUT == error.exit_code
    assert "YAML syntax error" in str(error)
    assert f"fix the YAML syntax at {where}" in error.hint
    assert "opsctl schema" not in error.hint


def test_well_formed_yaml_a_document_may_not_hold_is_not_called_a_syntax_error() -> None:
    error = refusal("apiVersion: &v opsctl/v2\nkind: *v\n")
    assert "YAML syntax" not in str(error)
    assert "anchors and aliases" in str(error)
    assert "no anchors, aliases" in error.hint
