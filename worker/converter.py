"""The worker's data converter: pydantic models as JSON, and untrusted input that never vanishes.

Signals and updates come from anyone who can reach the namespace (`temporal workflow
signal`, the Web UI's form). Their handlers take their arguments untyped and judge them
themselves, so a wrong shape is refused *and recorded*. The SDK decodes untyped arguments
before a handler runs, and drops the whole signal if that fails (bytes that are not
JSON, an unknown encoding). Here such a payload is handed on as a `RawValue` instead, for
the handler to refuse by name. Typed decoding (activity results, workflow input) is the
plain pydantic converter's.

With encryption keys every payload is encrypted (`encryption.codec`); the worker's codec keeps
a payload it cannot decrypt as it is, marked with the reason, so that too becomes a raw value
the handler refuses instead of an error that fails the run's every workflow task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter

from encryption.codec import with_encryption
from encryption.keys import EncryptionKeys


class UntrustedInputPayloadConverter(PydanticPayloadConverter):
    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[type] | None = None) -> list[Any]:
        if type_hints is not None:
            return super().from_payloads(payloads, type_hints)
        return [self._decode_or_raw(payload) for payload in payloads]

    def _decode_or_raw(self, payload: Payload) -> Any:
        try:
            return super().from_payloads([payload], None)[0]
        except Exception:  # undecodable: the handler refuses it, naming its encoding
            return RawValue(payload)


def data_converter(keys: EncryptionKeys | None) -> DataConverter:
    """The worker's converter; with keys, it encrypts what it writes and decrypts what it reads."""
    plain = DataConverter(payload_converter_class=UntrustedInputPayloadConverter)
    return with_encryption(plain, keys, strict=False)


DATA_CONVERTER = data_converter(None)
"""Without keys: plaintext payloads (the tests' plain stack, replaying committed histories)."""
