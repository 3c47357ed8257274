"""Reading runs through Temporal's HTTP API, with the standard library: `opsctl status` and `list` without the SDK.

The frontend serves its gRPC API as JSON over HTTP too (grpc-gateway: `GET …/workflows/{id}`
describes, `POST …/workflows/{id}/query/{name}` queries, `GET …/workflows/{id}/history` reads
the close event, `GET …/workflows?query=` lists). Importing the SDK costs more than the whole
budget of a `status`, so when `temporal_http_address` is configured (`opsctl dev up` records it)
these two commands read here, through `client.reading` — the same decisions, the same output
as through the SDK (`client.runs`). Every request has a deadline; a server that is not there, not
Temporal, or answers garbage fails with the SDK path's exit codes and hints, never a traceback.

The HTTP API cannot name a run whose id holds a `/` (or is `.` or `..`) in its path: such a run
is read through the SDK (`addressable`).
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import quote, urlencode

from client.config import Config
from client.payloads import Decoder, MalformedPayload, from_json, search_attributes, timestamp
from client.reading import Listed, NoAnswer, Pending, no_run
from contracts.failures import ExitCode, FailureKind, OpsctlError
from contracts.run import RunState

REQUEST_TIMEOUT = 10.0  # seconds for any one request, connecting and reading included
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a listing of 1,000 runs or a 2 MB result, base64, fit many times over
PAGE_SIZE = 1000  # what the SDK's list_workflows asks for per page
NOT_FOUND = 5  # the gRPC status code, as the HTTP API's error bodies carry it
_PREFIX = "WORKFLOW_EXECUTION_STATUS_"
_UNREACHABLE_HINT = "start the embedded stack with `opsctl dev up`, or set OPSCTL_TEMPORAL_ADDRESS"
_REFUSED_HINT = "check the address, the namespace and that the server is healthy"


def addressable(name: str) -> bool:
    """Can the HTTP API's paths name it? grpc-gateway routes before it unescapes: no '/', no dot segments."""
    return "/" not in name and name not in (".", "..")


class Unanswered(OpsctlError):
    """No answer within a request's deadline: the port is open but nobody speaks (exit 4)."""

    def __init__(self, address: str, timeout: float) -> None:
        message = f"cannot reach Temporal's HTTP API at {address}: no answer within {timeout:g}s"
        super().__init__(FailureKind.DEPENDENCY_UNAVAILABLE, message, hint=_UNREACHABLE_HINT)


class TooLarge(http.client.HTTPException):
    """An answer past MAX_RESPONSE_BYTES (it is not read further)."""


class ServerError(Exception):
    """The frontend answered with a gRPC status (its HTTP API's error body: `{"code", "message"}`)."""

    def __init__(self, code: int, message: str, details: list[Any]) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


class HttpApi:
    """JSON requests to one namespace of the frontend's HTTP API, over one kept-alive connection."""

    def __init__(self, address: str, namespace: str, origin: str = "") -> None:
        self.address = address
        self.origin = origin  # where the address came from, for messages
        self.base = f"/api/v1/namespaces/{quote(namespace, safe='')}"
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._connection: http.client.HTTPConnection | None = None

    def call(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The answer's JSON object; ServerError for a gRPC status; OpsctlError (exit 4) for anything else."""
        timeout = REQUEST_TIMEOUT if timeout is None else timeout
        target = f"{self.base}{path}?{urlencode({**(query or {}), 'noPayloadShorthand': ''})}"
        sent = json.dumps(body).encode() if body is not None else None
        deadline = time.monotonic() + timeout
        try:
            status, kind, raw = self._exchange(method, target, sent, headers or {}, deadline)
        except TimeoutError:  # socket.timeout is TimeoutError
            raise Unanswered(self.address, timeout) from None
        except TooLarge as exc:
            raise self.not_temporal(str(exc)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(_reason(exc)) from None
        try:
            answer = json.loads(raw)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise self.not_temporal(f"answered HTTP {status} with {_shown_type(kind)}, not a JSON object")
        if status == 200:
            return answer
        code, message = answer.get("code"), answer.get("message")
        if not isinstance(code, int) or not isinstance(message, str):
            raise self.not_temporal(f"answered HTTP {status} without a gRPC status")
        details = answer.get("details")
        raise ServerError(code, message, details if isinstance(details, list) else [])

    def _exchange(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> tuple[int, str, bytes]:
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more, on a new one
            fresh = self._connection is None
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=_left(deadline))
            connection = self._connection
            try:
                connection.timeout = _left(deadline)
                if connection.sock is not None:
                    connection.sock.settimeout(_left(deadline))
                connection.request(method, target, body=body, headers={"Content-Type": "application/json", **headers})
                response = connection.getresponse()
                return response.status, response.getheader("Content-Type", ""), _read(response, connection, deadline)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh or attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _unreachable(self, reason: str) -> OpsctlError:
        return OpsctlError(
            FailureKind.DEPENDENCY_UNAVAILABLE,
            f"cannot reach Temporal's HTTP API at {self.address}: {reason}",
            hint=_UNREACHABLE_HINT,
        )

    def not_temporal(self, what: str) -> OpsctlError:
        origin = f" (from {self.origin})" if self.origin else ""
        return OpsctlError(
            ExitCode.DEPENDENCY_FAILURE,
            f"the HTTP API at {self.address} {what}: is it Temporal's?",
            hint=f"check temporal_http_address{origin}; OPSCTL_TEMPORAL_HTTP_ADDRESS= (empty) reads through gRPC",
        )


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _read(response: http.client.HTTPResponse, connection: http.client.HTTPConnection, deadline: float) -> bytes:
    """The body, at most MAX_RESPONSE_BYTES, before the deadline: each read waits only for what is left of it,
    so a server trickling bytes is cut off too."""
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
        raise TooLarge(f"announced {int(length):,} bytes, more than the {MAX_RESPONSE_BYTES:,} an answer may be")
    chunks: list[bytes] = []
    size = 0
    while True:
        if connection.sock is not None:
            connection.sock.settimeout(_left(deadline))
        chunk = response.read1(64 * 1024)
        if not chunk:
            response.close()  # read to its end: the kept-alive connection is free for the next request
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise TooLarge(f"sent more than the {MAX_RESPONSE_BYTES:,} bytes an answer may be")
        chunks.append(chunk)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _shown_type(content_type: str) -> str:
    kind = content_type.split(";")[0].strip()
    return f"a {kind!r} body" if kind else "a body"


class HttpRun:
    """One run read through the HTTP API (`client.reading.RunReader`), pinned to the execution it described."""

    def __init__(self, api: HttpApi, decoder: Decoder, workflow_id: str, described: dict[str, Any]) -> None:
        self.api, self.decoder, self.workflow_id = api, decoder, workflow_id
        self._described = described
        info = _object(described, "workflowExecutionInfo")
        self._run_id = str(_object(info, "execution").get("runId", ""))
        self._path = f"/workflows/{quote(workflow_id, safe='')}"

    async def status(self) -> str:
        status = _object(self._described, "workflowExecutionInfo").get("status", "")
        name = status.removeprefix(_PREFIX).lower() if isinstance(status, str) else ""
        return "" if name == "unspecified" else name

    async def result(self) -> RunState:
        completed = _object(self._close_event(), "workflowExecutionCompletedEventAttributes")
        payloads = _object(completed, "result").get("payloads")
        if not isinstance(payloads, list) or not payloads:
            raise self.api.not_temporal("sent a close event without the run's result")
        return self._model(payloads[0])

    async def failure(self) -> tuple[str, str]:
        failed = _object(self._close_event(), "workflowExecutionFailedEventAttributes")
        if "failure" not in failed:
            return "", ""
        failure = _object(failed, "failure")
        kind = _object(failure, "applicationFailureInfo").get("type", "")
        return (kind if isinstance(kind, str) else ""), self._failure_message(failure)

    def _close_event(self) -> dict[str, Any]:
        query = {"execution.runId": self._run_id, "historyEventFilterType": "HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT"}
        events = _object(self._call("GET", f"{self._path}/history", query), "history").get("events")
        last = events[-1] if isinstance(events, list) and events else {}
        return last if isinstance(last, dict) else {}

    async def query_state(self, timeout: float) -> RunState:
        # The deadline travels as gRPC's header (grpc-gateway honours it): the server gives up in time and
        # says why; the socket waits a little longer, for that answer.
        headers = {"Grpc-Timeout": f"{max(1, round(timeout * 1000))}m"}
        body = {"execution": {"workflowId": self.workflow_id, "runId": self._run_id}}
        try:
            answer = self.api.call("POST", f"{self._path}/query/state", body=body, timeout=timeout + 5, headers=headers)
        except ServerError as exc:
            raise NoAnswer(exc.message) from exc
        except Unanswered as exc:
            raise NoAnswer("Timeout expired") from exc  # what the SDK says when its own deadline passes
        if "queryRejected" in answer:
            raise OpsctlError(ExitCode.UNEXPECTED, f"run {self.workflow_id} rejected the state query")
        payloads = _object(answer, "queryResult").get("payloads")
        if not isinstance(payloads, list) or not payloads:
            raise self.api.not_temporal("answered the query without a payload")
        return self._model(payloads[0])

    async def pending(self) -> list[Pending]:
        activities = self._described.get("pendingActivities", [])
        return [self._pending(activity) for activity in (activities if isinstance(activities, list) else [])]

    def _pending(self, activity: Any) -> Pending:
        activity = activity if isinstance(activity, dict) else {}
        payloads = _object(activity, "heartbeatDetails").get("payloads", [])
        attempt = activity.get("attempt", 0)
        return Pending(
            activity_type=str(_object(activity, "activityType").get("name", "")),
            attempt=attempt if isinstance(attempt, int) else 0,
            details=[self._decoded(payload) for payload in (payloads if isinstance(payloads, list) else [])],
            last_failure=self._failure_message(activity["lastFailure"]) if "lastFailure" in activity else "",
        )

    def _failure_message(self, failure: Any) -> str:
        """As the SDK's `decode_failure`: every payload of the failure opened (strictly), then the message —
        the encoded attributes' when the worker encrypted it (the proto's then says "Encoded failure")."""
        failure = failure if isinstance(failure, dict) else {}
        _open_failure(self.decoder, failure)
        message = failure.get("message", "")
        message = message if isinstance(message, str) else ""
        if "encodedAttributes" in failure:
            try:
                attributes = self.decoder.value(from_json(failure["encodedAttributes"]))
            except Exception:  # as the SDK: attributes that do not convert leave the message as it is
                attributes = None
            if isinstance(attributes, dict) and isinstance(attributes.get("message"), str):
                message = attributes["message"]
        default = next((words for info, words in _FAILURE_WORDS.items() if info in failure), "Failure error")
        return message or default

    def _model(self, payload: Any) -> RunState:
        try:
            return self.decoder.model(from_json(payload), RunState)
        except MalformedPayload as exc:
            raise self.api.not_temporal(f"sent a payload that is not one ({exc})") from None

    def _decoded(self, payload: Any) -> Any:
        try:
            return self.decoder.value(from_json(payload))
        except MalformedPayload as exc:
            raise self.api.not_temporal(f"sent a payload that is not one ({exc})") from None

    def _call(self, method: str, path: str, query: dict[str, str]) -> dict[str, Any]:
        try:
            return self.api.call(method, path, query)
        except ServerError as exc:
            raise refused(exc) from None


# The message the SDK gives a failure without one, by the kind of failure (`temporalio.converter`).
_FAILURE_WORDS = {
    "applicationFailureInfo": "Application error",
    "timeoutFailureInfo": "Timeout",
    "canceledFailureInfo": "Cancelled",
    "terminatedFailureInfo": "Terminated",
    "serverFailureInfo": "Server error",
    "activityFailureInfo": "Activity error",
    "childWorkflowExecutionFailureInfo": "Child workflow error",
    "nexusHandlerFailureInfo": "Nexus handler error",
    "nexusOperationExecutionFailureInfo": "Nexus operation error",
}
# Where a failure keeps payloads, as the SDK's codec visits them: at most one of these, then its cause.
_FAILURE_PAYLOADS = (
    ("applicationFailureInfo", "details"),
    ("timeoutFailureInfo", "lastHeartbeatDetails"),
    ("canceledFailureInfo", "details"),
    ("resetWorkflowFailureInfo", "lastHeartbeatDetails"),
)


def _open_failure(decoder: Decoder, failure: dict[str, Any], depth: int = 0) -> None:
    """Open every sealed payload of a failure and its causes: one this keyring cannot open is exit 2."""
    if "encodedAttributes" in failure:
        decoder.plain(from_json(failure["encodedAttributes"]))
    for info, field in _FAILURE_PAYLOADS:
        if info in failure:
            payloads = _object(_object(failure, info), field).get("payloads", [])
            for payload in payloads if isinstance(payloads, list) else []:
                decoder.plain(from_json(payload))
            break
    cause = failure.get("cause")
    if isinstance(cause, dict) and depth < 64:
        _open_failure(decoder, cause, depth + 1)


def _object(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def refused(exc: ServerError) -> OpsctlError:
    """What the CLI says of any other gRPC error (`client.main`: Temporal refused the request, exit 4)."""
    return OpsctlError(ExitCode.DEPENDENCY_FAILURE, f"Temporal refused the request: {exc.message}", hint=_REFUSED_HINT)


class HttpRuns:
    """The runs of the configured namespace, read through the HTTP API (`client.reading.Runs`)."""

    def __init__(self, config: Config) -> None:
        origin = config.origins.get("temporal_http_address", "")
        self.api = HttpApi(config.temporal_http_address, config.namespace, origin)
        self.decoder = Decoder(config.encryption_keys())

    async def reader(self, workflow_id: str) -> HttpRun:
        try:
            described = self.api.call("GET", f"/workflows/{quote(workflow_id, safe='')}")
        except ServerError as exc:
            if exc.code == NOT_FOUND and exc.details:  # the server's NotFound (run or namespace), not a route's
                raise no_run(workflow_id) from None
            raise refused(exc) from None
        return HttpRun(self.api, self.decoder, workflow_id, described)

    async def listing(self, query: str, limit: int) -> list[Listed]:
        listed: list[Listed] = []
        token = ""
        asked_for: set[str] = set()  # a page token handed out twice would page forever
        while len(listed) < limit:
            asked = {"query": query, "pageSize": str(min(PAGE_SIZE, limit))}
            try:
                page = self.api.call("GET", "/workflows", asked | ({"nextPageToken": token} if token else {}))
            except ServerError as exc:
                raise refused(exc) from None
            executions = page.get("executions", [])
            for execution in executions if isinstance(executions, list) else []:
                listed.append(_listed(self.api, execution))
                if len(listed) == limit:
                    break
            token = page.get("nextPageToken", "")
            if not token or not isinstance(token, str):
                break
            if token in asked_for:
                raise self.api.not_temporal("answered with a page token it had given before")
            asked_for.add(token)
        return listed


def _listed(api: HttpApi, execution: Any) -> Listed:
    try:
        return Listed(
            workflow_id=str(_object(execution, "execution").get("workflowId", "")),
            workflow_type=str(_object(execution, "type").get("name", "")),
            start_time=timestamp(_object({"e": execution}, "e").get("startTime")),
            attributes=search_attributes(_object(execution, "searchAttributes").get("indexedFields")),
        )
    except (MalformedPayload, ValueError) as exc:
        raise api.not_temporal(f"listed a run that is not one ({exc})") from None
