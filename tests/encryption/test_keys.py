"""Keyrings: one written form for the worker, the CLI and the codec server; no message shows a key."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from encryption.keys import KeysError, load_keys, new_key_entry, parse_keys, write_secret_file

KEY = base64.b64encode(bytes(range(32))).decode()


def test_entries_by_line_or_comma_with_comments_and_the_last_one_encrypting() -> None:
    keys = parse_keys(f"# rotated 2026-12\nold:{KEY}\n\nnew:{KEY}  # current\n")
    assert ["old", "new"] == keys.key_ids
    assert "new" == keys.encrypt_with
    assert ["a", "b"] == parse_keys(f"a:{KEY},b:{KEY}").key_ids


def test_the_encrypting_key_can_be_named_and_must_be_in_the_ring() -> None:
    assert "old" == parse_keys(f"old:{KEY}\nnew:{KEY}", encrypt_with="old").encrypt_with
    with pytest.raises(KeysError, match="'gone' is not in the keyring"):
        parse_keys(f"old:{KEY}", encrypt_with="gone")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "lists no key"),
        ("# only a comment", "lists no key"),
        (KEY, "is not KEY_ID:BASE64"),
        (f"bad id:{KEY}", "a key id is"),
        (f"k:{KEY}\nk:{KEY}", "listed twice"),
        ("k:not base64!", "not base64"),
        (f"k:{base64.b64encode(bytes(16)).decode()}", "16 bytes, AES-256 needs 32"),
    ],
)
def test_a_malformed_keyring_is_refused_saying_what_is_wrong_and_never_showing_a_key(text: str, problem: str) -> None:
    with pytest.raises(KeysError, match=problem) as raised:
        parse_keys(text, source="keys.txt")
    assert KEY not in raised.value.message
    assert 2 == raised.value.exit_code
    assert raised.value.hint


def test_the_environment_beats_the_settings_file(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text(f"from-file:{KEY}\n")
    assert ["from-file"] == load_keys(str(file), environ={}).key_ids  # type: ignore[union-attr]
    inline = {"OPSCTL_CODEC_KEYS": f"a:{KEY},b:{KEY}", "OPSCTL_CODEC_KEY_ID": "a"}
    from_env = load_keys(str(file), environ=inline)
    assert (["a", "b"], "a") == (from_env.key_ids, from_env.encrypt_with)  # type: ignore[union-attr]
    other = tmp_path / "other"
    other.write_text(f"other:{KEY}\n")
    assert ["other"] == load_keys(str(file), environ={"OPSCTL_CODEC_KEYS_FILE": str(other)}).key_ids  # type: ignore[union-attr]


def test_no_keys_anywhere_is_encryption_off_and_two_sources_in_the_environment_are_an_error(tmp_path: Path) -> None:
    assert load_keys("", environ={}) is None
    with pytest.raises(KeysError, match="set one"):
        load_keys(environ={"OPSCTL_CODEC_KEYS": f"a:{KEY}", "OPSCTL_CODEC_KEYS_FILE": "/x"})
    with pytest.raises(KeysError, match="unreadable"):
        load_keys(str(tmp_path / "missing"), environ={})


def test_a_new_key_entry_is_32_random_bytes_and_a_secret_file_is_its_owners_only(tmp_path: Path) -> None:
    first, second = new_key_entry("k1"), new_key_entry("k1")
    assert first != second
    assert 32 == len(parse_keys(first).keys["k1"])
    path = tmp_path / "state" / "codec-keys"
    write_secret_file(path, first)
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    with pytest.raises(FileExistsError):  # never replaced: a lost key is a history nobody can read
        write_secret_file(path, second)


def test_a_worker_whose_keys_file_is_malformed_refuses_to_start_saying_why(tmp_path: Path) -> None:
    """Before connecting to anything: a worker without its keys could not read its runs."""
    import json
    import subprocess
    import sys

    keys = tmp_path / "codec-keys"
    keys.write_text(f"dev-1:{base64.b64encode(bytes(24)).decode()}\n")
    settings = tmp_path / "worker.json"
    settings.write_text(json.dumps({"codec": {"keys_file": str(keys)}}))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ran = subprocess.run(
        [sys.executable, "-m", "worker", "--settings", str(settings)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert 1 == ran.returncode
    assert f"opsctl worker: entry 1 of {keys} (key id 'dev-1'): the key is 24 bytes, AES-256 needs 32" in ran.stderr
    assert "Traceback" not in ran.stderr
