"""`python -m tests.benchmarks [--only SECTION,...] [--quick] [--out FILE]`: run the benchmarks on one
embedded stack of their own and write their figures (default docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import asyncio
import compileall
import importlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from tests.benchmarks.common import ROOT, Bench

# The order: a. lifecycle overhead, b. CLI, c. sweep at scale, d. backfill at scale.
SECTIONS = ("lifecycle", "cli", "sweep", "backfill")


def compile_bytecode() -> None:
    """The project's bytecode, current, as an installed wheel has it: an edit since `make` installed
    would otherwise be compiled again at every command's start where PYTHONDONTWRITEBYTECODE is set."""
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for package in found["include"]:  # "client*": the package and its subpackages
        compileall.compile_dir(str(ROOT / package.rstrip("*")), quiet=1)


def header() -> list[str]:
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=False)
    return [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.benchmarks`): figures, not assertions. Every section ran",
        "in one run on one embedded stack (Temporal dev server, PostgreSQL, moto) started for it.",
        "",
        f"- when: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit.stdout.strip() or '?'}",
        f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}",
        "- the project's bytecode compiled first, as an installed wheel has it",
        "",
    ]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run, not figures to keep")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="'-' prints only")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="opsctl-bench-") as folder:
        async with Bench.started(Path(folder), quick=args.quick) as bench:
            lines = header()
            for name in (section for section in SECTIONS if section in chosen):
                module = importlib.import_module(f"tests.benchmarks.{name}")
                print(f"== {name} ==", flush=True)
                started = time.perf_counter()
                section = await module.run(bench)
                section.append(f"\n_{name}: {time.perf_counter() - started:.0f} s of benchmarking._\n")
                print("\n".join(section), flush=True)
                lines += section
    if args.out != "-":
        Path(args.out).write_text("\n".join(lines).rstrip() + "\n")
        print(f"written to {args.out}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on the way out
    asyncio.run(main())
