"""Who is calling and where Temporal is: flags, then environment, then config file, then defaults.

Config file: $OPSCTL_CONFIG or ~/.config/opsctl/config.toml, with optional keys
`user`, `temporal_address`, `namespace`, `task_queue`, `state_dir`, `ui_url`, `policy_file`.
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

    def web_ui(self, workflow_id: str) -> str:
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows/{workflow_id}"

    def keyring(self) -> Keyring:
        """Your keys first (`opsctl keys init`), then the embedded stack's demo identities."""
        from client.keys import Keyring, user_keys_dir  # signing imports cryptography: only when signing

        return Keyring([user_keys_dir(), self.state_dir / "keys"])


def load_config(as_user: str | None = None, state_dir: str | None = None) -> Config:
    file = _config_file()
    env = os.environ.get

    def pick(flag: str | None, env_name: str, key: str, default: str) -> str:
        return flag or env(env_name) or str(file.get(key) or "") or default

    state = Path(pick(state_dir, "OPSCTL_STATE_DIR", "state_dir", ".opsctl"))
    stack = _stack_record(state)
    stack_policy = state / "policy.yaml"
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
        policy_file=pick(
            None, "OPSCTL_POLICY_FILE", "policy_file", str(stack_policy) if stack and stack_policy.exists() else ""
        ),
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
