"""The AES-GCM payload codec: round trips, key ids in the metadata, refusals, rotation."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from contracts.encryption import ENCODING, ERROR_METADATA, KEY_ID_METADATA
from encryption.codec import DecryptionError, EncryptionCodec, with_encryption
from encryption.keys import EncryptionKeys, new_key_entry, parse_keys

REQUEST_TEXT = "role=enc_svc_reporting secretId=prod/very-distinctive"


def keyring(*key_ids: str, encrypt_with: str = "") -> EncryptionKeys:
    return parse_keys("".join(new_key_entry(key_id) for key_id in key_ids), encrypt_with=encrypt_with)


def json_payload(text: str = REQUEST_TEXT) -> Payload:
    return Payload(metadata={"encoding": b"json/plain", "note": b"kept"}, data=f'"{text}"'.encode())


async def test_a_payload_encrypts_under_its_key_id_and_decrypts_to_the_same_payload() -> None:
    codec = EncryptionCodec(keyring("2026-01"))
    original = json_payload()

    [sealed] = await codec.encode([original])
    [opened] = await codec.decode([sealed])

    assert ENCODING.encode() == sealed.metadata["encoding"]
    assert b"2026-01" == sealed.metadata[KEY_ID_METADATA]
    assert REQUEST_TEXT.encode() not in sealed.SerializeToString()
    assert original == opened  # data and every metadata entry


async def test_each_payload_gets_its_own_nonce() -> None:
    codec = EncryptionCodec(keyring("k"))
    first, second = await codec.encode([json_payload(), json_payload()])
    assert first.data != second.data


async def test_plaintext_payloads_pass_through_decoding_unchanged() -> None:
    """Committed replay histories and raw `temporal workflow signal` inputs are plaintext."""
    codec = EncryptionCodec(keyring("k"))
    plain = [json_payload(), Payload(metadata={"encoding": b"made/up"}, data=b"\xff")]
    assert plain == await codec.decode(plain)


async def test_a_tampered_ciphertext_is_refused() -> None:
    codec = EncryptionCodec(keyring("k"))
    [sealed] = await codec.encode([json_payload()])
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(DecryptionError, match="fails authentication"):
        await codec.decode([tampered])


async def test_the_key_id_is_bound_to_the_ciphertext() -> None:
    """Relabelling a payload as another key's fails, even when both keys are in the ring."""
    codec = EncryptionCodec(keyring("a", "b", encrypt_with="a"))
    [sealed] = await codec.encode([json_payload()])
    sealed.metadata[KEY_ID_METADATA] = b"b"
    with pytest.raises(DecryptionError, match="'b': the ciphertext fails authentication"):
        await codec.decode([sealed])


@pytest.mark.parametrize("data", [b"", b"short", bytes(40)])
async def test_truncated_or_garbage_data_is_refused(data: bytes) -> None:
    codec = EncryptionCodec(keyring("k"))
    garbage = Payload(metadata={"encoding": ENCODING.encode(), KEY_ID_METADATA: b"k"}, data=data)
    with pytest.raises(DecryptionError, match="fails authentication"):
        await codec.decode([garbage])


async def test_an_unknown_key_id_is_refused_naming_it_and_the_known_ones() -> None:
    [sealed] = await EncryptionCodec(keyring("old")).encode([json_payload()])
    with pytest.raises(DecryptionError, match=r"key id 'old' is not in this keyring \(it has new\)") as raised:
        await EncryptionCodec(keyring("new")).decode([sealed])
    assert "OPSCTL_CODEC_KEYS_FILE" in raised.value.hint
    assert 2 == raised.value.exit_code


async def test_without_keys_nothing_is_encrypted_and_an_encrypted_payload_says_so() -> None:
    codec = EncryptionCodec(None)
    assert [json_payload()] == await codec.encode([json_payload()])
    [sealed] = await EncryptionCodec(keyring("k")).encode([json_payload()])
    with pytest.raises(DecryptionError, match="no keys are configured"):
        await codec.decode([sealed])


async def test_a_lenient_codec_keeps_what_it_cannot_decrypt_marked_with_the_reason() -> None:
    """The worker's: an exception while decoding would fail every workflow task of the run."""
    [sealed] = await EncryptionCodec(keyring("x")).encode([json_payload()])
    [kept] = await EncryptionCodec(keyring("k"), strict=False).decode([sealed])
    assert sealed.data == kept.data
    assert ENCODING.encode() == kept.metadata["encoding"]
    assert b"key id 'x' is not in this keyring (it has k)" in kept.metadata[ERROR_METADATA]
    assert ERROR_METADATA not in sealed.metadata, "the input is not mutated"


async def test_after_a_rotation_old_payloads_still_decrypt_and_new_ones_use_the_new_key() -> None:
    first = keyring("2026-01")
    [before] = await EncryptionCodec(first).encode([json_payload("before")])
    rotated = parse_keys(f"2026-01:{base64.b64encode(first.keys['2026-01']).decode()}\n" + new_key_entry("2026-02"))
    codec = EncryptionCodec(rotated)
    [after] = await codec.encode([json_payload("after")])

    assert b"2026-02" == after.metadata[KEY_ID_METADATA]
    assert [json_payload("before"), json_payload("after")] == await codec.decode([before, after])
    with pytest.raises(DecryptionError, match="'2026-02'"):
        await EncryptionCodec(first).decode([after])


async def test_the_converter_round_trips_values_and_encrypts_failure_messages() -> None:
    converter = with_encryption(DataConverter(), keyring("k"), strict=True)
    [payload] = await converter.encode([{"role": "enc_svc_reporting"}])
    assert b"enc_svc_reporting" not in payload.SerializeToString()
    assert [{"role": "enc_svc_reporting"}] == await converter.decode([payload])

    failure = Failure()
    await converter.encode_failure(ApplicationError("role enc_svc_reporting is locked", type="conflict"), failure)
    assert "Encoded failure" == failure.message
    assert b"enc_svc_reporting" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert "role enc_svc_reporting is locked" == decoded.message


async def test_a_sender_cannot_write_the_reason_a_payload_stayed_encrypted() -> None:
    """`--input-meta encryption-error=…` on a plaintext signal: the codec drops it, so the refusal the run
    records is its own, not text the sender chose."""
    from temporalio.api.common.v1 import Payload

    from contracts.encryption import ERROR_METADATA
    from encryption.codec import EncryptionCodec

    forged = Payload(metadata={"encoding": b"foo/bar", ERROR_METADATA: b"approved by security"}, data=b"x")
    [decoded] = await EncryptionCodec(None, strict=False).decode([forged])
    assert ERROR_METADATA not in decoded.metadata
    assert b"foo/bar" == decoded.metadata["encoding"]
