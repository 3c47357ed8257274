"""A run started raw with an input that is no RunInput fails at once, saying why: never a run
whose every workflow task fails (it would sit "running" for good, retried with a growing backoff).

The starts are what `temporal workflow start --input …` sends, through the Temporal client.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from contracts.failures import INVALID_WORKFLOW_INPUT
from contracts.request import parse_request
from contracts.run import RunInput
from tests.integration.test_rotate_credential import rotation_request
from worker.main import worker_options

CALLERS_VALUE = "a-value-the-caller-sent"
REQUEST = RunInput(request=parse_request(rotation_request("nobody", "gate/nobody"))).model_dump(mode="json")
METADATA = REQUEST["request"]["metadata"]


def raw(encoding: bytes, data: bytes) -> RawValue:
    return RawValue(Payload(metadata={"encoding": encoding}, data=data))


MALFORMED: dict[str, tuple[list[Any], str]] = {
    "a known field of the wrong shape": ([{**REQUEST, "continuation": {"bogus": CALLERS_VALUE}}], "continuation.state"),
    "a made-up key, quoted": (
        [{**REQUEST, "request": {**REQUEST["request"], "metadata": {**METADATA, "labels": {"x\n\nAPPROVED": 5}}}}],
        "request.metadata.labels.'x\\n\\nAPPROVED': Input should be a valid string",
    ),
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
    assert (INVALID_WORKFLOW_INPUT, True) == (cause.type, cause.non_retryable)
    assert said in cause.message, cause.message
    assert CALLERS_VALUE not in cause.message  # what is wrong, not the caller's values
    assert "\n" not in cause.message  # nor lines of theirs in the Web UI
    events = [event async for event in handle.fetch_history_events()]
    assert not any(event.HasField("workflow_task_failed_event_attributes") for event in events)
    assert not any(event.HasField("activity_task_scheduled_event_attributes") for event in events)


@workflow.defn(name="ContinuesWithAnUnreadableInput", sandboxed=False)
class ContinuesWithAnUnreadableInput:
    """Stands for a run whose own continue-as-new input this worker cannot read (a newer worker wrote it)."""

    @workflow.run
    async def run(self, input: RunInput) -> str:
        if not workflow.info().continued_run_id:
            body = input.model_dump(mode="json")
            body["continuation"] = {"state": {"phase": "a-phase-of-a-newer-worker"}, "settings": {}}
            workflow.continue_as_new(body)
        return "read"


async def test_a_continued_run_whose_input_does_not_decode_waits_for_a_worker_that_reads_it(client: Client) -> None:
    """Its own input, not a caller's: the workflow task fails and is retried; the run is not failed for good."""
    queue = f"continues-{uuid.uuid4().hex[:8]}"
    handle = None
    async with Worker(client, task_queue=queue, workflows=[ContinuesWithAnUnreadableInput], **worker_options()):
        started = await client.start_workflow(
            ContinuesWithAnUnreadableInput.run, RunInput.model_validate(REQUEST), id=queue, task_queue=queue
        )
        handle = client.get_workflow_handle(started.id)  # the latest run: the one continued as new
        for _ in range(100):
            events = [event async for event in handle.fetch_history_events()]
            failed = [e for e in events if e.HasField("workflow_task_failed_event_attributes")]
            if failed:
                break
            await asyncio.sleep(0.2)
        assert failed, "the continued run's task did not fail"
        assert "does not decode here" in failed[0].workflow_task_failed_event_attributes.failure.message
        assert "its continue-as-new" in failed[0].workflow_task_failed_event_attributes.failure.message
        assert WorkflowExecutionStatus.RUNNING == (await handle.describe()).status
        await handle.terminate("test over")
