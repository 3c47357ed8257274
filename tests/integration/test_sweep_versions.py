"""Both versions of SweepStaleVolumes on the real stack: moto's EC2, the Temporal dev server, the CLI.

A v2 sweep plans and applies with several protecting tags; a v1 sweep still does, and plans
exactly what its v2 conversion plans; applying the conversion of a v1 request attaches to the
v1 run (one request, one run).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client

from client.devstack import Stack
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Mode, RunInput, RunState
from tests.client.conftest import opsctl, opsctl_env
from tests.integration.test_sweep_volumes import existing, make_volumes, sweep_worker
from worker.settings import WorkerSettings
from workflows.sweep_volumes import SweepStaleVolumes


@pytest.fixture
async def queue(client: Client, worker_settings: WorkerSettings) -> AsyncIterator[str]:
    async with sweep_worker(client, worker_settings) as name:
        yield name


def v1_spec(scope: str, **spec: Any) -> dict[str, Any]:
    return {"olderThanDays": 0, "tagFilters": {"sweep-test": scope}, "keepTag": "keep", **spec}


def v2_spec(scope: str, exclude: list[str], **spec: Any) -> dict[str, Any]:
    return {"selector": {"olderThanDays": 0, "tags": {"sweep-test": scope}, "excludeTags": exclude}, **spec}


def sweep(api_version: str, spec: dict[str, Any], key: str, mode: Mode = Mode.APPLY) -> RunInput:
    request = parse_request(
        {
            "apiVersion": api_version,
            "kind": "SweepStaleVolumes",
            "metadata": {"environment": "dev", "requester": "alice", "idempotencyKey": key},
            "spec": spec,
        }
    )
    return RunInput(request=request, mode=mode)


async def run(client: Client, queue: str, input: RunInput) -> RunState:
    workflow_id = input.request.workflow_id() + ("-plan" if input.mode is Mode.DRY_RUN else "")
    return await client.execute_workflow(
        SweepStaleVolumes.run, input, id=workflow_id, task_queue=queue, result_type=RunState
    )


async def test_a_v2_sweep_plans_and_applies_sparing_every_exclude_tag(stack: Stack, client: Client, queue: str) -> None:
    scope = uuid.uuid4().hex[:8]
    stale = make_volumes(stack, scope, 3)
    [kept] = make_volumes(stack, scope, 1, keep="yes")
    [retained] = make_volumes(stack, scope, 1, retain="yes")
    spec = v2_spec(scope, ["keep", "retain"], batchSize=2, snapshotFirst=True)

    planned = await run(client, queue, sweep("opsctl/v2", spec, scope, Mode.DRY_RUN))
    applied = await run(client, queue, sweep("opsctl/v2", spec, scope))

    assert Phase.PLANNED == planned.phase, planned.failure
    assert planned.plan is not None
    groups = {step.reason: step.resource_ids for step in planned.plan.actions}
    assert {
        "available, created more than 0 days ago, no 'keep' or 'retain' tag": sorted(stale),
        "skipped: has the 'keep' tag": [kept],
        "skipped: has the 'retain' tag": [retained],
    } == groups
    assert Phase.SUCCEEDED == applied.phase, applied.failure
    assert planned.plan_hash == applied.plan_hash
    assert all(check.passed for check in applied.checks), applied.checks
    assert {kept, retained} == existing(stack, scope)
    assert (2, 2) == (applied.progress.done, applied.progress.total)
    assert [] == [w for w in applied.warnings if "deprecated" in w]


async def test_a_v1_sweep_still_applies_and_records_its_deprecation(stack: Stack, client: Client, queue: str) -> None:
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 3)
    [kept] = make_volumes(stack, scope, 1, keep="yes")

    result = await run(client, queue, sweep("opsctl/v1", v1_spec(scope, batchSize=2), scope))

    assert Phase.SUCCEEDED == result.phase, result.failure
    assert "opsctl/v1" == result.request.api_version, "the run records the request as it was written"
    assert {kept} == existing(stack, scope)
    assert all(check.passed for check in result.checks), result.checks
    assert any("stops being accepted on 2027-06-30" in w for w in result.warnings), result.warnings


async def test_a_v1_sweep_and_its_v2_conversion_plan_the_same_plan(stack: Stack, client: Client, queue: str) -> None:
    """Word for word, so the same hash: an approval given to a v1 plan holds when a v2 worker re-plans it."""
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 4)
    make_volumes(stack, scope, 1, keep="yes")

    v1 = await run(client, queue, sweep("opsctl/v1", v1_spec(scope), f"{scope}-1", Mode.DRY_RUN))
    v2 = await run(client, queue, sweep("opsctl/v2", v2_spec(scope, ["keep"]), f"{scope}-2", Mode.DRY_RUN))

    assert (Phase.PLANNED, Phase.PLANNED) == (v1.phase, v2.phase), (v1.failure, v2.failure)
    assert v1.plan == v2.plan
    assert v1.plan_hash == v2.plan_hash


async def test_applying_the_conversion_of_a_v1_request_attaches_to_its_run(
    stack: Stack, task_queue: str, tmp_path: Path
) -> None:
    """Through the CLI: apply v1, convert it, apply the v2 document — one run, nothing started twice."""
    scope = uuid.uuid4().hex[:8]
    make_volumes(stack, scope, 2)
    env = opsctl_env(stack, task_queue, tmp_path)
    v1 = tmp_path / "v1.yaml"
    document = {"apiVersion": "opsctl/v1", "kind": "SweepStaleVolumes", "metadata": {"environment": "dev"}}
    v1.write_text(yaml.safe_dump({**document, "spec": v1_spec(scope)}))

    first = await opsctl(env, "apply", "-f", str(v1), "--wait", "--timeout", "120", "-o", "json")
    converted = await opsctl(env, "convert", "-f", str(v1))
    v2 = tmp_path / "v2.yaml"
    v2.write_text(converted.stdout)
    second = await opsctl(env, "apply", "-f", str(v2), "--wait", "--timeout", "120", "-o", "json")

    assert 0 == first.code, first.stderr
    assert "warning: SweepStaleVolumes opsctl/v1 is deprecated" in first.stderr
    assert 0 == second.code, second.stderr
    assert f"attached to {first.json()['workflow_id']}" in second.stderr
    assert first.json()["workflow_id"] == second.json()["workflow_id"]
    assert first.json()["first_run_id"] == second.json()["first_run_id"]
    assert "opsctl/v1" == second.json()["request"]["apiVersion"], "the run is the v1 one"
    assert set() == existing(stack, scope)
