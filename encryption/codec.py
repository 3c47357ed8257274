"""The AES-GCM payload codec: every payload a client or worker writes is encrypted, with its key id.

Decoding passes through what is not encrypted — the committed replay histories and a raw
`temporal workflow signal` are plaintext, and the workflow judges those itself. What is
encrypted but cannot be decrypted (an unknown key id, a tampered ciphertext) is either an
error (`strict`: the CLI says which key it lacks) or kept as it is, marked with the reason
(the worker: an exception there would fail every workflow task of the run and wedge it, so an
undecryptable signal reaches its handler as a raw value and is refused by name, and the codec
server hands back what it can decode of a history).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from contracts.encryption import (
    CIPHER,
    CIPHER_METADATA,
    ENCODING,
    ERROR_METADATA,
    KEY_ID_METADATA,
    NONCE_BYTES,
    associated_data,
)
from contracts.failures import ExitCode, OpsctlError
from encryption.keys import KEY_ID_ENV, KEYS_ENV, KEYS_FILE_ENV, EncryptionKeys

_ENCODING = ENCODING.encode()
log = logging.getLogger("opsctl.encryption")


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


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == _ENCODING


class EncryptionCodec(PayloadCodec):
    """Encrypts with `keys.encrypt_with`, decrypts with any key of the ring.

    Without keys nothing is encrypted, and an encrypted payload is one this codec cannot read:
    the CLI says so instead of failing on an unknown encoding.
    """

    def __init__(self, keys: EncryptionKeys | None, *, strict: bool = True) -> None:
        self.keys = keys
        self.strict = strict
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()} if keys else {}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if self.keys is None:
            return payload
        key_id = self.keys.encrypt_with
        nonce = secrets.token_bytes(NONCE_BYTES)  # random per payload: never reused under one key
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), associated_data(key_id))
        return Payload(
            metadata={"encoding": _ENCODING, KEY_ID_METADATA: key_id.encode(), CIPHER_METADATA: CIPHER.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if not is_encrypted(payload):
            if ERROR_METADATA not in payload.metadata:
                return payload
            plain = Payload()  # only this codec may say why a payload stayed encrypted: a sender may not
            plain.CopyFrom(payload)
            del plain.metadata[ERROR_METADATA]
            return plain
        try:
            return self._open(payload)
        except DecryptionError as exc:
            if self.strict:
                raise
            log.warning("kept a payload encrypted: %s", exc.reason)
            kept = Payload()
            kept.CopyFrom(payload)
            kept.metadata[ERROR_METADATA] = exc.reason.encode()
            return kept

    def _open(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        shown = repr(key_id if len(key_id) <= 64 else f"{key_id[:63]}…")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = f"it has {', '.join(self._ciphers)}" if self._ciphers else "no keys are configured"
            raise DecryptionError(f"key id {shown} is not in this keyring ({known})")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, sealed, associated_data(key_id))
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce and a tag
            raise DecryptionError(
                f"key id {shown}: the ciphertext fails authentication (tampered, or sealed by another key of that id)"
            ) from None
        original = Payload()
        try:
            original.ParseFromString(plaintext)
        except DecodeError:
            raise DecryptionError(
                f"a payload under key id {shown} decrypts to something that is not a payload"
            ) from None
        return original


def with_encryption(converter: DataConverter, keys: EncryptionKeys | None, *, strict: bool) -> DataConverter:
    """`converter` with the codec; with keys, failure messages and stack traces are encrypted too
    (they are payloads then, in `encoded_attributes`): a failure can quote a request's fields."""
    failures = DefaultFailureConverterWithEncodedAttributes if keys else converter.failure_converter_class
    codec = EncryptionCodec(keys, strict=strict)
    return dataclasses.replace(converter, payload_codec=codec, failure_converter_class=failures)
