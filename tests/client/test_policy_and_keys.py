"""The CLI's side of the gate: keys, policies, break-glass — as a subprocess, against the real stack."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.client.conftest import opsctl
from tests.client.test_cli import document, seeded  # noqa: F401 - `seeded` is a fixture

ROOT = Path(__file__).resolve().parents[2]


async def test_keys_init_writes_a_private_key_only_you_can_read_and_show_prints_its_public_key(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "OPSCTL_KEYS_DIR": str(tmp_path / "keys"), "OPSCTL_USER": "frank"}
    created = await opsctl(env, "keys", "init", "--format", "json")
    assert 0 == created.code, created.stderr
    key = Path(created.json()["private_key_file"])
    assert 0o600 == stat.S_IMODE(key.stat().st_mode)
    assert 0o700 == stat.S_IMODE(key.parent.stat().st_mode)
    shown = await opsctl(env, "keys", "show")
    assert 0 == shown.code
    assert created.json()["public_key"] in shown.stdout
    assert "identities:\n  frank:\n    publicKey: ed25519:" in shown.stdout
    again = await opsctl(env, "keys", "init")
    assert 2 == again.code
    assert "already has a key" in again.stderr
    nobody = await opsctl({**env, "OPSCTL_USER": "nobody"}, "keys", "show")
    assert 2 == nobody.code
    assert "opsctl keys init" in nobody.stderr


async def test_policy_show_names_its_source_and_check_validates_a_file_offline(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    shown = await opsctl(cli_env, "policy", "show", "prod", "--format", "json")
    assert 0 == shown.code, shown.stderr
    assert cli_env["OPSCTL_POLICY_FILE"] == shown.json()["source"]
    assert f"a worker on task queue {cli_env['OPSCTL_TASK_QUEUE']}" == shown.json()["answered_by"]
    assert shown.json()["policies"]["prod"]["requireSignatures"] is True
    text = await opsctl(cli_env, "policy", "show", "staging")
    assert "break-glass   allowed" in text.stdout
    unknown = await opsctl(cli_env, "policy", "show", "qa")
    assert 2 == unknown.code
    example = await opsctl(cli_env, "policy", "check", "-f", str(ROOT / "examples" / "policies" / "production.yaml"))
    assert 0 == example.code, example.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_bytes(b"environments:\n  prod: {requiredApprovals: 1, quorum: {sre: 1}}\n")
    refused = await opsctl(cli_env, "policy", "check", "-f", str(broken))
    assert 2 == refused.code
    assert "environments.prod.quorum: unknown group 'sre'" in refused.stderr
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert 2 == (await opsctl(cli_env, "policy", "check", "-f", str(binary))).code
    builtin = await opsctl({**cli_env, "OPSCTL_POLICY_FILE": ""}, "policy", "show", "--local", "--format", "json")
    assert ("built-in", "this machine's copy") == (builtin.json()["source"], builtin.json()["answered_by"])
    nobody = await opsctl({**cli_env, "OPSCTL_TASK_QUEUE": "nobody-polls-this"}, "policy", "show", "prod")
    assert 0 == nobody.code
    assert "this machine's copy (no worker on task queue nobody-polls-this answered within 5 s)" in nobody.stdout


async def test_emergency_needs_a_reason_and_is_refused_where_the_policy_forbids_it(
    cli_env: dict[str, str],
    tmp_path: Path,
    seeded: tuple[str, str],  # noqa: F811
) -> None:
    path = document(tmp_path, *seeded)
    no_reason = await opsctl(cli_env, "apply", "-f", path, "--emergency")
    assert 2 == no_reason.code
    assert "--emergency needs --reason" in no_reason.stderr
    stray = await opsctl(cli_env, "apply", "-f", path, "--reason", "why not")
    assert 2 == stray.code
    refused = await opsctl(cli_env, "apply", "-f", path, "--emergency", "--reason", "outage", "--format", "json")
    assert 6 == refused.code, refused.stdout + refused.stderr
    assert "break-glass is not allowed in prod" in refused.json()["failure"]["message"]
    assert [] == refused.json()["changed"]


async def test_an_emergency_in_staging_applies_at_once_and_is_listed_until_the_quorum_reviews_it(
    cli_env: dict[str, str],
    tmp_path: Path,
    seeded: tuple[str, str],  # noqa: F811
) -> None:
    path = document(tmp_path, *seeded, environment="staging")
    applied = await opsctl(
        cli_env, "apply", "-f", path, "--emergency", "--reason", "leaked password", "--wait", "--format", "json"
    )
    assert 0 == applied.code, applied.stdout + applied.stderr
    run = applied.json()
    assert ("awaiting_review", "leaked password") == (run["phase"], run["emergency"])
    assert 3 == len(run["changed"])
    listed = await opsctl(cli_env, "list", "--phase", "awaiting_review", "--format", "json")
    assert run["workflow_id"] in [row["run_id"] for row in listed.json()["runs"]]
    status = await opsctl(cli_env, "status", run["workflow_id"])
    assert "Emergency   applied without prior approval (break-glass): leaked password" in status.stdout
    reviewed = await opsctl(cli_env, "approve", run["workflow_id"], "--plan-hash", run["plan_hash"], "--as", "bob")
    assert 0 == reviewed.code, reviewed.stdout
    final = await opsctl(cli_env, "result", run["workflow_id"], "--wait", "--timeout", "30", "--format", "json")
    assert "succeeded" == final.json()["phase"]
    assert "emergency apply reviewed by bob" in final.json()["warnings"]
