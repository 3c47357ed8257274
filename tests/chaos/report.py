"""The chaos campaign's figures, as the markdown the README's reliability section shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN, END = "<!-- chaos:begin (written by `make chaos`) -->", "<!-- chaos:end -->"


def clean(figures: dict[str, Any]) -> bool:
    outcomes_clean = all(not o["problems"] for o in figures.get("outcomes", []))
    fuzz_clean = not figures.get("fuzz", {}).get("failures")  # a count
    return outcomes_clean and fuzz_clean and not figures.get("scan", {}).get("leaks")


def summary(figures: dict[str, Any]) -> str:
    outcomes = figures.get("outcomes", [])
    lines = [
        f"Measured by `make chaos` on {figures['started']} ({figures.get('wall_seconds', 0) / 60:.0f} min, "
        "one embedded stack, 2 cores):",
        "",
        "| scenario | faults injected | runs completed | duplicates or problems |",
        "|---|---|---|---|",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        groups.setdefault(outcome["scenario"], []).append(outcome)
    for scenario, group in groups.items():
        struck = sum(1 for o in group if o["struck"])
        completed = sum(1 for o in group if not any("ended" in p or "did not finish" in p for p in o["problems"]))
        problems = sum(len(o["problems"]) for o in group)
        lines.append(f"| {scenario} | {struck} | {completed} of {len(group)} | {problems} |")
    fuzz = figures.get("fuzz")
    if fuzz:
        codes = ", ".join(f"exit {code}: {n:,}" for code, n in fuzz.get("exit_codes", {}).items())
        families = ", ".join(f"{f['name']} {f['tried']:,}" for f in fuzz.get("families", []))
        lines.append(
            f"| fuzzing (hypothesis) | {fuzz['tried']:,} inputs ({families}; {codes}) | — | {fuzz['failures']} |"
        )
    scan = figures.get("scan")
    if scan:
        lines.append(
            f"| secret scan | {scan['secrets']} secrets in {scan['places']} histories and files | — | "
            f"{len(scan['leaks'])} leaks |"
        )
    recovery = figures.get("recovery")
    if recovery:
        lines += ["", "Time from a worker's SIGKILL to its step's retry starting (from the run's history):", ""]
        lines += ["| killed | kills | median | worst |", "|---|---|---|---|"]
        for point, row in recovery.items():
            lines.append(f"| {point} the side effect | {row['kills']} | {row['median']:.1f} s | {row['max']:.1f} s |")
    found = [o for o in outcomes if o["problems"]]
    if found:
        lines += ["", "Problems found:", ""]
        lines += [f"- {o['kind']}, {o['fault']}: {'; '.join(o['problems'])}" for o in found]
    return "\n".join(lines) + "\n"


def write_readme(readme: Path, summary_text: str) -> None:
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no {BEGIN} … {END} section to write the figures into")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{summary_text}{END}{tail}", encoding="utf-8")
