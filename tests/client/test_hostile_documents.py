"""Any bytes given as a document are refused cleanly: exit 2 or 3 naming the problem, never a traceback.

`opsctl validate` runs in-process (the same `client.main.run` the console script calls), so
thousands of inputs cost seconds; the full fuzzing run is `make chaos`.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.devstack import PIECES
from client.main import run
from contracts.request import MAX_DOCUMENT_BYTES
from tests.identities import KEYS_DIR, POLICY_FILE

GOOD = (
    "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata:\n  environment: dev\n"
    "spec:\n  database: app\n  role: app_user\n  secretId: demo/app_user\n"
)


@pytest.fixture(autouse=True)
def offline_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {
        "OPSCTL_USER": "alice",
        "OPSCTL_CONFIG": "",  # no user file
        "OPSCTL_STATE_DIR": str(tmp_path / "state"),
        "OPSCTL_KEYS_DIR": str(KEYS_DIR),
        "OPSCTL_POLICY_FILE": str(POLICY_FILE),
    }.items():
        monkeypatch.setenv(name, value)


def validate(tmp_path: Path, data: bytes) -> tuple[int, str]:
    path = tmp_path / "doc.yaml"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    code = run(["validate", "-f", str(path)], stdout=out, stderr=err)
    return code, err.getvalue()


HOSTILE = {
    "binary": bytes(range(256)) * 4,
    "invalid utf-8": GOOD.encode().replace(b"app_user", b"app_\xc3\x28user"),
    "utf-16": GOOD.encode("utf-16"),
    "nul": GOOD.encode().replace(b"demo", b"de\x00mo"),
    "huge": b"# " + b"x" * (MAX_DOCUMENT_BYTES + 10),
    "deep lists": b"spec: " + b"[" * 5000 + b"]" * 5000,
    "deep mappings": b"".join(b"  " * n + b"k:\n" for n in range(200)),
    "python tag": b"!!python/object/apply:os.system ['echo pwned']\n",
    "merge key": (GOOD + "  <<: {role: postgres}\n").encode(),
    "integer key": (GOOD + "  1: x\n").encode(),
    "list key": (GOOD + "  ? [a, b]\n  : x\n").encode(),
    "aliases": b"a: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
    "duplicate key": (GOOD + "  role: postgres\n").encode(),
    "not a mapping": b"- just\n- a list\n",
    "empty": b"",
    "timestamp spec value": GOOD.replace("demo/app_user", "2026-12-01").encode(),
    "nan": GOOD.replace("environment: dev", "environment: .nan").encode(),
    # Found by `python -m tests.chaos.fuzz`: values PyYAML matches, then cannot convert (each was exit 1).
    "impossible date": GOOD.replace("demo/app_user", "2026-02-30").encode(),
    "impossible time zone": GOOD.replace("demo/app_user", "2026-01-01T00:00:00+99:99").encode(),
    "int past the digit limit": GOOD.replace("demo/app_user", "9" * 5000).encode(),
    "huge hex apiVersion": GOOD.replace("opsctl/v1", "0x" + "f" * 4000).encode(),
    "bool tag on a word": GOOD.replace("demo/app_user", "!!bool maybe").encode(),
    "timestamp tag on a word": GOOD.replace("demo/app_user", "!!timestamp x").encode(),
    "map tag on a list": GOOD.replace("demo/app_user", "!!map [1]").encode(),
    "escape past unicode": GOOD.replace("demo/app_user", '"\\U00110000"').encode(),
    "lone surrogate escape": GOOD.replace("environment: dev", 'environment: dev\n  labels: {a: "\\ud800"}').encode(),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_document_is_refused_with_exit_2_or_3_and_a_message(tmp_path: Path, name: str) -> None:
    code, err = validate(tmp_path, HOSTILE[name])
    assert code in (2, 3), err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    assert "bug" not in err


def test_a_file_name_that_is_not_utf8_is_printed_escaped(tmp_path: Path) -> None:
    """A name that is not UTF-8 comes surrogate-escaped; a strict UTF-8 stdout (en_US.UTF-8) cannot fail on it."""
    path = tmp_path / os.fsdecode(b"doc\xff.yaml")
    path.write_bytes(GOOD.encode())
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True)
    code = run(["validate", "-f", str(path)], stdout=stdout, stderr=io.StringIO())
    assert 0 == code
    assert "doc\\udcff.yaml: valid RotateDbCredential for dev" in out.getvalue().decode()


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    assert (0, "") == validate(tmp_path, b"\xef\xbb\xbf" + GOOD.encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048) | st.text(max_size=2048).map(str.encode))
def test_any_bytes_at_all_end_in_an_allowed_exit_code(tmp_path: Path, data: bytes) -> None:
    code, err = validate(tmp_path, data)
    assert code in (0, 2, 3), err


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(GOOD) - 1), st.sampled_from(list(":{}[]-&*!|>'\"#%@`,?\n\t \\")))
def test_a_good_document_with_one_character_changed_ends_in_an_allowed_exit_code(
    tmp_path: Path, position: int, char: str
) -> None:
    mutated = GOOD[:position] + char + GOOD[position + 1 :]
    code, err = validate(tmp_path, mutated.encode())
    assert code in (0, 2, 3), err


@pytest.mark.parametrize(
    "content", [b"\xff\xfe not utf-8", b"user = [", b"user = 1\nuser = 2\n"], ids=["binary", "broken", "duplicate"]
)
def test_a_broken_config_file_is_exit_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    monkeypatch.setenv("OPSCTL_CONFIG", str(config))
    code, err = validate(tmp_path, GOOD.encode())
    assert 2 == code
    assert f"config file {config} is unreadable" in err


def test_a_garbled_stack_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "stack.json").write_bytes(b"[1, 2]")
    assert 0 == validate(tmp_path, GOOD.encode())[0]


def opsctl(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "record",
    [
        b"[1, 2]",
        b'{"pieces": {"bogus": {"2631": {}}}}',
        b'{"ports": {"temporal": "x"}}',
        b'{"pieces": {"temporal": {"name": "temporal", "address": "127.0.0.1:99999999", "pid": 1099511627776}}}',
    ],
    ids=["a list", "unknown fields", "a port that is not a number", "a pid and a port past any"],
)
def test_a_stack_record_opsctl_did_not_write_means_nothing_is_running(tmp_path: Path, record: bytes) -> None:
    """`dev status` on a garbled stack.json lists every piece as down (exit 4, as documented), never a crash."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "stack.json").write_bytes(record)
    code, out, err = opsctl("dev", "status", "--format", "json")
    assert (4, "") == (code, err)
    assert [False] * len(PIECES) == [piece["running"] for piece in json.loads(out)["pieces"]]


def test_a_state_folder_name_too_long_for_the_file_system_holds_no_key() -> None:
    code, _, err = opsctl("keys", "show", "--as", "frank", "--state-dir", "x" * 300)
    assert 2 == code
    assert err.startswith("error: frank has no key in"), err


def test_keys_init_where_a_file_is_in_the_way_is_exit_2_naming_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keys").write_text("a file, not a folder")
    monkeypatch.setenv("OPSCTL_KEYS_DIR", str(tmp_path / "keys"))
    code, _, err = opsctl("keys", "init")
    assert 2 == code
    assert err.startswith(f"error: cannot write a key in {tmp_path / 'keys'}: File exists"), err


def test_an_integer_too_big_to_print_is_refused_where_it_stands(tmp_path: Path) -> None:
    """0xfff… of 4,000 hex digits is read by YAML but cannot be printed (make chaos's fuzzing found it
    escaping `run` as a ValueError): it is exit 2 naming its size."""
    code, err = validate(tmp_path, GOOD.replace("app_user\n", "app_user\n  labels: 0x" + "f" * 4000 + "\n").encode())
    assert 2 == code
    assert "an integer of 16,000 bits is larger than any field takes" in err


def test_a_requester_longer_than_a_run_may_carry_is_refused_before_submitting(tmp_path: Path) -> None:
    """`--as` fills the requester after the document's validation: its limit is checked there too."""
    path = tmp_path / "doc.yaml"
    path.write_bytes(GOOD.encode())
    err = io.StringIO()
    code = run(["--as", "a" * 200, "validate", "-f", str(path)], stdout=io.StringIO(), stderr=err)
    assert 3 == code, err.getvalue()
    assert "metadata.requester" in err.getvalue()
    assert "a requester has at most 128" in err.getvalue()
