"""The codec server on a real socket: Temporal's remote codec protocol, the token, CORS, bounds."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from contracts.encryption import ENCODING, ERROR_METADATA, KEY_ID_METADATA
from encryption.codec import EncryptionCodec
from encryption.keys import new_key_entry, parse_keys
from encryption.server import Access, CodecServer, TokenError, load_token

TOKEN = "t0k3n-" + "x" * 40
UI = "http://127.0.0.1:8233"
CLEAR = "enc_role_visible_only_decoded"


@pytest.fixture
def server() -> Iterator[CodecServer]:
    codec = EncryptionCodec(parse_keys(new_key_entry("k1")), strict=False)
    running = CodecServer(("127.0.0.1", 0), codec, Access.of(TOKEN, [UI + "/"], max_body_bytes=64 * 1024))
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def ask(
    server: CodecServer, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
    response = conn.getresponse()
    answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    conn.close()
    return answer


def plain_payloads() -> dict[str, Any]:
    data = base64.b64encode(json.dumps({"role": CLEAR}).encode()).decode()
    return {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": data}]}


def encode(server: CodecServer, document: dict[str, Any]) -> dict[str, Any]:
    status, _, body = ask(server, "POST", "/encode", json.dumps(document).encode(), Authorization=f"Bearer {TOKEN}")
    assert 200 == status
    answer: dict[str, Any] = json.loads(body)
    return answer


def test_encode_then_decode_gives_back_the_payloads_with_the_token_in_the_header(server: CodecServer) -> None:
    encoded = encode(server, plain_payloads())
    metadata = encoded["payloads"][0]["metadata"]
    assert ENCODING == base64.b64decode(metadata["encoding"]).decode()
    assert b"k1" == base64.b64decode(metadata[KEY_ID_METADATA])
    assert CLEAR.encode() not in base64.b64decode(encoded["payloads"][0]["data"])

    status, headers, body = ask(
        server, "POST", "/decode", json.dumps(encoded).encode(), Authorization=f"Bearer {TOKEN}", X_Namespace="default"
    )
    assert (200, "application/json") == (status, headers["content-type"])
    assert plain_payloads() == json.loads(body)


def test_the_token_may_be_the_path_segment_before_the_action_as_the_dev_web_ui_sends_it(server: CodecServer) -> None:
    """What `--ui-codec-endpoint http://…/TOKEN` makes the UI call (it appends /decode and a query)."""
    body = json.dumps(encode(server, plain_payloads())).encode()
    status, _, answer = ask(server, "POST", f"/{TOKEN}/decode?preserveStorageRefs=true", body)
    assert 200 == status
    assert plain_payloads() == json.loads(answer)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/decode", {}),
        ("/decode", {"Authorization": "Bearer wrong-" + "x" * 40}),
        ("/decode", {"Authorization": TOKEN}),  # not the Bearer scheme
        (f"/{TOKEN[:-1]}/decode", {}),
        (f"/{TOKEN}/x/decode", {}),  # the token must be right before the action
    ],
)
def test_without_the_right_token_the_answer_is_401_and_holds_nothing_of_the_payloads(
    server: CodecServer, path: str, headers: dict[str, str]
) -> None:
    body = json.dumps(encode(server, plain_payloads())).encode()
    status, answered, answer = ask(server, "POST", path, body, **headers)
    assert 401 == status
    assert "Bearer" == answered["www-authenticate"]
    assert {"error": "a valid token is required"} == json.loads(answer)


def test_browsers_may_read_answers_from_the_ui_origin_only(server: CodecServer) -> None:
    body = json.dumps(plain_payloads()).encode()
    _, from_ui, _ = ask(server, "POST", f"/{TOKEN}/decode", body, Origin=UI)
    _, elsewhere, _ = ask(server, "POST", f"/{TOKEN}/decode", body, Origin="http://evil.example")
    assert UI == from_ui["access-control-allow-origin"]
    assert "Origin" == from_ui["vary"]
    assert not any(name.startswith("access-control-") for name in elsewhere)


def test_a_preflight_from_the_ui_is_answered_without_a_token_and_others_are_refused(server: CodecServer) -> None:
    asking = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
    status, headers, body = ask(server, "OPTIONS", f"/{TOKEN}/decode", Origin=UI, **asking)
    assert (204, b"") == (status, body)
    assert UI == headers["access-control-allow-origin"]
    assert "POST, OPTIONS" == headers["access-control-allow-methods"]
    assert "Authorization, Content-Type, X-Namespace" == headers["access-control-allow-headers"]

    status, headers, _ = ask(server, "OPTIONS", "/decode", Origin="http://127.0.0.1:9999", **asking)
    assert 403 == status
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON"),
        (b"[1, 2]", 'the body is not {"payloads": [...]}'),
        (b'{"payloads": {"a": 1}}', 'the body is not {"payloads": [...]}'),
        (b'{"payloads": [{"data": 5}]}', "the body is not the proto-JSON of Payloads"),
        (b'{"payloads": [], "extra": 1}', "the body is not the proto-JSON of Payloads"),
    ],
)
def test_a_malformed_body_gets_400_naming_the_problem_never_a_traceback(
    server: CodecServer, body: bytes, problem: str
) -> None:
    status, _, answer = ask(server, "POST", "/decode", body, Authorization=f"Bearer {TOKEN}")
    assert 400 == status
    assert json.loads(answer)["error"].startswith(problem)
    assert b"Traceback" not in answer


def test_an_oversized_or_unsized_body_is_refused_before_it_is_read(server: CodecServer) -> None:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    conn.putrequest("POST", "/decode")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", str(64 * 1024 + 1))
    conn.endheaders()  # the body never comes: the answer must not wait for it
    response = conn.getresponse()
    assert (413, "close") == (response.status, response.getheader("Connection"))
    conn.close()

    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    conn.putrequest("POST", "/decode", skip_accept_encoding=True)
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    assert 411 == conn.getresponse().status
    conn.close()


@pytest.mark.parametrize("length", ["²", "9" * 5000], ids=["a digit that is not ASCII", "5000 digits"])
def test_a_content_length_that_is_no_plain_number_gets_411_not_a_dropped_connection(
    server: CodecServer, length: str
) -> None:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    conn.putrequest("POST", "/decode")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", length)
    conn.endheaders()
    assert 411 == conn.getresponse().status
    conn.close()


def test_other_paths_and_methods_are_refused(server: CodecServer) -> None:
    assert 404 == ask(server, "POST", "/status", b"{}", Authorization=f"Bearer {TOKEN}")[0]
    status, headers, _ = ask(server, "GET", f"/{TOKEN}/decode")
    assert (405, "POST, OPTIONS") == (status, headers["allow"])


def test_a_payload_the_server_cannot_decrypt_comes_back_as_it_was_marked_with_why(server: CodecServer) -> None:
    """One payload under a retired key does not hide the rest of a history from its reader."""
    stranger = EncryptionCodec(parse_keys(new_key_entry("retired")))
    sealed = stranger.encrypt(Payload(metadata={"encoding": b"json/plain"}, data=b'"x"'))
    document = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                "data": base64.b64encode(sealed.data).decode(),
            },
            *plain_payloads()["payloads"],
        ]
    }
    status, _, body = ask(server, "POST", "/decode", json.dumps(document).encode(), Authorization=f"Bearer {TOKEN}")
    kept, plain = json.loads(body)["payloads"]
    assert 200 == status
    assert document["payloads"][0]["data"] == kept["data"]
    assert b"key id 'retired' is not in this keyring (it has k1)" == base64.b64decode(kept["metadata"][ERROR_METADATA])
    assert plain_payloads()["payloads"][0] == plain


def test_the_log_names_requests_without_their_token(server: CodecServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="opsctl.codec_server")
    ask(server, "POST", f"/{TOKEN}/decode", json.dumps(plain_payloads()).encode(), X_Namespace="default")
    ask(server, "GET", f"/{TOKEN}/decode")
    assert any("POST decode → 200" in record.getMessage() for record in caplog.records)
    assert not any(TOKEN in record.getMessage() for record in caplog.records)


def test_a_token_comes_from_the_environment_or_a_file_and_must_be_long_and_url_safe(tmp_path: Any) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert TOKEN == load_token(str(path))
    assert "e" * 32 == load_token(str(path), inline="e" * 32)
    for bad in ("short", "has space " + "x" * 40, "slash/" + "x" * 40):
        path.write_text(bad)
        with pytest.raises(TokenError, match="not 32-512 URL-safe characters"):
            load_token(str(path))
    with pytest.raises(TokenError, match="none is configured"):
        load_token("")
