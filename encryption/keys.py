"""Payload encryption keys: a keyring of key id → 32-byte AES key, and which id encrypts.

One scheme for the worker, the CLI and the codec server. A keyring is written as entries
`KEY_ID:BASE64` (the key's 32 bytes, standard base64), one per line or separated by commas;
blank lines and `#` comments are ignored. It comes from a keys file (`OPSCTL_CODEC_KEYS_FILE`,
or `codec.keys_file` in the worker settings) or inline from `OPSCTL_CODEC_KEYS`, never from a
settings file. The encrypting key is `OPSCTL_CODEC_KEY_ID` (or `codec.key_id`), by default the
last entry. Rotating is adding a new entry and encrypting with it: every listed id still
decrypts, so runs started under the old key go on. No message here ever shows key material.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contracts.encryption import KEY_BYTES
from contracts.failures import ExitCode, OpsctlError

KEYS_FILE_ENV = "OPSCTL_CODEC_KEYS_FILE"
KEYS_ENV = "OPSCTL_CODEC_KEYS"
KEY_ID_ENV = "OPSCTL_CODEC_KEY_ID"
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HINT = "see README.md, 'Payload encryption': KEY_ID:BASE64 entries, each key 32 random bytes"


class KeysError(OpsctlError):
    """The keyring cannot be read or is malformed (exit 2); the message names where, never a key."""

    def __init__(self, message: str) -> None:
        super().__init__(ExitCode.INVALID_INPUT, message, HINT)


@dataclass(frozen=True)
class EncryptionKeys:
    """Every key that decrypts, and the id of the one that encrypts."""

    keys: Mapping[str, bytes] = field(repr=False)
    encrypt_with: str
    source: str = ""  # where they came from, for messages

    def __post_init__(self) -> None:
        if self.encrypt_with not in self.keys:
            known = ", ".join(self.keys) or "none"
            raise KeysError(
                f"the encrypting key id {self.encrypt_with!r} is not in the keyring {self.source} (it has: {known})"
            )

    @property
    def key_ids(self) -> list[str]:
        return list(self.keys)


def parse_keys(text: str, *, encrypt_with: str = "", source: str = "") -> EncryptionKeys:
    """`KEY_ID:BASE64` entries → a keyring; `encrypt_with` defaults to the last entry."""
    keys: dict[str, bytes] = {}
    entries = [entry.strip() for line in text.splitlines() for entry in line.split("#", 1)[0].split(",")]
    for number, entry in enumerate((entry for entry in entries if entry), 1):
        key_id, colon, encoded = entry.partition(":")
        key_id = key_id.strip()
        where = f"entry {number} of {source or 'the keyring'}"
        if not colon:
            raise KeysError(f"{where} is not KEY_ID:BASE64")
        if not KEY_ID_PATTERN.fullmatch(key_id):
            raise KeysError(f"{where}: a key id is 1-64 letters, digits, '.', '_' or '-', starting with one")
        if key_id in keys:
            raise KeysError(f"{where}: key id {key_id!r} is listed twice")
        keys[key_id] = _key_bytes(encoded.strip(), f"{where} (key id {key_id!r})")
    if not keys:
        raise KeysError(f"{source or 'the keyring'} lists no key")
    return EncryptionKeys(keys, encrypt_with or list(keys)[-1], source)


def _key_bytes(encoded: str, where: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeysError(f"{where}: the key is not base64") from None
    if len(key) != KEY_BYTES:
        raise KeysError(f"{where}: the key is {len(key)} bytes, AES-256 needs {KEY_BYTES}")
    return key


def load_keys(keys_file: str = "", key_id: str = "", environ: Mapping[str, str] = os.environ) -> EncryptionKeys | None:
    """The keyring in force: the environment's, else `keys_file` (the settings' or the config's).

    None when no keys are configured anywhere: encryption is off.
    """
    inline, env_file = environ.get(KEYS_ENV, ""), environ.get(KEYS_FILE_ENV, "")
    if inline and env_file:
        raise KeysError(f"both {KEYS_ENV} and {KEYS_FILE_ENV} are set: set one")
    encrypt_with = environ.get(KEY_ID_ENV, "") or key_id
    if inline:
        return parse_keys(inline, encrypt_with=encrypt_with, source=f"${KEYS_ENV}")
    path = env_file or keys_file
    if not path:
        return None
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysError(f"the keys file {path} is unreadable: {type(exc).__name__}") from None
    return parse_keys(text, encrypt_with=encrypt_with, source=str(path))


def new_key_entry(key_id: str) -> str:
    """One keyring line with a fresh random key: what `opsctl dev up` writes, and what you append to rotate."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeysError(f"{key_id!r} is not a key id: 1-64 letters, digits, '.', '_' or '-'")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}\n"


def write_secret_file(path: Path, text: str) -> None:
    """Create a file only its owner can read, never replacing one (a key lost is history lost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
