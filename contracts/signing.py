"""Signed decisions: what a person signs (canonical bytes), and the Ed25519 check of it.

Every decision (approve, reject, cancel, resolve) and the request itself are signed over
what they decide: the run, the plan hash, the decision, the actor, a unique attempt id and
an expiry. The workflow verifies with the public keys of its policy; the CLI signs with the
private key in the user's config folder (`client.keys`). The cryptography is the
`cryptography` package's; nothing here is hand-rolled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

# Imported at module level: the workflow sandbox passes contracts through, not lazy imports inside it.
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.policy import decode_public_key

DECISION_SCHEMA = "opsctl.decision/v1"
REQUEST_SCHEMA = "opsctl.request/v1"


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decision_payload(
    *,
    run_id: str,
    decision: str,
    actor: str,
    plan_hash: str,
    comment: str,
    attempt_id: str,
    expires_at: int,
) -> bytes:
    """The bytes a decision's signature covers. `expires_at` is seconds since the epoch (UTC)."""
    return _canonical(
        {
            "schema": DECISION_SCHEMA,
            "run": run_id,
            "decision": decision,
            "actor": actor,
            "plan_hash": plan_hash,
            "comment": comment,
            "attempt_id": attempt_id,
            "expires_at": expires_at,
        }
    )


def request_payload(*, run_id: str, request: dict[str, Any], attempt_id: str, expires_at: int) -> bytes:
    """The bytes a request's signature covers: the whole request (requester, mode, emergency included)."""
    digest = hashlib.sha256(_canonical(request)).hexdigest()
    return _canonical(
        {
            "schema": REQUEST_SCHEMA,
            "run": run_id,
            "request_sha256": digest,
            "actor": request.get("requester", ""),
            "attempt_id": attempt_id,
            "expires_at": expires_at,
        }
    )


def verify(public_key: str, payload: bytes, signature: str) -> bool:
    """True when `signature` (base64) is `public_key`'s Ed25519 signature of `payload`."""
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        key = Ed25519PublicKey.from_public_bytes(decode_public_key(public_key))
        key.verify(raw_signature, payload)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def sign(private_key: bytes, payload: bytes) -> str:
    """Sign with a raw 32-byte Ed25519 private key; base64 of the signature."""
    return base64.b64encode(Ed25519PrivateKey.from_private_bytes(private_key).sign(payload)).decode()


def public_key_of(private_key: bytes) -> str:
    raw = Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode()
