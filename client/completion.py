"""Shell completion: `opsctl completion bash|zsh` prints the script; the script asks
`opsctl __complete WORD…` (the words typed so far, the last one partial) for candidates.

Candidates come from the parser itself (commands, flags, choices), the kind table, and for a
RUN argument the recent runs (`opsctl list`, with a short timeout: no server, no run ids).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

BASH = """\
# opsctl completion for bash: eval "$(opsctl completion bash)"
_opsctl() {
  local IFS=$'\\n'
  COMPREPLY=($(opsctl __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  if [ ${#COMPREPLY[@]} -eq 0 ]; then
    COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
  fi
}
complete -o filenames -F _opsctl opsctl
"""

ZSH = """\
#compdef opsctl
# opsctl completion for zsh: eval "$(opsctl completion zsh)"
_opsctl() {
  local -a candidates
  candidates=("${(@f)$(opsctl __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ -n "${candidates[1]}" ]]; then compadd -a candidates; else _files; fi
}
compdef _opsctl opsctl
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH}


def candidates(parser: argparse.ArgumentParser, words: Sequence[str]) -> list[str]:
    """What may come next: `words` are the words typed so far; the last one is being typed (maybe '')."""
    *done, current = list(words) or [""]
    commands = _subcommands(parser)
    command = next((word for word in done if word in commands), None)
    active = commands[command] if command else parser
    previous = done[-1] if done else ""
    taking = _option(active, previous) or _option(parser, previous)
    if taking is not None and taking.nargs != 0:  # the value of an option
        values = [str(choice) for choice in taking.choices or []]
        if taking.dest == "kind":
            from contracts.kinds import KINDS

            values = list(KINDS)
        if taking.dest == "phase":
            from contracts.phases import Phase

            values = [phase.value for phase in Phase]
        return [value for value in values if value.startswith(current)]
    if current.startswith("-"):
        flags = {flag for action in active._actions for flag in action.option_strings}
        return sorted(flag for flag in flags if flag.startswith(current))
    if command is None:
        return [name for name in commands if name.startswith(current)]
    positional = [action for action in active._actions if not action.option_strings and action.dest != "help"]
    if positional and positional[0].choices:
        return [str(choice) for choice in positional[0].choices if str(choice).startswith(current)]
    if command == "schema":
        from contracts.kinds import KINDS

        return [kind for kind in KINDS if kind.startswith(current)]
    if positional and positional[0].dest == "run":  # a RUN argument: the recent runs
        return [run for run in _recent_runs() if run.startswith(current)]
    return []


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return parser._option_string_actions.get(flag) if flag.startswith("-") else None


def _recent_runs() -> list[str]:
    """The 50 most recent run ids, or none when Temporal does not answer within 2 s."""
    import asyncio

    async def listed() -> list[str]:
        from client.config import load_config
        from client.runs import connect
        from contracts import search_attributes as sa

        client = await connect(load_config())
        return [execution.id async for execution in client.list_workflows(f"{sa.KIND} IS NOT NULL", limit=50)]

    try:
        return asyncio.run(asyncio.wait_for(listed(), timeout=2))
    except Exception:  # completion must never print an error into someone's shell
        return []
