"""The fuzzing campaign: every input refused cleanly, measured over thousands of hypothesis cases.

    python -m tests.chaos.fuzz --cases 10000 [--seed N] [--family NAME ...] [--json]

Each family in `tests.chaos.families` (documents, structured, examples, arguments, config)
draws its share of `--cases` from its hypothesis strategy; each case runs `opsctl` in-process
(`client.main.run`) in a sandbox (`tests.chaos.harness`): a temp folder for every file,
$HOME and key it may touch, and a Temporal address nobody listens on. A case fails when
`run` exits outside 0, 2, 3 (4 only when the message says Temporal cannot be reached, or
for `dev status`, which documents it for a stack that is down), prints a traceback, lets
an exception escape, or exits non-zero without an `error: …` message on stderr. Failures
are collected, not raised, so every family runs; the exit code is 1 if any case failed.

Never run: `demo`, `dev up` (they start servers) and `dev down` (it signals the processes a
stack record names); the argument vocabulary leaves them out and the harness refuses them.

`campaign(cases)` returns the figures; `--json` prints them as one object:

    {
      "cases": 10000,              # asked for
      "tried": 10000,              # run (hypothesis may stop a family early if it runs out of inputs)
      "failures": 0,               # failed cases, all families
      "seed": 1234,                # --seed 1234 replays the same inputs (with --cases N/5 --family F: one family's)
      "seconds": 93.1,             # wall time of the whole campaign
      "exit_codes": {"0": 812, "2": 7420, "3": 1510, "4": 258},
      "excluded": {"demo": "starts the embedded stack …", "dev up": "…", "dev down": "…"},
      "families": [
        {
          "name": "documents",
          "covers": "bytes as a request or policy document …",
          "tried": 2000,
          "rejected": 0,           # drawn but never run: an excluded command
          "seconds": 21.4,
          "exit_codes": {"0": 31, "2": 1800, …},   # "exception": an exception escaped run
          "failure_count": 0,
          "failures": [            # at most 20 distinct ones per family
            {"reason": "exit 1", "exit_code": 1, "input": "argv=[…] doc.yaml=b'…'", "stderr": "error: …"}
          ]
        },
        …
      ]
    }
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings

from tests.chaos.families import FAMILIES, Family
from tests.chaos.harness import EXCLUDED, Case, Sandbox, judge

KEPT_FAILURES = 20  # distinct failures kept per family; all are counted


@dataclass
class Failure:
    reason: str
    exit_code: int | None
    input: str
    stderr: str


@dataclass
class FamilyFigures:
    name: str
    covers: str
    tried: int = 0
    rejected: int = 0
    seconds: float = 0.0
    exit_codes: Counter[str] = field(default_factory=Counter)
    failure_count: int = 0
    failures: list[Failure] = field(default_factory=list)

    def record(self, case: Case, code: int | None, stderr: str, reason: str) -> None:
        self.tried += 1
        self.exit_codes["exception" if code is None else str(code)] += 1
        if not reason:
            return
        self.failure_count += 1
        first_line = stderr.strip().splitlines()[0] if stderr.strip() else ""
        seen = {(f.reason, f.stderr.strip().splitlines()[0] if f.stderr.strip() else "") for f in self.failures}
        if len(self.failures) < KEPT_FAILURES and (reason, first_line[:200]) not in seen:
            self.failures.append(Failure(reason, code, case.describe(), stderr[:600]))


@dataclass
class FuzzFigures:
    cases: int
    seed: int
    families: list[FamilyFigures]
    seconds: float = 0.0

    @property
    def tried(self) -> int:
        return sum(family.tried for family in self.families)

    @property
    def failures(self) -> int:
        return sum(family.failure_count for family in self.families)

    def exit_codes(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for family in self.families:
            total.update(family.exit_codes)
        return _sorted_codes(total)

    def as_json(self) -> dict[str, Any]:
        families = []
        for family in self.families:
            figures = asdict(family)
            figures["exit_codes"] = _sorted_codes(family.exit_codes)
            figures["seconds"] = round(family.seconds, 1)
            families.append(figures)
        return {
            "cases": self.cases,
            "tried": self.tried,
            "failures": self.failures,
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "exit_codes": self.exit_codes(),
            "excluded": {" ".join(filter(None, command)): why for command, why in EXCLUDED.items()},
            "families": families,
        }

    def render(self) -> str:
        lines = [f"{'family':<12} {'tried':>6} {'failed':>6} {'seconds':>8}  exit codes"]
        for family in self.families:
            codes = ", ".join(f"{code}: {n}" for code, n in _sorted_codes(family.exit_codes).items())
            lines.append(
                f"{family.name:<12} {family.tried:>6} {family.failure_count:>6} {family.seconds:>8.1f}  {codes}"
            )
        codes = ", ".join(f"{code}: {n}" for code, n in self.exit_codes().items())
        lines.append(f"{'all':<12} {self.tried:>6} {self.failures:>6} {self.seconds:>8.1f}  {codes}")
        lines.append(f"seed {self.seed}; never run: {', '.join(' '.join(filter(None, c)) for c in EXCLUDED)}")
        for family in self.families:
            for failure in family.failures:
                lines += [f"\nFAILED {family.name}: {failure.reason}", f"  input: {failure.input}"]
                lines += [f"  | {line}" for line in failure.stderr.splitlines()[:8]]
        return "\n".join(lines)


def _sorted_codes(codes: Counter[str]) -> dict[str, int]:
    return dict(
        sorted(codes.items(), key=lambda item: (not item[0].isdigit(), int(item[0]) if item[0].isdigit() else 0))
    )


def _explore(sandbox: Sandbox, family: Family, budget: int, family_seed: int) -> FamilyFigures:
    figures = FamilyFigures(family.name, family.covers)

    def play(case: Case) -> None:
        if sandbox.excluded(case.argv):
            figures.rejected += 1
            reject()
        outcome = sandbox.run(case)
        reason = judge(outcome, sandbox.command_of(case.argv), sandbox.temporal_address)
        figures.record(case, outcome.code, outcome.stderr or outcome.escaped, reason)

    explore = hypothesis.seed(family_seed)(
        settings(
            max_examples=budget,
            deadline=None,
            database=None,
            phases=[Phase.generate],  # collect every failure; no shrinking, no replay of old ones
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )(given(family.cases)(play))
    )
    started = time.perf_counter()
    explore()
    figures.seconds = time.perf_counter() - started
    return figures


def campaign(cases: int, seed: int | None = None, families: Sequence[Family] = FAMILIES) -> FuzzFigures:
    """Run `cases` inputs, shared evenly between `families`; the same seed draws the same inputs."""
    from tests.identities import KEYS_DIR  # the test identities' keys and the policy file registering them

    chosen = seed if seed is not None else random.randrange(2**32)  # noqa: S311 - a fuzzing seed, not a secret
    figures = FuzzFigures(cases, chosen, [])
    started = time.perf_counter()
    with Sandbox(KEYS_DIR) as sandbox:
        for index, family in enumerate(families):
            budget = cases // len(families) + (1 if index < cases % len(families) else 0)
            if budget:  # each family's own seed: `--family NAME` alone replays its part of a whole campaign
                family_seed = (chosen + zlib.crc32(family.name.encode())) % 2**32
                figures.families.append(_explore(sandbox, family, budget, family_seed))
    figures.seconds = time.perf_counter() - started
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="inputs in all (default: %(default)s)")
    parser.add_argument("--seed", type=int, help="replay the inputs of an earlier campaign")
    parser.add_argument("--family", action="append", choices=[f.name for f in FAMILIES], help="only these families")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    figures = campaign(args.cases, args.seed, families)
    print(json.dumps(figures.as_json(), indent=2) if args.json else figures.render())
    return 1 if figures.failures else 0


if __name__ == "__main__":
    sys.exit(main())
