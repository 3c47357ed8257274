"""A misspelled command, action or filter value gets a "did you mean", and exit 2."""

from __future__ import annotations

import io

import pytest

from client.main import run


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["aply", "-f", "x"], "did you mean 'apply'?"),
        (["dev", "stauts"], "did you mean 'status'?"),
        (["config", "shwo"], "did you mean 'show'?"),
        (["--as", "bob", "explian", "R"], "did you mean 'explain'?"),
    ],
)
def test_a_misspelling_suggests_the_right_word(argv: list[str], suggestion: str) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    assert 2 == run(argv, stdout=stdout, stderr=stderr)
    assert suggestion in stderr.getvalue()
    assert "" == stdout.getvalue()


def test_nothing_close_suggests_nothing() -> None:
    stderr = io.StringIO()
    assert 2 == run(["zzzz"], stdout=io.StringIO(), stderr=stderr)
    assert "did you mean" not in stderr.getvalue()


@pytest.mark.parametrize("argv", [["-o", "json", "aply"], ["aply", "--format=json"], ["schedule", "creat", "-ojson"]])
def test_an_argument_error_in_json_mode_is_json_on_stdout(argv: list[str]) -> None:
    import json

    stdout = io.StringIO()
    assert 2 == run(argv, stdout=stdout, stderr=io.StringIO())
    error = json.loads(stdout.getvalue())
    assert 2 == error["exit_code"]
    assert "invalid choice" in error["error"]["message"]
