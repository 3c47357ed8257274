"""Committed histories must replay on the current workflow code: a guard for determinism.

A failure here means a change would break runs already in flight. Guard the change
with `workflow.patched`, then record new histories beside the old ones:
`OPSCTL_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/client/test_examples.py` (real runs of
every example) and `python -m tests.workflows.record_histories` (approval, expiry, review).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from encryption.keys import new_key_entry, parse_keys
from worker.converter import DATA_CONVERTER, data_converter
from worker.main import WORKFLOW_RUNNER, WORKFLOWS
from worker.run_context import RunContextInterceptor
from worker.tracing import RunTracingInterceptor

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_workflow_type_has_a_history_to_replay() -> None:
    recorded = {
        json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        for path in HISTORIES
    }
    assert {workflow.__temporal_workflow_definition.name for workflow in WORKFLOWS} <= recorded


# A worker with encryption on replays the plaintext histories too: runs from before it go on.
CONVERTERS = {"plain": DATA_CONVERTER, "encrypting": data_converter(parse_keys(new_key_entry("replay")))}


def _traced() -> RunTracingInterceptor:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return RunTracingInterceptor(provider.get_tracer("replay"))


@pytest.mark.parametrize("converter", list(CONVERTERS))
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_committed_history_replays_without_nondeterminism(path: Path, converter: str) -> None:
    """... with the interceptors a worker runs (its run context always; the encrypting one also traces)."""
    interceptors = [RunContextInterceptor(), *([_traced()] if converter == "encrypting" else [])]
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=CONVERTERS[converter],
        workflow_runner=WORKFLOW_RUNNER,
        interceptors=interceptors,
    )
    workflow_id = unquote(path.stem.split("@")[0])  # the signatures in a history are bound to its workflow id
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
