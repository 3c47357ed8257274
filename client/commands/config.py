"""config show: every resolved value, and the layer it came from."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from client.config import KEYS, config_for
from client.render import Output, table


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    del progress
    config = config_for(args)
    values = config.values()
    rows = [{"key": key, "value": values[key], "from": config.origins[key]} for key in KEYS]
    files = {layer: config.files.get(layer) for layer in ("repository", "user")}
    read = [f"{layer} file: {path or 'none'}" for layer, path in files.items()]
    if config.files.get("ignored"):
        files["ignored"] = config.files["ignored"]
        read.append(f"ignored: {config.files['ignored']}")
    data = {"config": {row["key"]: {"value": row["value"], "from": row["from"]} for row in rows}, "files": files}
    return Output(data, "\n".join([table(rows, ["key", "value", "from"]), "", *read]))
