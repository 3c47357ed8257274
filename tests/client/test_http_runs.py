"""The HTTP reader against servers that misbehave: each failure is an exit code and a hint, never a traceback.

`opsctl` runs in this process (`client.main.run`) against a small HTTP server of the test's making,
so a test can shorten a deadline or a size limit; nothing here needs Temporal.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from client import http_runs
from client.config import KEYS
from client.devstack import free_port
from client.main import run

Answer = tuple[int, str, bytes]  # status, content type, body


class FakeApi:
    """An HTTP server answering every request with `answer(method, path)`; it records the raw paths asked."""

    def __init__(self) -> None:
        self.answer: Callable[[str, str], Answer] = lambda method, path: (200, "application/json", b"{}")
        self.paths: list[str] = []
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections alive, as Temporal's frontend does

            def _reply(self) -> None:
                outer.paths.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(self.rfile.read(length))
                status, kind, body = outer.answer(self.command, self.path)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply  # http.server calls do_<METHOD>

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (a test's deadline) before the answer was written

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    fake.close()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Point opsctl at an HTTP address (and a gRPC address where nothing listens): no file, no stack, no keys."""
    for key in [*KEYS, "config", "codec_keys"]:
        monkeypatch.delenv(f"OPSCTL_{key.upper()}", raising=False)
    monkeypatch.setenv("OPSCTL_CONFIG", "")
    monkeypatch.setenv("OPSCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)

    def point(http_address: str) -> None:
        monkeypatch.setenv("OPSCTL_TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
        monkeypatch.setenv("OPSCTL_TEMPORAL_HTTP_ADDRESS", http_address)

    return point


def opsctl(*argv: str) -> tuple[int, dict[str, Any], str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run([*argv, "-o", "json"], stdout=stdout, stderr=stderr)
    assert "Traceback" not in stderr.getvalue()
    return code, json.loads(stdout.getvalue()), stderr.getvalue()


def grpc_status(code: int, message: str, *details: str) -> bytes:
    return json.dumps({"code": code, "message": message, "details": [{"@type": d} for d in details]}).encode()


NOT_FOUND = "type.googleapis.com/temporal.api.errordetails.v1.NotFoundFailure"
UNREACHABLE_HINT = "start the embedded stack with `opsctl dev up`, or set OPSCTL_TEMPORAL_ADDRESS"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((500, "text/html", b"<html><body>proxy error</body></html>"), "answered HTTP 500 with a 'text/html' body"),
        ((200, "application/json", b'{"executions": ['), "answered HTTP 200 with a 'application/json' body"),
        ((200, "application/json", b"[1, 2, 3]"), "not a JSON object"),
        ((503, "application/json", b'{"error": "busy"}'), "answered HTTP 503 without a gRPC status"),
        ((200, "application/json", b'{"executions": [{"startTime": "yesterday"}]}'), "listed a run that is not one"),
    ],
    ids=["500 html", "truncated json", "json array", "no grpc status", "garbage run"],
)
def test_a_server_that_is_not_temporal_is_exit_4_naming_the_http_address(
    api: FakeApi, env: Callable[[str], None], answer: Answer, said: str
) -> None:
    env(api.address)
    api.answer = lambda *_: answer
    code, data, _ = opsctl("list")
    assert 4 == code
    assert said in data["error"]["message"]
    assert "temporal_http_address" in data["error"]["hint"]


def test_a_missing_run_is_exit_2_but_a_missing_route_is_not(api: FakeApi, env: Callable[[str], None]) -> None:
    """The server's NotFound names the run; grpc-gateway's own 404 (no details) says nothing about it."""
    env(api.address)
    api.answer = lambda *_: (404, "application/json", grpc_status(5, "workflow not found for ID: x", NOT_FOUND))
    code, data, _ = opsctl("status", "x")
    assert (2, "no run 'x'", "list runs with `opsctl list`") == (
        code,
        data["error"]["message"],
        data["error"]["hint"],
    )
    api.answer = lambda *_: (404, "application/json", grpc_status(5, "Not Found"))
    code, data, _ = opsctl("status", "x")
    assert (4, "Temporal refused the request: Not Found") == (code, data["error"]["message"])


def test_nothing_listening_is_exit_4_with_the_sdk_path_s_hint(env: Callable[[str], None]) -> None:
    address = f"127.0.0.1:{free_port()}"
    env(address)
    for argv in (("status", "x"), ("list",)):
        code, data, _ = opsctl(*argv)
        assert (4, UNREACHABLE_HINT) == (code, data["error"]["hint"])
        assert f"cannot reach Temporal's HTTP API at {address}" in data["error"]["message"]
        assert "dependency_unavailable" == data["error"]["kind"]


def test_a_port_that_never_answers_times_out(env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """It accepts the connection (the kernel does) and says nothing: the request's deadline ends it."""
    monkeypatch.setattr(http_runs, "REQUEST_TIMEOUT", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        env(f"127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        code, data, _ = opsctl("status", "x")
    assert time.monotonic() - started < 5
    assert (4, UNREACHABLE_HINT) == (code, data["error"]["hint"])
    assert data["error"]["message"].endswith("no answer within 0.5s")


def test_a_server_that_trickles_its_answer_is_cut_off_at_the_deadline(
    env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_runs, "REQUEST_TIMEOUT", 1.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def trickle() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                )
                for _ in range(50):  # a byte every 0.1 s: each read is quick, the whole never ends
                    try:
                        connection.sendall(b" ")
                    except OSError:
                        return
                    time.sleep(0.1)

        threading.Thread(target=trickle, daemon=True).start()
        env(f"127.0.0.1:{server.getsockname()[1]}")
        started = time.monotonic()
        code, data, _ = opsctl("list")
    assert time.monotonic() - started < 4
    assert (4, "no answer within 1s") == (code, data["error"]["message"].rpartition(": ")[2])


def test_a_huge_answer_is_not_read_past_the_limit(
    api: FakeApi, env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_runs, "MAX_RESPONSE_BYTES", 1000)
    env(api.address)
    api.answer = lambda *_: (200, "application/json", b'{"executions": []' + b" " * 5000 + b"}")
    code, data, _ = opsctl("list")
    assert 4 == code
    assert "more than the 1,000 an answer may be" in data["error"]["message"]


@pytest.mark.parametrize(
    ("run_id", "path"),
    [
        ("a b", "a%20b"),
        ("q?x=1&y#z", "q%3Fx%3D1%26y%23z"),
        ("100%", "100%25"),
        ("pct%2F41", "pct%252F41"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("RUN:note:1", "RUN%3Anote%3A1"),
    ],
)
def test_a_run_id_is_one_percent_encoded_path_segment(
    api: FakeApi, env: Callable[[str], None], run_id: str, path: str
) -> None:
    env(api.address)
    api.answer = lambda *_: (404, "application/json", grpc_status(5, "workflow not found", NOT_FOUND))
    code, _, _ = opsctl("status", run_id)
    assert 2 == code
    assert [f"/api/v1/namespaces/default/workflows/{path}?noPayloadShorthand="] == api.paths


@pytest.mark.parametrize("run_id", ["a/b", ".", ".."])
def test_a_run_id_no_path_can_name_is_read_through_the_sdk(
    api: FakeApi, env: Callable[[str], None], run_id: str
) -> None:
    env(api.address)
    code, data, _ = opsctl("status", run_id)
    assert [] == api.paths  # the HTTP API was never asked
    assert 4 == code
    assert data["error"]["message"].startswith("cannot reach Temporal at 127.0.0.1:")  # the SDK's words


def test_without_an_http_address_status_and_list_use_the_sdk(
    api: FakeApi, env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI machine that configured no HTTP port reads as before."""
    env(api.address)
    monkeypatch.setenv("OPSCTL_TEMPORAL_HTTP_ADDRESS", "")
    for argv in (("status", "x"), ("list",)):
        code, data, _ = opsctl(*argv)
        assert (4, UNREACHABLE_HINT) == (code, data["error"]["hint"])
        assert data["error"]["message"].startswith("cannot reach Temporal at 127.0.0.1:")
    assert [] == api.paths


def test_a_query_nobody_answers_is_exit_4_as_through_the_sdk(api: FakeApi, env: Callable[[str], None]) -> None:
    """The server's deadline answer (504, DEADLINE_EXCEEDED) is the run not answering, with its hint."""
    env(api.address)
    running = {
        "workflowExecutionInfo": {
            "execution": {"workflowId": "x", "runId": "r1"},
            "status": "WORKFLOW_EXECUTION_STATUS_RUNNING",
        }
    }

    def answer(method: str, path: str) -> Answer:
        if method == "POST":
            return 504, "application/json", grpc_status(4, "query timed out before a worker could process it")
        return 200, "application/json", json.dumps(running).encode()

    api.answer = answer
    code, data, _ = opsctl("status", "x")
    assert (4, "run x did not answer within 5s (query timed out before a worker could process it)") == (
        code,
        data["error"]["message"],
    )
    assert "is one polling its task queue?" in data["error"]["hint"]
    assert api.paths[1].startswith("/api/v1/namespaces/default/workflows/x/query/state?")


@pytest.mark.parametrize(
    ("status", "said"),
    [("WORKFLOW_EXECUTION_STATUS_TERMINATED", "ended as terminated"), ("", "ended as unknown")],
)
def test_a_run_that_ended_outside_opsctl_is_exit_1(
    api: FakeApi, env: Callable[[str], None], status: str, said: str
) -> None:
    env(api.address)
    described = {"workflowExecutionInfo": {"execution": {"workflowId": "x", "runId": "r"}, "status": status}}
    api.answer = lambda *_: (200, "application/json", json.dumps(described).encode())
    code, data, _ = opsctl("status", "x")
    assert (1, f"run x {said}") == (code, data["error"]["message"])


def test_a_server_that_hands_out_the_same_page_token_again_is_exit_4_not_a_loop(
    api: FakeApi, env: Callable[[str], None]
) -> None:
    """Every request has a deadline; the listing as a whole ends too."""
    env(api.address)
    page = json.dumps({"executions": [], "nextPageToken": "YWJj"}).encode()
    api.answer = lambda *_: (200, "application/json", page)
    code, data, _ = opsctl("list")
    assert 4 == code
    assert "answered with a page token it had given before" in data["error"]["message"]
    assert 2 == len(api.paths)


def _started(api: FakeApi) -> tuple[int, str, bool]:
    """`http_start.start` of a rotation against `api`: (requests sent, distinct request ids, new)."""
    from client import http_start
    from client.config import load_config
    from contracts.request import parse_request
    from contracts.run import RunInput
    from tests.integration.test_rotate_credential import rotation_request

    request = parse_request(rotation_request("app_user", "app/app_user"))
    _, new = http_start.start(load_config("alice"), RunInput(request=request), request.workflow_id(), "q")
    ids = {json.loads(body)["requestId"] for body in api.bodies}
    return len(api.bodies), ",".join(sorted(ids)), new


def test_a_start_the_server_cannot_take_yet_is_sent_again_with_the_same_request_id(
    api: FakeApi, env: Callable[[str], None]
) -> None:
    """UNAVAILABLE and RESOURCE_EXHAUSTED, as the SDK's client retries them: the request id makes it one start."""
    answers = iter([(503, grpc_status(14, "unavailable")), (429, grpc_status(8, "busy"))])

    def answer(method: str, path: str) -> Answer:
        status, body = next(answers, (200, b'{"runId": "r1", "started": true}'))
        return status, "application/json", body

    api.answer = answer
    env(api.address)
    sent, ids, new = _started(api)
    assert (3, True) == (sent, new)
    assert "," not in ids  # one request id for all three


def test_a_start_that_is_never_answered_says_the_run_may_have_started(
    api: FakeApi, env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(http_runs, "REQUEST_TIMEOUT", 0.5)

    def answer(method: str, path: str) -> Answer:
        time.sleep(2)  # past the deadline: the start may have happened, the answer never came
        return 200, "application/json", b"{}"

    api.answer = answer
    env(api.address)
    document = Path("rotation.yaml")
    document.write_text(
        "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata: {environment: dev}\n"
        "spec: {database: app, role: app_user, secretId: app/app_user}\n"
    )
    code, data, _ = opsctl("apply", "-f", str(document))
    assert 4 == code
    assert "no answer within 0.5s; run RotateDbCredential-dev-" in data["error"]["message"]
    assert data["error"]["message"].endswith("may have started")
    assert "applying the same document again attaches to it" in data["error"]["hint"]


def test_a_start_still_unavailable_when_the_retries_end_says_the_run_may_have_started(
    api: FakeApi, env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from client import http_start

    monkeypatch.setattr(http_start, "RETRY_FOR", 1.0)
    api.answer = lambda method, path: (503, "application/json", grpc_status(14, "unavailable"))
    env(api.address)
    started = time.monotonic()
    with pytest.raises(http_runs.OpsctlError) as refused:
        _started(api)
    assert time.monotonic() - started < 3  # the retries' window, not a request's 10 s more
    assert refused.value.exit_code == 4
    assert refused.value.message.startswith("Temporal could not take the start (unavailable); run ")
    assert refused.value.message.endswith("may have started")
    assert len({json.loads(body)["requestId"] for body in api.bodies}) == 1 < len(api.bodies)
