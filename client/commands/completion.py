"""completion bash|zsh: the script that completes commands, flags, kinds and run ids."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from client.completion import SCRIPTS
from client.render import Output


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    del progress
    script = SCRIPTS[args.shell]
    return Output({"shell": args.shell, "script": script}, script.rstrip("\n"))
