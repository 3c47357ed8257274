"""The encrypted payload's wire format: what a codec in any language needs to read opsctl's history.

An encrypted payload has `encoding: binary/encrypted`, the id of the key that encrypted it in
`encryption-key-id`, and as data a 96-bit nonce followed by the AES-256-GCM ciphertext and tag of
the original payload serialized as protobuf (`Payload.SerializeToString`, metadata and all). The
associated data binds the key id, so a payload cannot be passed off as another key's. Kept here,
beside the other contracts, because the workflows name one of these keys too: a signal the worker
could not decrypt reaches its handler with `encryption-error` saying why, and is refused by name.
"""

from __future__ import annotations

ENCODING = "binary/encrypted"
CIPHER = "AES-256-GCM"
KEY_ID_METADATA = "encryption-key-id"
CIPHER_METADATA = "encryption-cipher"
# Set on a payload left encrypted because it could not be decrypted here (unknown key id, tampered).
ERROR_METADATA = "encryption-error"
NONCE_BYTES = 12
KEY_BYTES = 32


def associated_data(key_id: str) -> bytes:
    """What the tag authenticates besides the plaintext: the format and the key id."""
    return f"opsctl/{ENCODING}/{CIPHER}/{key_id}".encode()
