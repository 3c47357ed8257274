"""Temporal payloads as its HTTP API writes them, decoded as the CLI's SDK client would — without the SDK.

With `?noPayloadShorthand` every payload is its proto JSON, `{"metadata": {KEY: base64}, "data":
base64}`. An encrypted one (`binary/encrypted`, `encryption.sealing`) holds a serialized
`temporal.api.common.v1.Payload`, read here by a small protobuf wire reader (fields 1, the
metadata map, and 2, the data; anything else is skipped as protobuf says). What comes out is
converted as `temporalio.contrib.pydantic`'s converter does: `json/plain` through pydantic
(a model when one is asked for, plain JSON values otherwise), `binary/null` as None, `binary/plain`
as bytes; any other encoding is the SDK's KeyError. Decryption is strict, as the CLI's codec is.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from encryption.sealing import Seals, is_sealed

if TYPE_CHECKING:
    from pydantic import BaseModel

    from encryption.keys import EncryptionKeys

M = TypeVar("M", bound="BaseModel")


class MalformedPayload(ValueError):
    """JSON that is not a payload as the HTTP API writes one."""


@dataclass(frozen=True)
class Payload:
    metadata: dict[str, bytes]
    data: bytes

    @property
    def encoding(self) -> str:
        return self.metadata.get("encoding", b"<unknown>").decode(errors="replace")


def from_json(value: Any) -> Payload:
    """A payload's proto JSON (bytes as base64) → Payload; MalformedPayload when it is not one."""
    if not isinstance(value, dict):
        raise MalformedPayload(f"a payload is an object, not {type(value).__name__}")
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        raise MalformedPayload("a payload's metadata is an object")
    return Payload({str(key): _bytes(item) for key, item in metadata.items()}, _bytes(value.get("data", "")))


def _bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise MalformedPayload("bytes are base64 strings in proto JSON")
    try:  # proto JSON writes standard base64; readers accept the URL-safe alphabet too
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedPayload("bytes that are not base64") from None


# ---- the protobuf wire format, for the one message a sealed payload holds ----


def parse_payload(raw: bytes) -> Payload:
    """A serialized `temporal.api.common.v1.Payload`; ValueError when the bytes are not one."""
    metadata: dict[str, bytes] = {}
    data = b""
    for number, value in _fields(raw):
        if number == 1 and isinstance(value, bytes):  # map<string, bytes> metadata: entries {1: key, 2: value}
            key, item = "", b""
            for entry_number, entry_value in _fields(value):
                if entry_number == 1 and isinstance(entry_value, bytes):
                    key = entry_value.decode("utf-8")  # a proto3 string is UTF-8 (UnicodeDecodeError is a ValueError)
                elif entry_number == 2 and isinstance(entry_value, bytes):
                    item = entry_value
            metadata[key] = item  # a key given twice: the last entry wins, as in protobuf
        elif number == 2 and isinstance(value, bytes):
            data = value
        elif number in (1, 2):
            raise ValueError(f"field {number} has the wrong wire type")
    return Payload(metadata, data)


def _fields(raw: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of each field: an int for varint and fixed fields, bytes for length-delimited."""
    fields: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(raw):
        key, at = _varint(raw, at)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, at = _varint(raw, at)
            fields.append((number, value))
        elif wire in (1, 5):  # fixed64, fixed32
            size = 8 if wire == 1 else 4
            if at + size > len(raw):
                raise ValueError("truncated fixed field")
            fields.append((number, int.from_bytes(raw[at : at + size], "little")))
            at += size
        elif wire == 2:
            size, at = _varint(raw, at)
            if at + size > len(raw):
                raise ValueError("truncated length-delimited field")
            fields.append((number, raw[at : at + size]))
            at += size
        else:  # 3, 4: groups (never in this message); 6, 7: no such wire type
            raise ValueError(f"wire type {wire}")
    return fields


def _varint(raw: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(raw) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def serialize_payload(payload: Payload) -> bytes:
    """`parse_payload`'s inverse: the metadata map (field 1, one entry per key) and the data (field 2)."""
    out = bytearray()
    for key, value in payload.metadata.items():
        entry = _delimited(1, key.encode()) + _delimited(2, value)
        out += _delimited(1, entry)
    out += _delimited(2, payload.data)
    return bytes(out)


def _delimited(number: int, value: bytes) -> bytes:
    return _varint_bytes(number << 3 | 2) + _varint_bytes(len(value)) + value


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# ---- converting, as the CLI's SDK data converter does ----


class Decoder:
    """Opens sealed payloads with the CLI's keyring (strictly: one it cannot open is DecryptionError)."""

    def __init__(self, keys: EncryptionKeys | None) -> None:
        self._seals = Seals(keys)

    def plain(self, payload: Payload) -> Payload:
        """The payload as its sender wrote it: opened if sealed, else as it is."""
        if not is_sealed(payload.metadata):
            return payload
        return self._seals.open(payload.metadata, payload.data, parse_payload)

    def value(self, payload: Payload) -> Any:
        """The payload's value, as `from_payload` with no type hint gives it."""
        return _convert(self.plain(payload), None)

    def model(self, payload: Payload, model: type[M]) -> M:
        converted: M = _convert(self.plain(payload), model)
        return converted


class Encoder:
    """Payloads as the CLI's SDK client sends them: `json/plain`, sealed with the keyring's key if it has one."""

    def __init__(self, keys: EncryptionKeys | None) -> None:
        self._seals = Seals(keys) if keys is not None else None

    def json(self, data: bytes) -> dict[str, Any]:
        """The proto JSON of a payload holding the JSON document `data`."""
        payload = Payload({"encoding": b"json/plain"}, data)
        if self._seals is not None:
            payload = Payload(*self._seals.seal(serialize_payload(payload)))
        return to_json(payload)


def to_json(payload: Payload) -> dict[str, Any]:
    """`from_json`'s inverse."""
    encoded = {key: base64.b64encode(value).decode() for key, value in payload.metadata.items()}
    return {"metadata": encoded, "data": base64.b64encode(payload.data).decode()}


def _convert(payload: Payload, model: type[BaseModel] | None) -> Any:
    encoding = payload.encoding
    if encoding == "json/plain":
        if model is not None:
            return model.model_validate_json(payload.data)
        from pydantic import TypeAdapter

        return TypeAdapter(Any).validate_json(payload.data)
    if encoding == "binary/null":
        return None
    if encoding == "binary/plain":
        return payload.data
    raise KeyError(f"Unknown payload encoding {encoding}")  # what the SDK's converter raises


# ---- search attributes, as the SDK's typed search attributes read them ----

_INDEXED_TYPES = ("Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList")


def search_attributes(indexed_fields: Any) -> dict[str, Any]:
    """`searchAttributes.indexedFields` → {name: value}; an attribute of no known type is left out."""
    values: dict[str, Any] = {}
    if not isinstance(indexed_fields, dict):
        return values
    for name, raw in indexed_fields.items():
        payload = from_json(raw)
        kind = payload.metadata.get("type", b"").decode(errors="replace")
        if kind not in _INDEXED_TYPES:
            continue
        value = _default_value(payload)
        if kind != "KeywordList" and isinstance(value, list):  # one item is the value; more are no value
            if len(value) != 1:
                continue
            value = value[0]
        values[name] = timestamp(value) if kind == "Datetime" else value
    return values


def _default_value(payload: Payload) -> Any:
    """The SDK's default converter (not pydantic): what typed search attributes are decoded with."""
    if payload.encoding == "json/plain":
        return json.loads(payload.data)
    return _convert(payload, None)


def timestamp(text: Any) -> datetime:
    """An RFC 3339 time as proto JSON writes it (UTC, 'Z', up to nanoseconds) → an aware datetime."""
    if not isinstance(text, str):
        raise MalformedPayload("a time is an RFC 3339 string")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds: keep six digits (truncated, as the SDK does), then the offset
        count = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:count][:6].ljust(6, '0')}{rest[count:]}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPayload(f"{text[:40]!r} is not an RFC 3339 time") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
