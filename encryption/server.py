"""The codec server: decodes (and encodes) payloads over HTTP for the Web UI and the `temporal` CLI.

Temporal's remote codec protocol: `POST …/decode` and `POST …/encode` with the proto-JSON of a
`Payloads` message (`{"payloads": [{"metadata": {…}, "data": "…"}]}`, bytes as base64); only the
last path segment names the action. Every request must carry the token, compared in constant
time, in one of two places:

* `Authorization: Bearer TOKEN` — what `temporal workflow show --codec-auth "Bearer TOKEN"` sends;
* the path, `/TOKEN/decode` — for a Web UI without a login of its own (the dev server's): the UI
  sends an Authorization header only with its user's access token, and only to an https endpoint,
  so its endpoint URL (`--ui-codec-endpoint http://127.0.0.1:PORT/TOKEN`) has to carry the token.

Browsers are let in from the UI's origin only: a preflight from anywhere else gets no CORS
headers, so no other page a person has open can read decoded payloads through their browser.
Bodies are bounded, malformed ones get 400, and no error or log line quotes a payload or the token.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from contracts.failures import ExitCode, OpsctlError
from encryption.codec import EncryptionCodec

TOKEN_ENV = "OPSCTL_CODEC_TOKEN"  # noqa: S105 - the variable's name, not a token
TOKEN_FILE_ENV = "OPSCTL_CODEC_TOKEN_FILE"  # noqa: S105 - the variable's name, not a token
# Characters that stand in a URL path as they are: the token may be part of the UI's endpoint.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{32,512}")
MAX_BODY_BYTES = 8 * 1024 * 1024  # Temporal's payloads are at most 2 MB each; base64 adds a third
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
ACTIONS = ("encode", "decode")
log = logging.getLogger("opsctl.codec_server")


class TokenError(OpsctlError):
    def __init__(self, message: str) -> None:
        super().__init__(
            ExitCode.INVALID_INPUT,
            message,
            f"put a random token of 32+ URL-safe characters in a file ({TOKEN_FILE_ENV}, --token-file) "
            "or in $OPSCTL_CODEC_TOKEN; `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )


def load_token(token_file: str, inline: str = "") -> str:
    """The bearer token: `inline` ($OPSCTL_CODEC_TOKEN) if given, else the first line of `token_file`."""
    token, source = inline.strip(), f"${TOKEN_ENV}"
    if not token:
        if not token_file:
            raise TokenError("the codec server needs a token, and none is configured")
        try:
            lines = Path(token_file).expanduser().read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"the token file {token_file} is unreadable: {type(exc).__name__}") from None
        token, source = (lines[0].strip() if lines else ""), token_file
    if not TOKEN_PATTERN.fullmatch(token):
        raise TokenError(f"the token in {source} is not 32-512 URL-safe characters (letters, digits, . _ ~ -)")
    return token


def origin(url: str) -> str:
    """`http://127.0.0.1:8233/namespaces/…` → `http://127.0.0.1:8233`: what a browser sends as Origin."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OpsctlError(ExitCode.INVALID_INPUT, f"{url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8233")
    return f"{parts.scheme}://{parts.netloc.lower()}"


@dataclass(frozen=True)
class Access:
    """Who may ask: the token, and the browser origins (the Web UI's) allowed to read answers."""

    token: str
    ui_origins: frozenset[str]
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def of(cls, token: str, ui_origins: Iterable[str], max_body_bytes: int = MAX_BODY_BYTES) -> Access:
        return cls(token, frozenset(origin(url) for url in ui_origins), max_body_bytes)

    def authorized(self, authorization: str, path_token: str) -> bool:
        scheme, _, given = authorization.partition(" ")
        header_token = given.strip() if scheme.lower() == "bearer" else ""
        expected = self.token.encode()
        # Both compared, always: how long a refusal takes says nothing about which one was close.
        by_header = hmac.compare_digest(header_token.encode(), expected)
        by_path = hmac.compare_digest(path_token.encode(), expected)
        return by_header or by_path


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client never keeps the process from stopping

    def __init__(self, address: tuple[str, int], codec: EncryptionCodec, access: Access) -> None:
        self.codec = codec
        self.access = access
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not the default traceback on stderr: a client that hung up is not news."""
        log.warning("codec server: a connection from %s failed", client_address[0] if client_address else "?")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def transform(self, action: str, body: bytes) -> bytes:
        """The proto-JSON of the payloads in `body`, encoded or decoded. Raises ValueError if malformed."""
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the body is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("payloads", []), list):
            raise ValueError('the body is not {"payloads": [...]}')
        payloads = Payloads()
        try:
            json_format.ParseDict(document, payloads)
        except json_format.ParseError:
            raise ValueError(
                "the body is not the proto-JSON of Payloads (metadata values and data in base64)"
            ) from None
        convert = self.codec.encrypt if action == "encode" else self.codec.decrypt
        answer = json_format.MessageToDict(Payloads(payloads=[convert(payload) for payload in payloads.payloads]))
        answer.setdefault("payloads", [])
        return json.dumps(answer).encode()


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer
    protocol_version = "HTTP/1.1"  # browsers keep the connection for the next payloads
    timeout = 15  # seconds a client may take to send its request: no connection is held forever

    def do_OPTIONS(self) -> None:
        """A browser's preflight: answered for the UI's origin only, and never needs the token."""
        allowed = self._cors_origin() is not None
        status = HTTPStatus.NO_CONTENT if allowed else HTTPStatus.FORBIDDEN
        self._answer(status, b"", {"Access-Control-Max-Age": "600"} if allowed else {})

    def do_POST(self) -> None:
        *prefix, action = urlsplit(self.path).path.strip("/").split("/")
        if action not in ACTIONS:
            self._error(HTTPStatus.NOT_FOUND, "POST …/encode or …/decode")
            return
        if not self.server.access.authorized(self.headers.get("Authorization", ""), prefix[-1] if prefix else ""):
            self._error(HTTPStatus.UNAUTHORIZED, "a valid token is required", {"WWW-Authenticate": "Bearer"})
            return
        text = self.headers.get("Content-Length", "")
        # ASCII digits only ('²'.isdigit() holds), and few of them: int() of 5,000 digits raises.
        if not (text.isascii() and text.isdigit() and len(text) <= 12):
            self._error(HTTPStatus.LENGTH_REQUIRED, "send Content-Length (no chunked bodies)")
            return
        length = int(text)
        if length > self.server.access.max_body_bytes:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {self.server.access.max_body_bytes} bytes")
            return
        try:
            answer = self.server.transform(action, self.rfile.read(length))
        except RecursionError:
            self._error(HTTPStatus.BAD_REQUEST, "the JSON is nested too deeply")
            return
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        except Exception as exc:  # a bug: say so without a traceback or a payload in the answer
            log.error("codec server: %s while answering %s", type(exc).__name__, action)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the codec server failed; see its log")
            return
        self._answer(HTTPStatus.OK, answer, {"Content-Type": "application/json"}, action=action)

    def do_GET(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "POST …/encode or …/decode", {"Allow": "POST, OPTIONS"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _cors_origin(self) -> str | None:
        given = self.headers.get("Origin", "")
        return given if given in self.server.access.ui_origins else None

    def _error(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        # The request body may be unread: close the connection rather than parse it as a request.
        self.close_connection = True
        body = json.dumps({"error": message}).encode()
        self._answer(status, body, {"Content-Type": "application/json", "Connection": "close", **(headers or {})})

    def _answer(self, status: HTTPStatus, body: bytes, headers: dict[str, str], action: str = "") -> None:
        self.send_response(status)
        allowed = self._cors_origin()
        if allowed is not None:
            self.send_header("Access-Control-Allow-Origin", allowed)
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        for name, value in {"Vary": "Origin", "Cache-Control": "no-store", **headers}.items():
            self.send_header(name, value)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self._log(status, action)

    def _log(self, status: HTTPStatus, action: str) -> None:
        namespace = self.headers.get("X-Namespace", "") if self.headers else ""
        log.info("%s %s → %d (namespace %r)", self.command, action or "-", status, namespace[:100])

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Silenced: the request line holds the path, and the path may hold the token (`_log` says enough)."""

    def log_error(self, format: str, *args: Any) -> None:
        message = format % args if args else format
        log.warning("codec server: %s", message.replace(self.server.access.token, "<token>"))
