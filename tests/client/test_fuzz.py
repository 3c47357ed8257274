"""The reduced fuzzing campaign: a few hundred hypothesis cases per family, every one refused cleanly.

The full campaign is `python -m tests.chaos.fuzz --cases 10000` with a fresh seed each time; this
one runs in the normal suite with a fixed seed, so a failure here replays the same inputs.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.chaos.families import FAMILIES, VOCABULARY, Family
from tests.chaos.fuzz import campaign
from tests.chaos.harness import Outcome, Sandbox, judge
from tests.identities import KEYS_DIR

CASES_PER_FAMILY = 200
SEED = 20261201


@pytest.mark.parametrize("family", FAMILIES, ids=[family.name for family in FAMILIES])
def test_every_input_of_a_family_ends_in_an_allowed_exit_code_with_a_message(family: Family) -> None:
    figures = campaign(CASES_PER_FAMILY, seed=SEED, families=[family])
    print(figures.render())
    assert [] == [f"{f.reason}: {f.input}\n{f.stderr}" for found in figures.families for f in found.failures]
    assert CASES_PER_FAMILY == figures.tried


def test_a_campaign_leaves_the_process_as_it_found_it() -> None:
    """Environment, working directory and stdin are the caller's again afterwards.

    The caller's OPSCTL_ variables never reach a case: OPSCTL_DEBUG would make a bug raise instead of exit 1.
    """
    before = (dict(os.environ), os.getcwd(), sys.stdin)
    os.environ["OPSCTL_DEBUG"] = "1"
    try:
        figures = campaign(len(FAMILIES) * 3, seed=SEED)
        assert 0 == figures.failures
    finally:
        del os.environ["OPSCTL_DEBUG"]
    assert before == (dict(os.environ), os.getcwd(), sys.stdin)


def test_what_starts_servers_or_signals_processes_is_never_run() -> None:
    assert "demo" not in VOCABULARY.commands
    assert not {"up", "down"} & set(VOCABULARY.choices())
    with Sandbox(KEYS_DIR) as sandbox:
        for argv in (("demo",), ("--format", "json", "demo"), ("dev", "up"), ("dev", "--no-worker", "down")):
            assert sandbox.excluded(argv), argv
        assert "" == sandbox.excluded(("dev", "status"))


@pytest.mark.parametrize(
    ("outcome", "failed"),
    [
        (Outcome(0, "ok", "", ""), False),
        (Outcome(2, "", "error: cannot read x\n", ""), False),
        (Outcome(1, "", "error: ValueError: x\nhint: this is a bug\n", ""), True),
        (Outcome(3, "", "error: \n", ""), True),
        (Outcome(2, "", "", "usage: opsctl\nopsctl: error: bad\n"), True),  # the message went to sys.stderr
        (Outcome(4, "", "error: cannot reach Temporal at 127.0.0.1:9\n", ""), False),
        (Outcome(4, "", "error: Temporal refused the request\n", ""), True),
        (Outcome(0, "Traceback (most recent call last):\n", "", ""), True),
        (Outcome(None, "", "", "", escaped="UnicodeEncodeError: surrogates not allowed"), True),
    ],
)
def test_the_judge_fails_what_the_requirement_forbids(outcome: Outcome, failed: bool) -> None:
    assert failed == bool(judge(outcome, ("status", None), "127.0.0.1:9"))
