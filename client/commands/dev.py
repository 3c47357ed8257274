"""dev up | down | status: the embedded stack for one machine."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from client.config import config_for
from client.render import Output, table
from contracts.failures import ExitCode, OpsctlError


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from client.devstack import Ports, Stack, StackError

    config = config_for(args)
    ports = Ports(
        args.temporal_port,
        args.ui_port,
        args.postgres_port,
        args.aws_port,
        args.metrics_port,
        args.codec_port,
        args.http_port,
    )
    stack = Stack(config.state_dir, ports if args.action == "up" and not Stack(config.state_dir).pieces() else None)
    try:
        if args.action == "up":
            report = stack.up(worker=not args.no_worker, progress=progress)
        elif args.action == "down":
            report = stack.down(progress=progress)
        else:
            report = []
    except StackError as exc:
        raise OpsctlError(ExitCode.DEPENDENCY_FAILURE, str(exc), hint="`opsctl dev status` shows each piece") from exc
    rows = stack.status()
    done = {name: what for name, what in report}
    for row in rows:
        row["action"] = done.get(row["piece"], "")
    text = table(rows, ["piece", "running", "address", "action", "log"])
    text += f"\n\nstate folder: {stack.state_dir.absolute()} ({config.origins['state_dir']})"
    if args.action == "up":
        text += (
            f"\n\nWeb UI: {stack.ui_url} (payloads are encrypted; it decodes them through {stack.codec_url})"
            "\nstop everything with: opsctl dev down"
        )
    data = {
        "state_dir": str(stack.state_dir),
        "state_dir_from": config.origins["state_dir"],
        "pieces": rows,
        "web_ui": stack.ui_url,
        "codec_server": stack.codec_url,
    }
    expected = [row for row in rows if not (row["piece"] == "worker" and args.no_worker)]
    healthy = args.action == "down" or all(row["running"] for row in expected)
    return Output(data, text, ExitCode.SUCCESS if healthy else ExitCode.DEPENDENCY_FAILURE)
