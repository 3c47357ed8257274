"""A run started raw with an input that is no RunInput fails at once, saying why: never a run
whose every workflow task fails (it would sit "running" for good, retried with a growing backoff).

The starts are what `temporal workflow start --input …` sends, through the Temporal client.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from contracts.request import parse_request
from contracts.run import RunInput
from tests.integration.test_rotate_credential import rotation_request
from worker.converter import INVALID_INPUT

CALLERS_VALUE = "a-value-the-caller-sent"
REQUEST = RunInput(request=parse_request(rotation_request("nobody", "gate/nobody"))).model_dump(mode="json")


def raw(encoding: bytes, data: bytes) -> RawValue:
    return RawValue(Payload(metadata={"encoding": encoding}, data=data))


MALFORMED: dict[str, tuple[list[Any], str]] = {
    "a known field of the wrong shape": ([{**REQUEST, "continuation": {"bogus": CALLERS_VALUE}}], "continuation.state"),
    "a request that is a number": ([{"request": 5}], "request: Input should be an object"),
    "a JSON string": (["garbage"], "the input: Input should be"),
    "bytes that are not JSON": ([raw(b"json/plain", b"\xff\xfe{not json")], "the input: Invalid JSON"),
    "another encoding": ([raw(b"binary/plain", b"\x00\x01")], "its encoding is 'binary/plain'"),
    "sealed with no key the worker has": ([raw(b"binary/encrypted", b"\x00junk")], "it could not be decrypted ("),
    "no input at all": ([], "started with 0 inputs; it takes 1"),
    "two inputs": ([REQUEST, REQUEST], "started with 2 inputs; it takes 1"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_malformed_raw_start_fails_the_run_at_once(client: Client, task_queue: str, case: str) -> None:
    args, said = MALFORMED[case]
    handle = await client.start_workflow(
        "RotateDbCredential", args=args, id=f"malformed-{uuid.uuid4().hex[:8]}", task_queue=task_queue
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), 20)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert (INVALID_INPUT, True) == (cause.type, cause.non_retryable)
    assert said in cause.message, cause.message
    assert CALLERS_VALUE not in cause.message  # what is wrong, not the caller's values
    events = [event async for event in handle.fetch_history_events()]
    assert not any(event.HasField("workflow_task_failed_event_attributes") for event in events)
    assert not any(event.HasField("activity_task_scheduled_event_attributes") for event in events)
