"""Payloads read as the HTTP API writes them decode to what the SDK's converter and codec give."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload as ProtoPayload
from temporalio.api.common.v1 import SearchAttributes
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.converter import decode_typed_search_attributes, encode_search_attributes

from client.payloads import Decoder, Payload, from_json, parse_payload, search_attributes, timestamp
from encryption.codec import DecryptionError, EncryptionCodec
from encryption.keys import EncryptionKeys, new_key_entry, parse_keys


def keyring(*key_ids: str) -> EncryptionKeys:
    return parse_keys("".join(new_key_entry(key_id) for key_id in key_ids))


def as_http(payload: ProtoPayload) -> Payload:
    """What the HTTP API writes for a payload (proto JSON, bytes as base64), read back."""
    return from_json(json_format.MessageToDict(payload))


@given(st.dictionaries(st.text(max_size=20), st.binary(max_size=40), max_size=5), st.binary(max_size=300))
def test_the_wire_reader_reads_what_protobuf_writes(metadata: dict[str, bytes], data: bytes) -> None:
    serialized = ProtoPayload(metadata=metadata, data=data).SerializeToString()
    assert Payload(metadata, data) == parse_payload(serialized)


def test_fields_it_does_not_know_are_skipped_as_protobuf_skips_them() -> None:
    inner = ProtoPayload(metadata={"encoding": b"json/plain"}, data=b"1")
    outer = ProtoPayload(metadata={"encoding": b"json/plain"}, data=b'"x"', external_payloads=[])
    serialized = (
        outer.SerializeToString() + b"\x1a" + bytes([len(inner.SerializeToString())]) + inner.SerializeToString()
    )
    serialized += b"\x28\x96\x01" + b"\x35\x01\x02\x03\x04"  # field 5 varint 150, field 6 fixed32
    assert Payload({"encoding": b"json/plain"}, b'"x"') == parse_payload(serialized)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x12\x05abc",
        b"\x0a",
        b"\x80",
        b"\x0b",
        b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\x0a\x03\x0a\x01\xff",
    ],
    ids=["truncated data", "truncated map", "truncated varint", "group", "overlong varint", "key not utf-8"],
)
def test_bytes_that_are_no_payload_are_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - parse_payload promises exactly this
        parse_payload(raw)


async def test_what_the_codec_sealed_opens_to_the_same_value() -> None:
    keys = keyring("k1", "k2")
    original = ProtoPayload(metadata={"encoding": b"json/plain", "note": b"kept"}, data=b'{"done": 3, "unit": "rows"}')
    [sealed] = await EncryptionCodec(keys).encode([original])
    assert Payload(dict(original.metadata), original.data) == Decoder(keys).plain(as_http(sealed))
    assert {"done": 3, "unit": "rows"} == Decoder(keys).value(as_http(sealed))


@pytest.mark.parametrize("case", ["unknown key", "no keys", "tampered", "not a payload"])
async def test_a_payload_that_does_not_open_says_so_in_the_codec_s_words(case: str) -> None:
    """Both read through `encryption.sealing`: the same exit 2, the same message, for every refusal."""
    sealer = EncryptionCodec(keyring("old"))
    [sealed] = await sealer.encode([ProtoPayload(metadata={"encoding": b"json/plain"}, data=b"1")])
    if case == "tampered":
        sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    if case == "not a payload":
        metadata, data = sealer._seals.seal(b"\xff\xff\xff")
        sealed = ProtoPayload(metadata=metadata, data=data)
    reader = {"unknown key": keyring("new"), "no keys": None}.get(case, sealer.keys)
    with pytest.raises(DecryptionError) as through_codec:
        await EncryptionCodec(reader).decode([sealed])
    with pytest.raises(DecryptionError) as through_http:
        Decoder(reader).value(as_http(sealed))
    assert (2, through_codec.value.message, through_codec.value.hint) == (
        int(through_http.value.exit_code),
        through_http.value.message,
        through_http.value.hint,
    )


def test_search_attributes_read_as_the_sdk_s_typed_ones() -> None:
    pairs = [
        SearchAttributePair(SearchAttributeKey.for_keyword("OpsctlPhase"), "applying"),
        SearchAttributePair(SearchAttributeKey.for_bool("OpsctlEmergency"), True),
        SearchAttributePair(SearchAttributeKey.for_int("Count"), 7),
        SearchAttributePair(SearchAttributeKey.for_float("Ratio"), 0.5),
        SearchAttributePair(SearchAttributeKey.for_keyword_list("BuildIds"), ["a", "b"]),
        SearchAttributePair(
            SearchAttributeKey.for_datetime("When"), datetime(2026, 12, 1, 8, 0, 1, 123456, tzinfo=UTC)
        ),
        SearchAttributePair(SearchAttributeKey.for_text("Words"), "free text"),
    ]
    proto = SearchAttributes()
    encode_search_attributes(TypedSearchAttributes(pairs), proto)
    sdk = {key.name: value for key, value in decode_typed_search_attributes(proto)}
    assert sdk == search_attributes(json_format.MessageToDict(proto)["indexedFields"])


def test_times_keep_microseconds_of_nanoseconds_as_the_sdk_does() -> None:
    assert datetime(2026, 12, 1, 18, 49, 18, 508283, tzinfo=UTC) == timestamp("2026-12-01T18:49:18.508283689Z")
    assert datetime(2026, 12, 1, 18, 49, 18, tzinfo=UTC) == timestamp("2026-12-01T18:49:18Z")
    assert datetime(2026, 12, 1, 18, 49, 18, 500000, tzinfo=UTC) == timestamp("2026-12-01T18:49:18.5Z")
