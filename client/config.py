"""Who is calling and where Temporal is: flags, then environment, then config file, then defaults.

Config file: $OPSCTL_CONFIG or ~/.config/opsctl/config.toml, with optional keys
`user`, `temporal_address`, `namespace`, `task_queue`, `state_dir`, `ui_url`, `policy_file`,
`codec_keys_file`, `codec_key_id`, `codec_token_file` (payload encryption: files referenced,
never keys or tokens written into the config).
"""

from __future__ import annotations

import getpass
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.failures import ExitCode, OpsctlError

if TYPE_CHECKING:
    from client.keys import Keyring
    from encryption.keys import EncryptionKeys

# What `opsctl dev up` writes into its state folder (mode 0600) and the CLI then finds there.
STACK_CODEC_KEYS = "codec-keys"
STACK_CODEC_TOKEN = "codec-token"  # noqa: S105 - a file name in the state folder, not a token


def _config_file() -> dict[str, Any]:
    path = Path(os.environ.get("OPSCTL_CONFIG", "~/.config/opsctl/config.toml")).expanduser()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise OpsctlError(ExitCode.INVALID_INPUT, f"config file {path} is unreadable: {exc}") from exc


@dataclass(frozen=True)
class Config:
    user: str
    state_dir: Path
    temporal_address: str
    namespace: str
    task_queue: str
    ui_url: str
    policy_file: str = ""  # the policy file the workers use, when this machine has it ('' : built-in)
    codec_keys_file: str = ""  # payload encryption keys ('': none, unless $OPSCTL_CODEC_KEYS has them)
    codec_key_id: str = ""  # the id that encrypts ('': the last key of the file)
    codec_token_file: str = ""  # the codec server's bearer token

    def web_ui(self, workflow_id: str) -> str:
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows/{workflow_id}"

    def keyring(self) -> Keyring:
        """Your keys first (`opsctl keys init`), then the embedded stack's demo identities."""
        from client.keys import Keyring, user_keys_dir  # signing imports cryptography: only when signing

        return Keyring([user_keys_dir(), self.state_dir / "keys"])

    def encryption_keys(self) -> EncryptionKeys | None:
        """The payload encryption keyring, or None: encryption off (raises `KeysError` if malformed)."""
        from encryption.keys import load_keys  # cryptography: only for commands that talk to Temporal

        return load_keys(self.codec_keys_file, self.codec_key_id)


def load_config(as_user: str | None = None, state_dir: str | None = None) -> Config:
    file = _config_file()
    env = os.environ.get

    def pick(flag: str | None, env_name: str, key: str, default: str) -> str:
        return flag or env(env_name) or str(file.get(key) or "") or default

    state = Path(pick(state_dir, "OPSCTL_STATE_DIR", "state_dir", ".opsctl"))
    stack = _stack_record(state)

    def stack_file(name: str) -> str:
        """A file `opsctl dev up` wrote into the state folder, used when nothing else is configured."""
        return str(state / name) if stack and (state / name).exists() else ""

    recorded = stack.get("ports")
    ports: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    temporal_port, ui_port = ports.get("temporal"), ports.get("ui")
    return Config(
        user=pick(as_user, "OPSCTL_USER", "user", _login_name()),
        state_dir=state,
        temporal_address=pick(
            None,
            "OPSCTL_TEMPORAL_ADDRESS",
            "temporal_address",
            f"127.0.0.1:{temporal_port}" if temporal_port else "127.0.0.1:7233",
        ),
        namespace=pick(None, "OPSCTL_NAMESPACE", "namespace", "default"),
        task_queue=pick(None, "OPSCTL_TASK_QUEUE", "task_queue", "opsctl"),
        ui_url=pick(
            None, "OPSCTL_UI_URL", "ui_url", f"http://127.0.0.1:{ui_port}" if ui_port else "http://127.0.0.1:8233"
        ),
        policy_file=pick(None, "OPSCTL_POLICY_FILE", "policy_file", stack_file("policy.yaml")),
        codec_keys_file=pick(None, "OPSCTL_CODEC_KEYS_FILE", "codec_keys_file", stack_file(STACK_CODEC_KEYS)),
        codec_key_id=pick(None, "OPSCTL_CODEC_KEY_ID", "codec_key_id", ""),
        codec_token_file=pick(None, "OPSCTL_CODEC_TOKEN_FILE", "codec_token_file", stack_file(STACK_CODEC_TOKEN)),
    )


def _stack_record(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / "stack.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
