"""codec-server: decode opsctl's encrypted payloads for the Web UI and `temporal workflow show`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from client.config import config_for
from client.render import Output
from contracts.failures import ExitCode, OpsctlError


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    from encryption.codec import EncryptionCodec
    from encryption.server import TOKEN_ENV, Access, CodecServer, load_token, origin

    env = os.environ.get
    config = config_for(args)
    keys = config.encryption_keys()
    if keys is None:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            "the codec server needs the encryption keys, and none are configured",
            hint="set OPSCTL_CODEC_KEYS_FILE (or OPSCTL_CODEC_KEYS); see README.md, 'Payload encryption'",
        )
    origins = args.ui_origin or [origin(config.ui_url)]
    # --token-file, then $OPSCTL_CODEC_TOKEN, then $OPSCTL_CODEC_TOKEN_FILE, the config, the dev stack's.
    token = load_token(args.token_file) if args.token_file else load_token(config.codec_token_file, env(TOKEN_ENV, ""))
    access = Access.of(token, origins, args.max_body_bytes)
    # Undecryptable payloads come back as they are, marked with why: a viewer sees all the rest.
    codec = EncryptionCodec(keys, strict=False)
    try:
        server = CodecServer((args.host, args.port), codec, access)
    except OSError as exc:
        raise OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            hint="choose another port with --port",
        ) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    progress(
        f"codec server listening on {server.url}: key ids {', '.join(keys.key_ids)} "
        f"(encrypting with {keys.encrypt_with}), browsers from {', '.join(sorted(access.ui_origins))}"
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how a person stops a server: not an interruption of anything
        pass
    finally:
        server.server_close()
    data: dict[str, Any] = {"stopped": True, "url": server.url}
    return Output(data, "codec server stopped")
