"""The README documents the exit-code table that the code defines, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from contracts.failures import ExitCode

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_exit_code_is_documented_in_the_readme_table() -> None:
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", README.read_text(), re.MULTILINE)}
    assert {int(code) for code in ExitCode} == documented


def test_the_ci_script_runs_the_readme_test_command() -> None:
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert "make test" == ci
    assert "make test" in README.read_text()
