"""Starting a run through Temporal's HTTP API, before the SDK is imported.

Importing the Temporal SDK costs more CPU (about 0.4 s here) than `apply --wait` may add to its
run. Started over HTTP, the run is already going while the CLI imports the SDK to follow it.
What is sent is the SDK client's own start, field by field (`client.runs.start_run`): the input as
its pydantic JSON converter writes it, sealed with the configured key; the search attributes `list`
filters on; the Web UI's summary and details, sealed too; a duplicate workflow id refused.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from urllib.parse import quote

from pydantic_core import to_json

from client.config import Config
from client.http_runs import HttpApi, ServerError, Unanswered, refused
from client.payloads import Encoder, Payload
from client.payloads import to_json as payload_json
from contracts import markdown
from contracts import search_attributes as sa
from contracts.failures import FailureKind, OpsctlError
from contracts.run import RunInput
from contracts.words import visible

ALREADY_EXISTS = 6  # the gRPC status of a workflow id already started (WorkflowExecutionAlreadyStarted)
# RESOURCE_EXHAUSTED and UNAVAILABLE: asked again, with the same request id (the server starts the run
# once whatever it answered before), for this long at most, as the SDK's client retries them.
RETRIED, RETRY_FOR = (8, 14), 5.0


def start(config: Config, input: RunInput, workflow_id: str, task_queue: str) -> tuple[str, bool]:
    """Start the run: (its run id, True); ("", False) when a run of that id exists already (running
    or closed: attach to it)."""
    api = HttpApi(config.temporal_http_address, config.namespace, config.origins.get("temporal_http_address", ""))
    encoder = Encoder(config.encryption_keys())
    request = input.request
    attributes = sa.at_start(request.kind, request.metadata.environment, request.metadata.requester, input.mode.value)
    body = {
        "workflowType": {"name": request.kind},
        "taskQueue": {"name": task_queue},
        "input": {"payloads": [encoder.json(to_json(input))]},
        "workflowIdReusePolicy": "WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE",
        "workflowIdConflictPolicy": "WORKFLOW_ID_CONFLICT_POLICY_FAIL",
        "searchAttributes": {"indexedFields": {name: _keyword(value) for name, value in attributes.items()}},
        "userMetadata": {
            "summary": encoder.json(to_json(markdown.summary(request))),
            "details": encoder.json(to_json(markdown.request_details(request))),
        },
        "identity": f"{os.getpid()}@{socket.gethostname()}",
        "requestId": str(uuid.uuid4()),
    }
    try:
        answer = _post(api, workflow_id, body)
    except ServerError as exc:
        if exc.code == ALREADY_EXISTS and _already_started(exc.details):
            return "", False
        raise refused(exc) from None
    except Unanswered as exc:  # sent, and no answer: it may have started
        raise _maybe_started(exc.message, workflow_id) from None
    finally:
        api.close()
    run_id = answer.get("runId")
    return (run_id if isinstance(run_id, str) else ""), True


def _post(api: HttpApi, workflow_id: str, body: dict[str, object]) -> dict[str, object]:
    """The start's answer. A retry has what is left of RETRY_FOR (at least a second) for its answer."""
    path = f"/workflows/{quote(workflow_id, safe='')}"
    delay, give_up, timeout = 0.1, time.monotonic() + RETRY_FOR, None
    while True:
        try:
            return api.call("POST", path, body=body, timeout=timeout)
        except ServerError as exc:
            if exc.code not in RETRIED:
                raise
            if time.monotonic() + delay > give_up:
                raise _maybe_started(
                    f"Temporal could not take the start ({visible(exc.message)})", workflow_id
                ) from None
        except OpsctlError as exc:  # unreachable after a first attempt reached it: that one may have started it
            if timeout is None:
                raise
            raise _maybe_started(exc.message, workflow_id) from None
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
        timeout = round(max(1.0, give_up - time.monotonic()), 1)


def _maybe_started(why: str, workflow_id: str) -> OpsctlError:
    return OpsctlError(
        FailureKind.DEPENDENCY_UNAVAILABLE,
        f"{why}; run {workflow_id} may have started",
        hint=f"`opsctl status {workflow_id}` says; applying the same document again attaches to it if it did",
    )


def _keyword(value: str) -> dict[str, object]:
    """A Keyword search attribute's payload, as the SDK writes it (never sealed: the server indexes it)."""
    return payload_json(Payload({"encoding": b"json/plain", "type": b"Keyword"}, json.dumps(value).encode()))


def _already_started(details: list[object]) -> bool:
    """Is ALREADY_EXISTS the workflow id's (as the SDK tells), not something else that exists?"""
    return any(
        isinstance(detail, dict) and str(detail.get("@type", "")).endswith("WorkflowExecutionAlreadyStartedFailure")
        for detail in details
    )
