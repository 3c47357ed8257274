"""CLI contract for versions: schema (listing, --version, --example), convert, validate's warnings.

All offline (no stack): `opsctl` as a subprocess with its own state folder and the test policy
file. The deprecation date is crossed in-process, with the CLI's clock replaced.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from client.commands import documents
from client.main import run
from contracts import kinds
from contracts.request import parse_document
from tests.client.conftest import ROOT, Ran
from tests.identities import KEYS_DIR, POLICY_FILE

SWEEP_V1 = ROOT / "examples" / "sweep-stale-volumes.yaml"
SWEEP_V2 = ROOT / "examples" / "sweep-stale-volumes-v2.yaml"
ROTATION = ROOT / "examples" / "rotate-db-credential-dev.yaml"
EVERY_VERSION = [(kind, version) for kind in kinds.VERSIONS for version in kinds.versions(kind)]


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "OPSCTL_STATE_DIR": str(tmp_path / "state"),
        "OPSCTL_CONFIG": "",  # no user file
        "OPSCTL_USER": "alice",
        "OPSCTL_KEYS_DIR": str(KEYS_DIR),
        "OPSCTL_POLICY_FILE": str(POLICY_FILE),
    }
    for name, value in env.items():  # for the in-process runs
        monkeypatch.setenv(name, value)
    return {**os.environ, **env}


def opsctl(env: dict[str, str], *argv: str, stdin: str = "") -> Ran:
    ran = subprocess.run(
        [sys.executable, "-m", "client.main", *argv],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Ran(ran.returncode, ran.stdout, ran.stderr)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    return str(path)


# ---- schema -------------------------------------------------------------------------------


def test_schema_without_a_kind_lists_every_kind_with_its_versions(offline_env: dict[str, str]) -> None:
    listed = opsctl(offline_env, "schema", "-o", "json")
    text = opsctl(offline_env, "schema")

    assert (0, 0) == (listed.code, text.code), listed.stderr + text.stderr
    by_kind = {row["kind"]: row for row in listed.json()["kinds"]}
    assert set(kinds.VERSIONS) == set(by_kind)
    assert {
        "kind": "SweepStaleVolumes",
        "latest": "opsctl/v2",
        "versions": [
            {"api_version": "opsctl/v1", "latest": False, "deprecated": True, "stops_being_accepted": "2027-06-30"},
            {"api_version": "opsctl/v2", "latest": True, "deprecated": False, "stops_being_accepted": None},
        ],
    } == by_kind["SweepStaleVolumes"]
    assert ["opsctl/v1"] == [v["api_version"] for v in by_kind["RotateDbCredential"]["versions"]]
    sweep_line = next(line for line in text.stdout.splitlines() if line.startswith("SweepStaleVolumes"))
    assert sweep_line.split()[:3] == ["SweepStaleVolumes", "opsctl/v1,", "opsctl/v2"]
    assert "opsctl/v1 stops being accepted on 2027-06-30" in sweep_line


@pytest.mark.parametrize(
    ("argv", "api_version", "spec_definition"),
    [
        ((), "opsctl/v2", "SweepStaleVolumesSpec"),
        (("--version", "opsctl/v2"), "opsctl/v2", "SweepStaleVolumesSpec"),
        (("--version", "opsctl/v1"), "opsctl/v1", "SweepStaleVolumesSpecV1"),
    ],
)
def test_schema_prints_the_version_asked_for_and_the_latest_by_default(
    offline_env: dict[str, str], argv: tuple[str, ...], api_version: str, spec_definition: str
) -> None:
    ran = opsctl(offline_env, "schema", "SweepStaleVolumes", *argv)
    assert 0 == ran.code, ran.stderr
    schema = json.loads(ran.stdout)
    assert {"const": api_version} == schema["properties"]["apiVersion"]
    assert {"$ref": f"#/$defs/{spec_definition}"} == schema["properties"]["spec"]
    assert ("2027-06-30" in ran.stderr) == (api_version == "opsctl/v1"), "a deprecated version warns on stderr"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("RotateDbCredential", "--version", "opsctl/v2"), "its only version is opsctl/v1"),
        (("SweepStaleVolumes", "--version", "opsctl/v3"), "its versions are opsctl/v1, opsctl/v2"),
        (("SweepStaleVolume",), "did you mean 'SweepStaleVolumes'?"),
        (("--example",), "--example needs a KIND"),
    ],
)
def test_schema_of_a_version_or_kind_that_does_not_exist_exits_2_saying_what_does(
    offline_env: dict[str, str], argv: tuple[str, ...], message: str
) -> None:
    ran = opsctl(offline_env, "schema", *argv, "-o", "json")
    assert 2 == ran.code
    assert 2 == ran.json()["exit_code"]
    assert message in ran.json()["error"]["message"]
    assert f"error: {ran.json()['error']['message']}" in ran.stderr


@pytest.mark.parametrize(("kind", "api_version"), EVERY_VERSION, ids=[f"{k}-{v}" for k, v in EVERY_VERSION])
def test_the_example_of_every_kind_and_version_is_commented_and_validates(
    offline_env: dict[str, str], kind: str, api_version: str
) -> None:
    ran = opsctl(offline_env, "schema", kind, "--version", api_version, "--example")
    assert 0 == ran.code, ran.stderr
    assert ran.stdout.startswith("# "), "it says what the kind does"
    request = parse_document(ran.stdout, "the example")  # the real parser
    assert (kind, api_version) == (request.kind, request.api_version)
    row = kinds.version(kind, api_version)
    assert row is not None
    for field in row.spec.model_fields.values():
        assert f"{field.alias}:" in ran.stdout, f"the example shows {field.alias}"
    as_json = opsctl(offline_env, "schema", kind, "--version", api_version, "--example", "-o", "json")
    assert request == parse_document(as_json.stdout)


def test_an_example_printed_by_schema_passes_validate(offline_env: dict[str, str]) -> None:
    example = opsctl(offline_env, "schema", "SweepStaleVolumes", "--example").stdout
    ran = opsctl(offline_env, "validate", "-f", "-", "-o", "json", stdin=example)
    assert 0 == ran.code, ran.stderr
    assert ("opsctl/v2", []) == (ran.json()["api_version"], ran.json()["warnings"])


# ---- convert ------------------------------------------------------------------------------


def test_convert_prints_the_v2_document_of_a_v1_sweep_the_same_run(offline_env: dict[str, str], tmp_path: Path) -> None:
    ran = opsctl(offline_env, "convert", "-f", str(SWEEP_V1))
    assert 0 == ran.code, ran.stderr
    converted = parse_document(ran.stdout)
    original = parse_document(SWEEP_V1.read_text())
    assert "opsctl/v2" == converted.api_version
    assert {"olderThanDays": 0, "tags": {"purpose": "opsctl-example"}, "excludeTags": ["keep"]} == converted.spec[
        "selector"
    ]
    assert (True, 50, 8) == (
        converted.spec["snapshotFirst"],
        converted.spec["batchSize"],
        converted.spec["concurrency"],
    )
    assert original.metadata == converted.metadata
    assert original.workflow_id() == converted.workflow_id()
    assert f"the run id stays {original.workflow_id()}" in ran.stderr
    v1, v2 = (
        opsctl(offline_env, "validate", "-f", str(SWEEP_V1), "-o", "json"),
        opsctl(offline_env, "validate", "-f", write(tmp_path, ran.stdout), "-o", "json"),
    )
    assert v1.json()["run_id"] == v2.json()["run_id"]


def test_convert_in_json_prints_the_document_as_json(offline_env: dict[str, str]) -> None:
    ran = opsctl(offline_env, "convert", "-f", str(SWEEP_V1), "-o", "json")
    assert 0 == ran.code, ran.stderr
    assert ["apiVersion", "kind", "metadata", "spec"] == list(ran.json())
    assert parse_document(ran.stdout) == parse_document(opsctl(offline_env, "convert", "-f", str(SWEEP_V1)).stdout)


@pytest.mark.parametrize(
    ("path", "note"),
    [
        (SWEEP_V2, "is already opsctl/v2, the latest version of SweepStaleVolumes; printed unchanged"),
        (ROTATION, "RotateDbCredential has one version, opsctl/v1: nothing to convert; printed unchanged"),
    ],
)
def test_convert_prints_a_document_at_its_latest_version_unchanged_with_a_note(
    offline_env: dict[str, str], path: Path, note: str
) -> None:
    ran = opsctl(offline_env, "convert", "-f", str(path))
    assert 0 == ran.code, ran.stderr
    assert path.read_text().rstrip("\n") == ran.stdout.rstrip("\n"), "comments and all"
    assert note in ran.stderr


def test_convert_refuses_a_document_that_is_not_valid_as_it_is(offline_env: dict[str, str], tmp_path: Path) -> None:
    bad = SWEEP_V1.read_text().replace("batchSize: 50", "batchSize: 0")
    ran = opsctl(offline_env, "convert", "-f", write(tmp_path, bad), "-o", "json")
    assert 3 == ran.code
    assert "spec.batchSize" == ran.json()["error"]["field"]


# ---- validate -----------------------------------------------------------------------------


def test_validate_of_a_v1_sweep_warns_on_stderr_and_in_the_json(offline_env: dict[str, str]) -> None:
    ran = opsctl(offline_env, "validate", "-f", str(SWEEP_V1), "-o", "json")
    text = opsctl(offline_env, "validate", "-f", str(SWEEP_V1))

    assert (0, 0) == (ran.code, text.code), ran.stderr
    assert {"valid", "kind", "api_version", "run_id", "environment", "requester", "spec", "warnings"} == set(ran.json())
    assert "opsctl/v1" == ran.json()["api_version"]
    [warning] = ran.json()["warnings"]
    assert "stops being accepted on 2027-06-30" in warning
    assert "`opsctl convert -f DOC`" in warning
    assert f"warning: {warning}" in ran.stderr
    assert f"warning: {warning}" in text.stderr
    assert "warning" not in text.stdout


def test_validate_of_a_v2_sweep_has_no_warnings(offline_env: dict[str, str]) -> None:
    ran = opsctl(offline_env, "validate", "-f", str(SWEEP_V2), "-o", "json")
    assert 0 == ran.code, ran.stderr
    assert ("opsctl/v2", []) == (ran.json()["api_version"], ran.json()["warnings"])
    assert "" == ran.stderr


@pytest.mark.parametrize(
    ("change", "code", "field", "in_message", "in_hint"),
    [
        (("olderThanDays: 0", "olderThanDay: 0"), 3, "spec.selector.olderThanDays", "did you mean", "opsctl schema"),
        (("kind: SweepStaleVolumes", "kind: SweepStaleVolume"), 2, "kind", "did you mean 'SweepStaleVolumes'?", ""),
        (("kind: SweepStaleVolumes", "kind: [SweepStaleVolumes"), 2, "", "YAML syntax error", "fix the YAML syntax"),
    ],
)
def test_validate_errors_say_what_was_meant_and_a_hint_that_fits(
    offline_env: dict[str, str],
    tmp_path: Path,
    change: tuple[str, str],
    code: int,
    field: str,
    in_message: str,
    in_hint: str,
) -> None:
    ran = opsctl(offline_env, "validate", "-f", write(tmp_path, SWEEP_V2.read_text().replace(*change)), "-o", "json")
    error = ran.json()["error"]
    assert code == ran.code
    assert field == error.get("field", "")
    assert in_message in error["message"]
    assert in_hint in error["hint"]
    if "YAML" in in_message:
        assert "opsctl schema" not in error["hint"]


# ---- after the date (in-process, the CLI's clock moved) -------------------------------------


def run_at(at: datetime, *argv: str) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    original = documents.now
    documents.now = lambda: at
    try:
        code = run(list(argv), out, err)
    finally:
        documents.now = original
    return Ran(code, out.getvalue(), err.getvalue())


STOPS = datetime.combine(kinds.SWEEP_V1_STOPS, datetime.min.time(), tzinfo=UTC)


@pytest.mark.usefixtures("offline_env")
def test_from_its_date_a_v1_sweep_is_refused_with_exit_3_and_convert_still_works() -> None:
    before = run_at(STOPS - timedelta(seconds=1), "validate", "-f", str(SWEEP_V1), "-o", "json")
    after = run_at(STOPS, "validate", "-f", str(SWEEP_V1), "-o", "json")
    converted = run_at(STOPS, "convert", "-f", str(SWEEP_V1))
    v2 = run_at(STOPS + timedelta(days=365), "validate", "-f", str(SWEEP_V2), "-o", "json")

    assert 0 == before.code, before.stderr
    assert 3 == after.code
    assert "apiVersion" == after.json()["error"]["field"]
    assert "stopped being accepted on 2027-06-30" in after.json()["error"]["message"]
    assert "opsctl convert -f DOC" in after.json()["error"]["hint"]
    assert (0, "opsctl/v2") == (converted.code, parse_document(converted.stdout).api_version)
    assert 0 == v2.code, v2.stderr
