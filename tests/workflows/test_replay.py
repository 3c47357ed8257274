"""Committed histories must replay on the current workflow code: a guard for determinism.

A failure here means a change would break runs already in flight. Guard the change
with `workflow.patched`, then record new histories (tests/workflows/record_histories.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.rotate_credential import RotateDbCredential

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay() -> None:
    assert 3 <= len(HISTORIES)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_committed_history_replays_without_nondeterminism(path: Path) -> None:
    replayer = Replayer(workflows=[RotateDbCredential], data_converter=pydantic_data_converter)
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
