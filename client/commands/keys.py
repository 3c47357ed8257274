"""keys init | show: your Ed25519 key pair, which signs every request and decision you make."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from client.config import config_for
from client.keys import create_key, user_keys_dir
from client.render import Output
from contracts.failures import ExitCode, OpsctlError


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    del progress
    config = config_for(args)
    identity = config.user
    if args.action == "init":
        try:
            path, public = create_key(user_keys_dir(), identity, force=args.force)
        except OSError as exc:  # a file where the folder should be, a name too long, a place you may not write
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"cannot write a key in {user_keys_dir()}: {exc.strerror or exc}",
                hint="set OPSCTL_KEYS_DIR to a folder you may write",
            ) from exc
        intro = f"created a key pair for {identity}: {path} (private, mode 0600)"
    else:
        keys = config.keyring()
        found, public_key = keys.path(identity), keys.public_key(identity)
        if found is None or public_key is None:
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"{identity} has no key in {user_keys_dir()}",
                hint="create one with `opsctl keys init` (or act as another identity with --as)",
            )
        path, public = found, public_key
        intro = f"{identity}'s key: {path}"
    snippet = f"identities:\n  {identity}:\n    publicKey: {public}"
    text = (
        f"{intro}\npublic key: {public}\n\n"
        f"Register it in the workers' policy file (then add {identity} to the groups that approve):\n\n{snippet}"
    )
    return Output({"identity": identity, "private_key_file": str(path), "public_key": public}, text)
