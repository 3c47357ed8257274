"""The CLI with payload encryption: every command works with the keys, and without them says which key is missing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from client.devstack import Stack
from encryption.keys import new_key_entry
from tests.client.conftest import opsctl
from tests.client.test_cli import document, seeded  # noqa: F401 - `seeded` is a fixture used below


@pytest.fixture
async def encrypted_run(
    encrypted_cli_env: dict[str, str],
    tmp_path: Path,
    seeded: tuple[str, str],  # noqa: F811 - the fixture
) -> tuple[str, str]:
    """A prod rotation applied by `opsctl apply` with the keys: (run id, plan hash), awaiting approval."""
    applied = await opsctl(encrypted_cli_env, "apply", "-f", document(tmp_path, *seeded), "--format", "json")
    assert 7 == applied.code, applied.stderr
    return applied.json()["workflow_id"], applied.json()["plan_hash"]


async def test_apply_status_approve_result_and_list_work_on_encrypted_runs(
    encrypted_cli_env: dict[str, str], encrypted_run: tuple[str, str]
) -> None:
    run_id, plan_hash = encrypted_run
    status = await opsctl(encrypted_cli_env, "status", run_id, "--format", "json")
    assert (7, "awaiting_approval") == (status.code, status.json()["phase"])
    approved = await opsctl(encrypted_cli_env, "approve", run_id, "--plan-hash", plan_hash, "--as", "bob")
    assert 0 == approved.code, approved.stderr
    result = await opsctl(encrypted_cli_env, "result", run_id, "--wait", "--timeout", "60", "--format", "json")
    assert (0, "succeeded") == (result.code, result.json()["phase"]), result.stderr
    listed = await opsctl(encrypted_cli_env, "list", "--env", "prod", "--format", "json")
    assert run_id in [row["run_id"] for row in listed.json()["runs"]]


async def test_without_the_key_a_command_exits_2_naming_the_key_id_and_how_to_configure_it(
    encrypted_cli_env: dict[str, str], encrypted_run: tuple[str, str]
) -> None:
    run_id, _ = encrypted_run
    no_keys = {name: value for name, value in encrypted_cli_env.items() if name != "OPSCTL_CODEC_KEYS_FILE"}
    other_keys = {**no_keys, "OPSCTL_CODEC_KEYS": new_key_entry("not-this-one").strip()}

    for env, why in ((no_keys, "no keys are configured"), (other_keys, "it has not-this-one")):
        status = await opsctl(env, "status", run_id, "--format", "json")
        assert 2 == status.code, status.stderr
        error = status.json()["error"]
        assert f"cannot decrypt a payload: key id 'dev-1' is not in this keyring ({why})" == error["message"]
        assert "OPSCTL_CODEC_KEYS_FILE" in error["hint"]
        assert "Traceback" not in status.stderr
    # The list reads search attributes only, which stay plain: it needs no key.
    listed = await opsctl(no_keys, "list", "--env", "prod", "--format", "json")
    assert run_id in [row["run_id"] for row in listed.json()["runs"]]


async def test_a_malformed_keyring_exits_2_without_showing_a_key(cli_env: dict[str, str], tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("k1:c2hvcnQ=\n")  # 5 bytes, not 32
    ran = await opsctl({**cli_env, "OPSCTL_CODEC_KEYS_FILE": str(keys)}, "status", "any-run")
    assert 2 == ran.code
    assert f"error: entry 1 of {keys} (key id 'k1'): the key is 5 bytes, AES-256 needs 32" in ran.stderr
    assert "c2hvcnQ" not in ran.stderr


async def test_the_codec_server_refuses_to_start_without_keys_or_without_a_token(
    cli_env: dict[str, str], stack: Stack
) -> None:
    without_keys = await opsctl(cli_env, "codec-server", "--port", "1")
    assert 2 == without_keys.code
    assert "needs the encryption keys" in without_keys.stderr
    keyed = {**cli_env, "OPSCTL_CODEC_KEYS_FILE": str(stack.codec_keys_path)}
    without_token = await opsctl(keyed, "codec-server", "--port", "1")
    assert 2 == without_token.code
    assert "needs a token, and none is configured" in without_token.stderr


async def test_dev_status_lists_the_codec_server_and_the_stack_s_secrets_are_its_owners_only_and_kept(
    cli_env: dict[str, str], stack: Stack
) -> None:
    ran = await opsctl({**cli_env, "OPSCTL_STATE_DIR": str(stack.state_dir)}, "dev", "status", "--format", "json")
    codec = next(row for row in ran.json()["pieces"] if row["piece"] == "codec")
    assert (True, stack.codec_url, str(stack.codec_keys_path)) == (
        codec["running"],
        codec["endpoint"],
        codec["keys_file"],
    )
    assert [0o600, 0o600] == [
        stat.S_IMODE(path.stat().st_mode) for path in (stack.codec_keys_path, stack.codec_token_path)
    ]
    made = (stack.codec_keys_path.read_text(), stack.codec_token())
    again = Stack(stack.state_dir)  # what the next `opsctl dev up` sees
    assert made == (again.codec_keys().read_text(), again.codec_token())
