"""AES-256-GCM under a key id: the one place payload bytes are sealed and opened.

The codec (`encryption.codec`, the SDK's payloads) and the CLI's HTTP reader (`client.payloads`,
payloads read as JSON, without the SDK) both go through `Seals`, so the cipher, the associated
data, the key-id lookup and every message about a payload that cannot be opened are written once.
Nothing here imports Temporal: what a sealed payload's plaintext is (a serialized `Payload`) is
for the caller to parse.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.encryption import CIPHER, CIPHER_METADATA, ENCODING, KEY_ID_METADATA, NONCE_BYTES, associated_data
from contracts.failures import ExitCode, OpsctlError
from encryption.keys import KEY_ID_ENV, KEYS_ENV, KEYS_FILE_ENV, EncryptionKeys

ENCODING_BYTES = ENCODING.encode()
T = TypeVar("T")


class DecryptionError(OpsctlError):
    """A payload this keyring cannot decrypt (exit 2): the message names the key id, never data."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            ExitCode.INVALID_INPUT,
            f"cannot decrypt a payload: {reason}",
            f"configure a keyring that holds that key id ({KEYS_FILE_ENV} or {KEYS_ENV}; "
            f"old ids stay listed after a rotation, {KEY_ID_ENV} picks the encrypting one)",
        )


def is_sealed(metadata: Mapping[str, bytes]) -> bool:
    """Does a payload with this metadata hold sealed bytes (`encoding: binary/encrypted`)?"""
    return metadata.get("encoding") == ENCODING_BYTES


class Seals:
    """Seals with `keys.encrypt_with`, opens with any key of the ring (none: nothing opens, and says so)."""

    def __init__(self, keys: EncryptionKeys | None) -> None:
        self.keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()} if keys else {}

    def seal(self, plaintext: bytes) -> tuple[dict[str, bytes], bytes]:
        """The metadata and data of the sealed payload (needs keys)."""
        assert self.keys is not None, "sealing needs keys"
        key_id = self.keys.encrypt_with
        nonce = secrets.token_bytes(NONCE_BYTES)  # random per payload: never reused under one key
        sealed = self._ciphers[key_id].encrypt(nonce, plaintext, associated_data(key_id))
        metadata = {"encoding": ENCODING_BYTES, KEY_ID_METADATA: key_id.encode(), CIPHER_METADATA: CIPHER.encode()}
        return metadata, nonce + sealed

    def open(self, metadata: Mapping[str, bytes], data: bytes, parse: Callable[[bytes], T]) -> T:
        """The sealed payload's plaintext, as `parse` reads it (a ValueError there: not a payload).

        Raises DecryptionError naming the key id: unknown to this ring, or a ciphertext that fails
        authentication, or a plaintext that is not what a sealed payload holds."""
        key_id = metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        shown = repr(key_id if len(key_id) <= 64 else f"{key_id[:63]}…")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = f"it has {', '.join(self._ciphers)}" if self._ciphers else "no keys are configured"
            raise DecryptionError(f"key id {shown} is not in this keyring ({known})")
        nonce, sealed = data[:NONCE_BYTES], data[NONCE_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, sealed, associated_data(key_id))
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce and a tag
            raise DecryptionError(
                f"key id {shown}: the ciphertext fails authentication (tampered, or sealed by another key of that id)"
            ) from None
        try:
            return parse(plaintext)
        except ValueError:
            raise DecryptionError(
                f"a payload under key id {shown} decrypts to something that is not a payload"
            ) from None
