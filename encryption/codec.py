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
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from contracts.encryption import ERROR_METADATA
from encryption.keys import EncryptionKeys
from encryption.sealing import DecryptionError, Seals, is_sealed

__all__ = ["DecryptionError", "EncryptionCodec", "is_encrypted", "with_encryption"]

log = logging.getLogger("opsctl.encryption")


def is_encrypted(payload: Payload) -> bool:
    return is_sealed(payload.metadata)


def _payload(plaintext: bytes) -> Payload:
    """A sealed payload's plaintext: the original payload, serialized."""
    original = Payload()
    try:
        original.ParseFromString(plaintext)
    except DecodeError as exc:
        raise ValueError(str(exc)) from None
    return original


class EncryptionCodec(PayloadCodec):
    """Encrypts with `keys.encrypt_with`, decrypts with any key of the ring.

    Without keys nothing is encrypted, and an encrypted payload is one this codec cannot read:
    the CLI says so instead of failing on an unknown encoding.
    """

    def __init__(self, keys: EncryptionKeys | None, *, strict: bool = True) -> None:
        self.keys = keys
        self.strict = strict
        self._seals = Seals(keys)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if self.keys is None:
            return payload
        metadata, data = self._seals.seal(payload.SerializeToString())
        return Payload(metadata=metadata, data=data)

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
        return self._seals.open(payload.metadata, payload.data, _payload)


def with_encryption(converter: DataConverter, keys: EncryptionKeys | None, *, strict: bool) -> DataConverter:
    """`converter` with the codec; with keys, failure messages and stack traces are encrypted too
    (they are payloads then, in `encoded_attributes`): a failure can quote a request's fields."""
    failures = DefaultFailureConverterWithEncodedAttributes if keys else converter.failure_converter_class
    codec = EncryptionCodec(keys, strict=strict)
    return dataclasses.replace(converter, payload_codec=codec, failure_converter_class=failures)
