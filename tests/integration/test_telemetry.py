"""Metrics come from a real worker run: what operators scrape is what happened."""

from __future__ import annotations

import asyncio
import re
import urllib.request
import uuid

from temporalio.client import Client

from client.devstack import Stack, free_port, seed_role
from client.runs import decide, start_run, wait_for
from contracts import metrics
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput, RunState
from tests.identities import KEYRING
from tests.integration.test_rotate_credential import rotation_request
from worker import waiting_runs
from worker.converter import DATA_CONVERTER
from worker.main import build_worker
from worker.settings import WorkerSettings
from worker.telemetry import metrics_runtime

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(body: str) -> list[tuple[str, dict[str, str], float]]:
    """A Prometheus text exposition as (name, labels, value) triples."""
    found = []
    for line in body.splitlines():
        matched = _SAMPLE.match(line)
        if matched and not line.startswith("#"):
            labels = dict(_LABEL.findall(matched["labels"] or ""))
            found.append((matched["name"], labels, float(matched["value"])))
    return found


def value(scraped: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The one sample of `name` with these labels (among others)."""
    [found] = [v for n, have, v in scraped if n == name and labels.items() <= have.items()]
    return found


async def test_a_run_s_metrics_are_served_on_the_prometheus_endpoint(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    """Runs started and finished by kind and phase, phases entered, step latencies, failures by error
    class, the approval wait, and the waiting-runs gauges: each with its labels, after real runs."""
    address = f"127.0.0.1:{free_port()}"
    runtime = metrics_runtime(address)
    assert runtime is not None
    client = await Client.connect(stack.temporal_address, data_converter=DATA_CONVERTER, runtime=runtime)
    queue = f"metrics-{uuid.uuid4().hex[:6]}"
    settings = worker_settings.model_copy(
        update={"temporal": worker_settings.temporal.model_copy(update={"task_queue": queue})}
    )
    role, secret = f"m_{uuid.uuid4().hex[:8]}", f"metrics/{uuid.uuid4().hex[:8]}"
    seed_role(stack, role, secret)
    approved = parse_request(rotation_request(role, secret, "prod"))
    missing = parse_request(rotation_request(f"nobody_{uuid.uuid4().hex[:6]}", secret, "dev"))
    async with build_worker(client, settings):
        handle, _ = await start_run(client, approved, task_queue=queue, keys=KEYRING)
        waiting = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)
        await _until_visible(client, queue)
        await waiting_runs.measure(client, runtime.metric_meter, queue)
        decision = DecisionInput(actor="bob", plan_hash=waiting.plan_hash, comment="ok")
        await decide(handle, Decision.APPROVE, decision, keys=KEYRING)
        succeeded: RunState = await handle.result()
        failing, _ = await start_run(client, missing, task_queue=queue, keys=KEYRING)
        failed: RunState = await failing.result()
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://{address}/metrics").read().decode())
    scraped = samples(body)
    prod = {"kind": "RotateDbCredential", "environment": "prod", "task_queue": queue}

    assert (Phase.SUCCEEDED, Phase.FAILED) == (succeeded.phase, failed.phase)
    assert 1 == value(scraped, "opsctl_runs_started", **prod, mode="apply")
    assert 1 == value(scraped, "opsctl_runs_finished", **prod, phase="succeeded")
    assert 1 == value(scraped, "opsctl_runs_finished", environment="dev", task_queue=queue, phase="failed")
    assert 1 == value(scraped, "opsctl_phases_entered", **prod, phase="awaiting_approval")
    assert 1 == value(scraped, "opsctl_approval_wait_seconds_count", **prod, outcome="approved")
    step = {"kind": "RotateDbCredential", "task_queue": queue, "activity_type": "rotate_credential.promote"}
    assert 1 == value(scraped, "opsctl_step_duration_seconds_count", **step, outcome="ok")
    assert 0 < value(scraped, "opsctl_step_duration_seconds_bucket", **step, outcome="ok", le="+Inf")
    plan = {"kind": "RotateDbCredential", "task_queue": queue, "activity_type": "rotate_credential.plan"}
    assert 1 == value(scraped, "opsctl_step_failures", **plan, error_class="validation", retryable="false")
    assert 1 == value(scraped, "opsctl_runs_waiting", task_queue=queue, phase="awaiting_approval")
    assert 0 == value(scraped, "opsctl_runs_waiting", task_queue=queue, phase="needs_review")
    assert 0 <= value(scraped, "opsctl_runs_waiting_oldest_seconds", task_queue=queue, phase="awaiting_approval")
    assert 0 == value(scraped, "opsctl_approvals_expiring", task_queue=queue, within="1h")
    # every series of contracts.metrics is served (the review wait needs a needs_review: tests/workflows has it)
    review = {f"{metrics.REVIEW_WAIT.name}_{part}" for part in ("bucket", "sum", "count")}
    assert set() == metrics.series_names() - review - {name for name, _, _ in scraped}


async def _until_visible(client: Client, queue: str) -> None:
    """Visibility lags the run by a moment: wait until it lists the run as awaiting approval."""
    query = f"OpsctlPhase = 'awaiting_approval' AND ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
    for _ in range(100):
        if (await client.count_workflows(query)).count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the run never showed in visibility as awaiting approval")


async def test_a_run_for_an_environment_the_worker_does_not_serve_is_labelled_unserved(
    stack: Stack, worker_settings: WorkerSettings
) -> None:
    """The environment is the caller's word (any `^[a-z][a-z0-9-]{0,31}$`): a client that bypasses the
    CLI's policy check must not mint a new series per string it sends."""
    address = f"127.0.0.1:{free_port()}"
    runtime = metrics_runtime(address)
    assert runtime is not None
    client = await Client.connect(stack.temporal_address, data_converter=DATA_CONVERTER, runtime=runtime)
    queue = f"metrics-{uuid.uuid4().hex[:6]}"
    settings = worker_settings.model_copy(
        update={"temporal": worker_settings.temporal.model_copy(update={"task_queue": queue})}
    )
    invented = f"zz-{uuid.uuid4().hex[:8]}"
    request = parse_request(rotation_request("nobody", "metrics/nobody", invented))
    async with build_worker(client, settings):
        handle, _ = await start_run(client, request, task_queue=queue)
        ended: RunState = await handle.result()
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://{address}/metrics").read().decode())
    scraped = samples(body)
    unserved = {"kind": "RotateDbCredential", "environment": metrics.UNSERVED_ENVIRONMENT, "task_queue": queue}

    assert Phase.FAILED == ended.phase
    assert [] == [(name, labels) for name, labels, _ in scraped if labels.get("environment") == invented]
    assert 1 == value(scraped, "opsctl_runs_started", **unserved, mode="apply")
    assert 1 == value(scraped, "opsctl_runs_finished", **unserved, phase="failed")
