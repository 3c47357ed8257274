"""schedule create | list | pause | resume | trigger | delete: recurring runs on Temporal Schedules."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from client.commands.documents import read_request
from client.config import Config, config_for
from client.render import Output, table
from contracts.failures import ExitCode, OpsctlError
from contracts.run import Mode
from contracts.schedules import Cadence, OnDrift, cron, every, format_every

if TYPE_CHECKING:
    from client.keys import Keyring
    from client.schedules import ScheduleView
    from contracts.request import Request

Progress = Callable[[str], None]
CLOCK_MARGIN = 600  # seconds a schedule's signature stops short of its policy's limit (clocks differ)


def execute(args: argparse.Namespace, progress: Progress) -> Output:
    _check_arguments(args)
    config = config_for(args)
    creating = _prepare(args, config, progress) if args.action == "create" else None
    return asyncio.run(_run(args, config, creating))


class _Creating(NamedTuple):
    """What `schedule create` settled before it connects: a bad one is an error without any server."""

    request: Request
    cadence: Cadence
    mode: Mode
    on_drift: OnDrift
    keys: Keyring
    lifetime: int  # seconds the schedule's signature is good for


def _prepare(args: argparse.Namespace, config: Config, progress: Progress) -> _Creating:
    """The cadence (exit 2), the document (exit 2 or 3, as `validate`), and a signature its runs would accept."""
    from client.policies import local_policies

    cadence = _cadence(args)
    request = read_request(args.file, config, warn=lambda warning: progress(f"warning: {warning}"))
    policy = local_policies(config)[0].policy_for(request.metadata.environment)
    assert policy is not None, "read_request checked the environment against these policies"
    lifetime = policy.schedule_max_age_seconds - CLOCK_MARGIN
    if cadence.every_seconds is not None and cadence.every_seconds > lifetime:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"--every {args.every} is longer than a schedule's signed request lasts in "
            f"{policy.environment} ({format_every(lifetime)}): it would never run",
            hint="choose a shorter interval",
        )
    keys = config.keyring()
    requester = request.metadata.requester or ""
    if keys.path(requester) is None and policy.require_signatures:
        # An apply would be refused by the worker once; a schedule would be refused at every fire. A missing
        # key is this machine's configuration (exit 2, as a missing payload key is), found before anything starts.
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"no key for {requester}: {policy.environment} requires signed requests, and every run of an "
            "unsigned schedule would be refused",
            hint="create your key with `opsctl keys init` and register `opsctl keys show` in the policy file",
        )
    if keys.path(requester) is None:
        progress(
            f"note: no key for {requester}: the schedule's request goes unsigned, which only environments "
            "that do not require signatures accept (`opsctl keys init`)"
        )
    mode = Mode.DRY_RUN if args.dry_run else Mode.APPLY
    return _Creating(request, cadence, mode, OnDrift(args.on_drift or OnDrift.RECORD.value), keys, lifetime)


def _check_arguments(args: argparse.Namespace) -> None:
    """What each action takes, said plainly (argparse knows one flat set of options)."""
    action = args.action

    def refuse(message: str, hint: str = "") -> OpsctlError:
        return OpsctlError(ExitCode.INVALID_INPUT, message, hint or "see `opsctl schedule --help`")

    if action == "create":
        if not args.file:
            raise refuse("schedule create needs -f DOC: the request document to run on a schedule")
        if args.every is None and args.cron is None:
            raise refuse(
                "schedule create needs --every DURATION or --cron EXPR", "e.g. --every 30d, --cron '0 3 * * 1'"
            )
        if args.schedule:
            raise refuse("schedule create takes no ID: the schedule's id is the document's run id")
        if args.on_drift and not args.dry_run:
            raise refuse("--on-drift goes with --dry-run: only a dry run finds drift")
    else:
        given = [flag for flag, value in (("-f", args.file), ("--every", args.every), ("--cron", args.cron)) if value]
        given += ["--dry-run"] * bool(args.dry_run) + ["--on-drift"] * bool(args.on_drift)
        if given:
            raise refuse(f"schedule {action} does not take {', '.join(given)} (only create does)")
    if action in ("pause", "resume", "trigger", "delete") and not args.schedule:
        raise refuse(f"schedule {action} needs the schedule's ID", "`opsctl schedule list` shows them")
    if action == "list" and args.schedule:
        raise refuse("schedule list takes no ID")
    if args.reason and action not in ("pause", "resume"):
        raise refuse("--reason goes with pause and resume")


def _cadence(args: argparse.Namespace) -> Cadence:
    try:
        return every(args.every) if args.every is not None else cron(args.cron)
    except ValueError as exc:
        raise OpsctlError(ExitCode.INVALID_INPUT, str(exc), "see `opsctl schedule --help`") from None


async def _run(args: argparse.Namespace, config: Config, creating: _Creating | None) -> Output:
    from client import schedules
    from client.runs import connect

    def web_ui(schedule_id: str) -> str:
        return f"{config.ui_url}/namespaces/{config.namespace}/schedules/{schedule_id}"

    client = await connect(config)
    if creating is not None:
        return await _create(client, config, creating, web_ui)
    if args.action == "list":
        views = await schedules.list_all(client, web_ui)
        rows = [_json(view) for view in views]
        columns = ["schedule_id", "kind", "environment", "mode", "spec", "next_fire", "paused", "last_run"]
        return Output({"schedules": rows}, table([_row(view) for view in views], columns))
    if args.action == "delete":
        await schedules.delete(client, args.schedule)
        text = f"deleted schedule {args.schedule}; its runs still open go on (`opsctl list`)"
        return Output({"schedule_id": args.schedule, "deleted": True}, text)
    if args.action == "trigger":
        view, run = await schedules.trigger(client, args.schedule, web_ui)
        text = f"schedule {view.schedule_id} fired: run {run}\n  follow it with `opsctl status {run}`"
        return Output({"schedule": _json(view), "run_id": run, "run_web_ui": config.web_ui(run)}, text)
    change = schedules.pause if args.action == "pause" else schedules.resume
    view = await change(client, args.schedule, args.reason, web_ui)
    return Output({"schedule": _json(view)}, _describe(view))


async def _create(client: Any, config: Config, creating: _Creating, web_ui: Callable[[str], str]) -> Output:
    from client import schedules

    view, new = await schedules.create(
        client,
        creating.request,
        creating.cadence,
        mode=creating.mode,
        on_drift=creating.on_drift,
        task_queue=config.task_queue,
        keys=creating.keys,
        lifetime=creating.lifetime,
        web_ui=web_ui,
    )
    said = "created schedule" if new else "schedule"
    unchanged = "" if new else " (it existed with this request and cadence: nothing changed)"
    text = (
        f"{said} {view.schedule_id}{unchanged}\n"
        f"  each fire is its own run, {view.schedule_id}-<fire time>, through {view.environment}'s policy and "
        "approvals like any request\n\n"
        f"{_describe(view)}"
    )
    return Output({"schedule": _json(view), "created": new}, text)


def _json(view: ScheduleView) -> dict[str, Any]:
    data: dict[str, Any] = view.model_dump(mode="json")
    return data


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "—"


def _row(view: ScheduleView) -> dict[str, Any]:
    mode = view.mode.value + (f", on drift: {view.on_drift.value}" if view.on_drift else "")
    return {
        "schedule_id": view.schedule_id,
        "kind": view.kind,
        "environment": view.environment,
        "mode": mode,
        "spec": view.spec,
        "next_fire": "paused" if view.paused else _when(view.next_fire),
        "paused": view.paused,
        "last_run": view.last_run.run_id if view.last_run else "—",
    }


def _describe(view: ScheduleView) -> str:
    drift = {
        OnDrift.RECORD: "drift is recorded (OpsctlDrift, `opsctl list --drift`)",
        OnDrift.SUBMIT: "drift is recorded and its apply submitted for approval",
    }
    lines = [
        f"Schedule    {view.schedule_id}: {view.kind} in {view.environment}, requested by {view.requester}",
        f"Runs        {'dry runs' if view.mode is Mode.DRY_RUN else 'applies'} {view.spec}"
        + (" (UTC)" if view.spec.startswith("cron") else "")
        + (f"; {drift[view.on_drift]}" if view.on_drift else "")
        + "; a fire while the previous run is open is skipped",
        f"State       {'paused' if view.paused else 'active'}" + (f" ({view.note})" if view.note else ""),
        f"Next fire   {'none while paused' if view.paused else _when(view.next_fire)}",
        f"Last run    {view.last_run.run_id if view.last_run else 'none yet'}",
        f"Signed      {'until ' + _when(view.signed_until) if view.signed_until else 'no (unsigned)'}",
    ]
    if view.problem:
        lines.append(f"Problem     {view.problem}")
    lines.append(f"Web UI      {view.web_ui}")
    return "\n".join(lines)
