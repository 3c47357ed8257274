"""Run an opsctl worker: `python -m worker [--settings FILE]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.backfill_table import BackfillActivities
from activities.migrate_schema import MigrateSchemaActivities
from activities.notes import NoteActivities
from activities.policy import PolicyActivities, load_policies
from activities.postgres import Databases
from activities.read_replica import ReadReplicaActivities
from activities.rotate_credential import RotateCredentialActivities
from activities.schedules import ScheduleActivities
from activities.sweep_volumes import SweepVolumesActivities
from encryption.keys import KeysError
from telemetry.export import ExportError
from worker import logs, telemetry, waiting_runs
from worker.converter import WorkflowInputCheck, data_converter
from worker.run_context import RunContextInterceptor
from worker.search_attributes import missing_search_attributes, registration_commands
from worker.settings import WorkerSettings
from workflows.backfill_table import BackfillTable
from workflows.migrate_schema import MigrateSchema
from workflows.policy_probe import PolicyProbe
from workflows.read_replica import CreateReadReplica
from workflows.rotate_credential import RotateDbCredential
from workflows.run_note import RunNote
from workflows.sweep_volumes import SweepStaleVolumes

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

WORKFLOWS = [
    RotateDbCredential,
    SweepStaleVolumes,
    CreateReadReplica,
    BackfillTable,
    MigrateSchema,
    PolicyProbe,
    RunNote,
]


HEARTBEAT_THROTTLE = timedelta(seconds=5)

# The contracts (and the activities' input models, the codec) are data and pure functions: the sandbox
# shares the worker's one copy instead of importing its own, also when a contract imports lazily inside
# a method a workflow calls (two copies of a spec model would not be the same class).
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "contracts", "activities", "encryption", "telemetry"
    )
)


def activity_methods(instance: object) -> list[Callable[..., Any]]:
    """Every @activity.defn method of an activities object, so adding a step needs no wiring."""
    methods = (getattr(instance, name) for name in dir(instance) if not name.startswith("_"))
    return [method for method in methods if hasattr(method, "__temporal_activity_definition")]


def policy_activities(settings: WorkerSettings) -> PolicyActivities:
    policies, source = load_policies(settings.policy_file)
    return PolicyActivities(
        policies,
        source,
        environments=settings.environments,
        search_attributes=settings.search_attributes,
        check_id_reuse=settings.check_id_reuse,
        history_event_limit=settings.history_event_limit,
        retry_window_seconds=settings.retry_window_seconds,
        encrypts=settings.encryption_keys() is not None,
    )


def build_activities(settings: WorkerSettings) -> list[Callable[..., Any]]:
    databases = Databases(settings.databases)
    return [
        *activity_methods(policy_activities(settings)),
        *activity_methods(ScheduleActivities()),
        *activity_methods(NoteActivities()),
        *activity_methods(RotateCredentialActivities(databases, settings.aws)),
        *activity_methods(SweepVolumesActivities(settings.aws)),
        *activity_methods(ReadReplicaActivities(settings.aws)),
        *activity_methods(BackfillActivities(databases)),
        *activity_methods(MigrateSchemaActivities(databases)),
    ]


def metrics_runtime(settings: WorkerSettings) -> Runtime | None:
    """The runtime serving (or pushing) this worker's metrics; None: no metrics (raises `ExportError`)."""
    metrics = settings.metrics
    return telemetry.metrics_runtime(
        settings.metrics_address,
        metrics.otlp_endpoint,
        otlp_http=metrics.otlp_http,
        headers=settings.metrics_headers() if metrics.otlp_endpoint else None,
    )


async def connect(
    settings: WorkerSettings, *, runtime: Runtime | None = None, tracer_provider: TracerProvider | None = None
) -> Client:
    """The worker's client; with a tracer provider, its calls and its workers' runs are traced."""
    return await Client.connect(
        settings.temporal.address,
        namespace=settings.temporal.namespace,
        data_converter=data_converter(settings.encryption_keys()),
        interceptors=telemetry.tracing_interceptors(tracer_provider),
        runtime=runtime,
    )


def worker_options(interceptors: Sequence[Interceptor] = ()) -> dict[str, Any]:
    """How every opsctl worker runs its workflows and activities (the benchmarks' workers too)."""
    return {
        "interceptors": [WorkflowInputCheck(), RunContextInterceptor(), *interceptors],
        "workflow_runner": WORKFLOW_RUNNER,
        # Heartbeats carry checkpoints and live progress: send them often, not every ~48 s.
        "max_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
    }


def build_worker(client: Client, settings: WorkerSettings, interceptors: Sequence[Interceptor] = ()) -> Worker:
    """The worker `python -m worker` runs; `interceptors` add to the client's (fault injection in `make chaos`)."""
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings),
        **worker_options(interceptors),
    )


async def serve(settings: WorkerSettings, interceptors: Sequence[Interceptor] = ()) -> None:
    runtime, provider = _telemetry(settings)
    try:
        await _serve(settings, interceptors, runtime, provider)
    finally:
        telemetry.shutdown(provider)  # the last spans, waiting a bounded time for the collector


def _telemetry(settings: WorkerSettings) -> tuple[Runtime | None, TracerProvider | None]:
    """Refuse to start on a tracing or metrics configuration that cannot work, naming the setting."""
    try:
        return metrics_runtime(settings), telemetry.tracer_provider(settings.trace_export())
    except ExportError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        raise SystemExit(f"opsctl worker: {exc.message}{hint}") from None


async def _serve(
    settings: WorkerSettings,
    interceptors: Sequence[Interceptor],
    runtime: Runtime | None,
    provider: TracerProvider | None,
) -> None:
    client = await connect(settings, runtime=runtime, tracer_provider=provider)
    if settings.search_attributes:
        namespace = settings.temporal.namespace
        missing = await missing_search_attributes(client, namespace)
        if missing:
            raise SystemExit(
                f"opsctl worker: namespace {namespace} lacks the search attributes {', '.join(missing)}; "
                f"register them first: {registration_commands(namespace, missing)}"
            )
    worker = build_worker(client, settings, interceptors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watching = _watch_waiting_runs(client, runtime, settings)
    logging.info("worker polling %s on %s", settings.temporal.task_queue, settings.temporal.address)
    try:
        async with worker:
            await stop.wait()
    finally:
        if watching is not None:
            watching.cancel()
    logging.info("worker stopped")


def _watch_waiting_runs(client: Client, runtime: Runtime | None, settings: WorkerSettings) -> asyncio.Task[None] | None:
    """With metrics on: the waiting-runs gauges, from Temporal's visibility (needs the search attributes)."""
    interval = settings.metrics.waiting_runs_interval_seconds
    if runtime is None or not interval or not settings.search_attributes:
        return None
    queue = settings.temporal.task_queue
    return asyncio.create_task(waiting_runs.watch(client, runtime.metric_meter, queue, interval))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--settings", help="worker settings JSON (default: $OPSCTL_WORKER_SETTINGS)")
    args = parser.parse_args()
    logs.configure()  # JSON lines from the first message on
    settings = WorkerSettings.load(args.settings)
    logs.configure(settings.secret_values())  # ... and now redacting the values this worker knows secret
    try:
        keys = settings.encryption_keys()
    except KeysError as exc:  # refuse to start: a worker without its keys cannot read its runs
        raise SystemExit(f"opsctl worker: {exc.message} ({exc.hint})") from None
    if keys is not None:
        logging.info("payload encryption on: encrypting with key id %s of %d", keys.encrypt_with, len(keys.keys))
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
