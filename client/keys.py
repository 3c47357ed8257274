"""Each person's Ed25519 key pair, and signing what they decide with it.

`opsctl keys init` writes `<identity>.key` (PEM, PKCS#8, mode 0600, in a 0700 folder) and
`<identity>.pub` (`ed25519:<base64>`, what a policy file registers) into the user's config
folder. Signing looks there first, then in the embedded stack's demo keys. The workflow
verifies every signature against the policy's public keys; a missing key means unsigned.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

from contracts.failures import ExitCode, OpsctlError
from contracts.policy import SIGNATURE_LIFETIME
from contracts.run import Decision, DecisionInput, RequestSignature, RunInput

_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def user_keys_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return Path(os.environ.get("OPSCTL_KEYS_DIR") or Path(base) / "opsctl" / "keys").expanduser()


def _checked(identity: str) -> str:
    if not _IDENTITY.match(identity):
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"{identity!r} cannot name a key: use letters, digits and . _ @ - (at most 64)",
        )
    return identity


def create_key(folder: Path, identity: str, *, force: bool = False) -> tuple[Path, str]:
    """Write a new key pair for `identity`; returns the private key's path and the public key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from contracts.signing import public_key_of

    path = folder / f"{_checked(identity)}.key"
    if path.exists() and not force:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"{identity} already has a key at {path}",
            hint="`opsctl keys show` prints its public key; --force replaces it (re-register the new one)",
        )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)  # also when it existed: nobody else lists or replaces your keys
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    if path.exists():
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    public = public_key_of(_raw(key))
    public_path = folder / f"{identity}.pub"
    public_path.unlink(missing_ok=True)  # never write through whatever sits there (a symlink, say)
    with os.fdopen(os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w") as out:
        out.write(public + "\n")
    return path, public


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a folder name too long for the file system (a --state-dir, say) holds no key
        return False


def _raw(key: object) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    assert isinstance(key, Ed25519PrivateKey)
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


class Keyring:
    """Private keys by identity, looked up in `folders` in order."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders

    def path(self, identity: str) -> Path | None:
        if not _IDENTITY.match(identity):
            return None
        return next((p for folder in self.folders if _is_file(p := folder / f"{identity}.key")), None)

    def private_key(self, identity: str) -> bytes | None:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        path = self.path(identity)
        if path is None:
            return None
        if path.stat().st_mode & 0o077:
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"the key {path} can be read by others (mode {path.stat().st_mode & 0o777:o})",
                hint=f"make it yours alone: chmod 600 {path}",
            )
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
            return _raw(key)
        except (OSError, ValueError, TypeError, AssertionError) as exc:
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"the key {path} is not a readable Ed25519 private key: {exc}",
                hint="create a new one with `opsctl keys init --force` and register its public key",
            ) from exc

    def public_key(self, identity: str) -> str | None:
        from contracts.signing import public_key_of

        private = self.private_key(identity)
        return public_key_of(private) if private is not None else None

    def sign_request(
        self, input: RunInput, run_id: str, now: float | None = None, lifetime: int = SIGNATURE_LIFETIME
    ) -> RunInput:
        """The requester's signature over the whole input, if they have a key (else it goes unsigned).

        `run_id` is what the signature names: the workflow id, or a schedule's scope (`ScheduleGrant.scope`).
        `now` (epoch seconds) defaults to this machine's clock; tests on a time-skipping server pass its own.
        `lifetime`: seconds the signature is good for (a schedule's lasts as long as its policy allows).
        """
        from contracts.signing import sign

        private = self.private_key(input.request.metadata.requester or "")
        if private is None:
            return input
        attempt, expires = uuid.uuid4().hex, int(now or time.time()) + lifetime
        signature = sign(private, input.signature_payload(run_id, attempt, expires))
        return input.model_copy(
            update={"signature": RequestSignature(attempt_id=attempt, expires_at=expires, signature=signature)}
        )

    def sign_decision(
        self, scope: str, decision: Decision, input: DecisionInput, now: float | None = None
    ) -> DecisionInput:
        """A fresh attempt id and expiry, signed with the actor's key when there is one.

        `scope` is the run's `decision_scope` (workflow id and first run id, from its state).
        """
        from contracts.signing import sign

        expires = int(now or time.time()) + SIGNATURE_LIFETIME
        input = input.model_copy(update={"attempt_id": uuid.uuid4().hex, "expires_at": expires})
        private = self.private_key(input.actor)
        if private is None:
            return input
        return input.model_copy(update={"signature": sign(private, input.signature_payload(scope, decision))})
