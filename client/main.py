"""The `opsctl` command line: parsing, and the one place where the process exits.

Command bodies live in `client.commands.*`, imported only when they run, so `--help`
stays instant. They return an `Output` or raise; this module maps what they raise to
the exit-code table in `contracts.failures`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, NoReturn, TextIO

from contracts.failures import ExitCode, OpsctlError

DESCRIPTION = """\
Durable, reviewed database and cloud operations on Temporal.

A request document (YAML or JSON: apiVersion, kind, metadata, spec) is validated,
planned without mutating, approved by a second person against its plan hash,
applied in retry-safe steps and verified. Every run is a Temporal workflow.

typical session:
  opsctl dev up                                  # embedded stack (Temporal, PostgreSQL, AWS)
  opsctl validate -f rotate.yaml                 # check the document, offline
  opsctl plan -f rotate.yaml                     # dry run: exit 10 if it would change things
  opsctl apply -f rotate.yaml --as alice         # submit; prod waits for approval (exit 7)
  opsctl keys init                               # your signing key; register `keys show` in the policy
  opsctl approve RUN --plan-hash H --as bob      # a second person approves that exact plan (signed)
  opsctl result RUN --wait                       # the four answers, and the exit code
"""

EXIT_CODES = """\
exit codes:
  0 success                         5 partial success (some changes applied)
  1 unexpected failure              6 denied: policy, rejected, expired, cancelled
  2 invalid arguments/config/doc    7 awaiting approval or a change window
  3 validation failed, no mutation  8 needs review (outcome uncertain)
  4 remote dependency failure      10 dry run found changes
                                  130 interrupted (Ctrl-C): the run goes on
"""

# command name → (module in client.commands, help line)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("documents", "check a request document offline (no server needed)"),
    "schema": ("documents", "list the kinds and their versions, or print a kind's JSON Schema or example"),
    "convert": ("documents", "print a request document in its kind's latest version (the same request)"),
    "plan": ("runs", "dry run: compute the plan on the worker without changing anything"),
    "apply": ("runs", "submit a request (a repeated apply attaches to the same run)"),
    "approve": ("runs", "approve a run's plan, naming the plan hash you reviewed"),
    "reject": ("runs", "reject a run awaiting approval"),
    "cancel": ("runs", "stop a run at its next safe point, undoing applied steps"),
    "resolve": ("runs", "answer a run in needs_review: retry, mark done, or abort"),
    "note": ("runs", "attach a note to a run's record (kept in its history; audit and explain show it)"),
    "status": ("runs", "phase, progress and next action of a run"),
    "result": ("runs", "the full report of a run: requested, changed, uncertain, next"),
    "list": ("runs", "list runs, filtered by phase, kind, environment, requester, time"),
    "watch": ("runs", "follow a run live; returns when it ends or someone must act (exit 7, 8)"),
    "audit": ("audit", "the run's audit trail, read from its event history (--export FILE: JSON Lines)"),
    "explain": ("audit", "what was requested, what changed, what is uncertain, what to run next"),
    "rerun": ("runs", "start a new run of a failed run's request, linked to it"),
    "config": ("config", "show the resolved configuration and the layer each value came from"),
    "schedule": ("schedule", "recurring runs on Temporal Schedules: create, list, pause, resume, trigger, delete"),
    "policy": ("policy", "show the policies runs obey, or check a policy file offline"),
    "keys": ("keys", "your signing key: init creates it, show prints the public key to register"),
    "codec-server": ("codec_server", "decode encrypted payloads for the Web UI and `temporal workflow show`"),
    "dev": ("dev", "the embedded development stack: up, down, status"),
    "completion": ("completion", 'print the shell completion script: eval "$(opsctl completion bash)" (or zsh)'),
    "demo": ("demo", "run the two-person credential rotation demo on the embedded stack"),
}


# Commands about one run: they take RUN (a workflow id) first.
RUN_COMMANDS = (
    "approve",
    "reject",
    "cancel",
    "resolve",
    "status",
    "result",
    "note",
    "watch",
    "audit",
    "explain",
    "rerun",
)


class GlobalOption(NamedTuple):
    """An option accepted before and after the command: `opsctl --as bob approve R` == `opsctl approve R --as bob`."""

    flag: str
    dest: str  # the attribute command modules read, e.g. args.as_user
    default: str | None
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    short: tuple[str, ...] = ()  # aliases, e.g. -o for --format (as kubectl has it)


# One line per global option; parse() resolves each into args.<dest>.
GLOBAL_OPTIONS: tuple[GlobalOption, ...] = (
    GlobalOption(
        "--format", "format", "text", "output format (default: text)", choices=("text", "json"), short=("-o",)
    ),
    GlobalOption("--as", "as_user", None, "act as USER (default: $OPSCTL_USER, config, login)", metavar="USER"),
    GlobalOption(
        "--address",
        "address",
        None,
        "Temporal's frontend (default: $OPSCTL_TEMPORAL_ADDRESS, config)",
        metavar="HOST:PORT",
    ),
    GlobalOption("--namespace", "namespace", None, "Temporal namespace (default: $OPSCTL_NAMESPACE, config)"),
    GlobalOption(
        "--state-dir", "state_dir", None, "embedded stack state folder (default: the nearest .opsctl/)", metavar="DIR"
    ),
)

# Where a global option was given: each position records into its own attribute, because
# argparse copies the subcommand's namespace over the top-level one.
_POSITIONS = ("before", "after")


class _Store(argparse.Action):
    """argparse's default action (keep the value given), registered in its place to refuse the
    empty list Python 3.11's argparse hands over for `--as=--` (or `-f--`): no value at all."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if values == []:
            parser.error(f"argument {option_string}: expected one argument")
        setattr(namespace, self.dest, self.kept(namespace, values))

    def kept(self, namespace: argparse.Namespace, values: str | Sequence[Any] | None) -> Any:
        return values


class _Record(_Store):
    """Appends every use of a global option, so a second use can never silently win."""

    def kept(self, namespace: argparse.Namespace, values: str | Sequence[Any] | None) -> Any:
        return [*getattr(namespace, self.dest, []), values]


class ConflictingOptions(OpsctlError):
    """A global option given more than once with different values (exit 2)."""

    def __init__(self, message: str, given: dict[str, list[Any]]) -> None:
        super().__init__(ExitCode.INVALID_INPUT, message)
        self.given = given  # dest → the distinct values given, in order


def _add_global_options(parser: argparse.ArgumentParser, position: str) -> None:
    for option in GLOBAL_OPTIONS:
        parser.add_argument(
            *option.short,
            option.flag,
            dest=f"{option.dest}:{position}",
            action=_Record,
            default=argparse.SUPPRESS,  # absent unless given: nothing to overwrite the other position
            choices=option.choices,
            metavar=option.metavar or (None if option.choices else option.dest.upper()),
            help=option.help,
        )


class _Version(argparse.Action):
    """`--version`, read from the installed package only when asked (every other command skips the cost)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("opsctl")
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "unknown (not installed)"
        print(f"opsctl {found}")  # stdout, as argparse's own version action does (run() redirects it)
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse, with a "did you mean" for a misspelled command or choice (`opsctl aply` → apply)."""

    def error(self, message: str) -> NoReturn:
        import re

        from contracts.suggest import did_you_mean

        invalid = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message)
        if invalid:
            message += did_you_mean(invalid[1], [choice.strip("'") for choice in invalid[2].split(", ")])
        _REFUSED.append(f"{self.prog}: {message}")
        super().error(message)


_REFUSED: list[str] = []  # what argparse refused, for the JSON error when --format json was asked for


def _asked_for_json(argv: Sequence[str]) -> bool:
    """Did argv ask for JSON (however spelled), although argparse could not parse it?"""
    words = list(argv)
    pairs = zip(words, [*words[1:], ""], strict=True)
    return any(
        word in ("--format=json", "-ojson", "-o=json") or (word in ("--format", "-o") and following == "json")
        for word, following in pairs
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="opsctl",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, _POSITIONS[0])
    parser.add_argument("--version", action=_Version, help="print opsctl's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_line) in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=help_line,
            description=help_line,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.register("action", None, _Store)  # the action of every argument that names none
        _add_global_options(command, _POSITIONS[1])
        _arguments(name, command)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse argv, resolving each global option from both positions into args.<dest>.

    Raises SystemExit when argparse rejects argv (it has printed usage), and
    ConflictingOptions when a global option is given with different values.
    """
    args = build_parser().parse_args(argv)
    given: dict[str, list[Any]] = {}
    conflicts: list[str] = []
    for option in GLOBAL_OPTIONS:
        uses = [value for position in _POSITIONS for value in vars(args).pop(f"{option.dest}:{position}", [])]
        distinct = given[option.dest] = list(dict.fromkeys(uses))
        if len(distinct) > 1:
            times = "twice" if len(uses) == 2 else f"{len(uses)} times"
            values = ", ".join(str(value) for value in distinct)
            conflicts.append(f"{option.flag} given {times} with different values ({values}); give it once")
        setattr(args, option.dest, distinct[0] if distinct else option.default)
    if conflicts:
        raise ConflictingOptions("; ".join(conflicts), given)
    return args


def identity(text: str) -> str:
    """A --requester: an identity as the policy names them (letters, digits, '_', '-', '.', '@', '+')."""
    if not text or not all(c.isascii() and (c.isalnum() or c in "_-.@+") for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: use letters, digits, '_', '-', '.', '@' or '+'")
    return text


def word(text: str) -> str:
    """A filter value for the list query: letters, digits, '_', '-', '.' (no quoting to get wrong)."""
    if not text or not all(c.isascii() and (c.isalnum() or c in "_-.") for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: use letters, digits, '_', '-' or '.'")
    return text


def run_id(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("RUN is empty: give a run id (`opsctl list` shows them)")
    return text


def count(text: str) -> int:
    """A --limit: a whole number from 1 to 1000."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number from 1 to 1000")
    return value


_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since(text: str) -> datetime:
    """A --since: a time ago (30m, 12h, 7d, 2w) or a UTC date or time (2026-11-30, 2026-11-30T08:00)."""
    from datetime import UTC, timedelta

    number, unit = text[:-1], text[-1:]
    if unit in _UNITS and number.isdigit():
        ago = int(number) * _UNITS[unit]
        if ago > 10 * 366 * 86400:
            raise argparse.ArgumentTypeError(f"{text!r}: at most ten years ago")
        return datetime.now(UTC) - timedelta(seconds=ago)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a time ago (30m, 12h, 7d, 2w) or a UTC date or time (2026-11-30, 2026-11-30T08:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds(text: str) -> float:
    """A --timeout: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments per command, declared here so --help needs no command module."""
    doc = {"metavar": "DOC", "help": "request document, YAML or JSON ('-' for stdin)"}
    wait_help = "seconds to wait at most (default: %(default)s)"
    if name in ("validate", "plan", "apply", "convert"):
        parser.add_argument("-f", "--file", required=True, **doc)
    if name == "schema":
        parser.add_argument("kind", nargs="?", help="operation kind, e.g. RotateDbCredential (none: list the kinds)")
        parser.add_argument(
            "--version",
            dest="api_version",
            metavar="V",
            help="the kind's apiVersion, e.g. opsctl/v1 (default: its latest)",
        )
        parser.add_argument(
            "--example", action="store_true", help="print a commented example document instead of the schema"
        )
    if name == "plan":
        parser.add_argument("--timeout", type=seconds, default=120, help=wait_help)
    if name == "apply":
        parser.add_argument(
            "--wait",
            action="store_true",
            help="wait for the run to end, showing progress; returns early when a person must act (exit 7, 8)",
        )
        parser.add_argument("--timeout", type=seconds, default=3600, help=wait_help)
        parser.add_argument(
            "--emergency",
            action="store_true",
            help="break-glass: apply without prior approval where the policy allows it; "
            "a post-incident review by the normal quorum follows",
        )
        parser.add_argument("--reason", help="with --emergency: why it cannot wait (recorded)")
    if name in ("plan", "apply", "result"):
        parser.add_argument(
            "--full", action="store_true", help="show every line of SQL (long migrations are folded otherwise)"
        )
    if name in RUN_COMMANDS:
        parser.add_argument("run", metavar="RUN", type=run_id, help="the run's id (workflow id)")
    if name == "approve":
        parser.add_argument("--plan-hash", required=True, help="the plan hash you reviewed (from plan/status)")
        parser.add_argument("--comment", default="", help="recorded with the approval")
    if name == "watch":
        parser.add_argument("--timeout", type=seconds, default=3600, help=wait_help)
    if name in ("watch", "apply", "result", "rerun"):
        parser.add_argument(
            "--until-approved",
            action="store_true",
            help="keep waiting while the run awaits approval (a needs_review still returns, exit 8)",
        )
    if name == "rerun":
        parser.add_argument("--wait", action="store_true", help="wait for the new run to end, showing progress")
        parser.add_argument("--timeout", type=seconds, default=3600, help=wait_help)
        parser.add_argument("--full", action="store_true", help="show every line of SQL")
    if name == "audit":
        parser.add_argument("--export", metavar="FILE", help="also write the events to FILE as JSON Lines")
    if name == "note":
        parser.add_argument("text", metavar="TEXT", help="the note, e.g. 'checked the replica lag by hand: fine'")
    if name == "reject":
        parser.add_argument("--reason", required=True, help="why; recorded in the run's history")
    if name == "cancel":
        parser.add_argument("--reason", default="", help="why; recorded in the run's history")
    if name == "resolve":
        choice = parser.add_mutually_exclusive_group(required=True)
        choice.add_argument(
            "--retry", dest="resolution", action="store_const", const="retry", help="run the step again"
        )
        choice.add_argument(
            "--mark-done", dest="resolution", action="store_const", const="mark_done", help="you finished it by hand"
        )
        choice.add_argument("--abort", dest="resolution", action="store_const", const="abort", help="stop the run")
        parser.add_argument("--comment", required=True, help="what you checked or did; recorded")
    if name == "result":
        parser.add_argument("--wait", action="store_true", help="wait for the run to end")
        parser.add_argument("--timeout", type=seconds, default=3600, help=wait_help)
    if name == "list":
        parser.add_argument("--phase", type=word, help="e.g. awaiting_approval, needs_review, succeeded")
        parser.add_argument("--kind", type=word, help="e.g. RotateDbCredential")
        parser.add_argument("--env", type=word, help="environment, e.g. prod")
        parser.add_argument("--requester", type=identity, help="runs this person requested")
        parser.add_argument("--since", type=since, help="runs started since: 30m, 12h, 7d, 2w, or a UTC date or time")
        parser.add_argument("--emergency", action="store_true", help="only break-glass runs")
        parser.add_argument("--drift", action="store_true", help="only scheduled dry runs that found drift")
        parser.add_argument("--rerun-of", type=word, metavar="RUN", help="the reruns of this run (`opsctl rerun`)")
        parser.add_argument(
            "--dry-runs", action="store_true", help="include dry runs (`opsctl plan`), hidden otherwise"
        )
        parser.add_argument(
            "--limit", type=count, default=20, help="at most this many runs, 1-1000 (default: %(default)s)"
        )
    if name == "schedule":
        parser.add_argument("action", choices=["create", "list", "pause", "resume", "trigger", "delete"])
        parser.add_argument("schedule", nargs="?", metavar="ID", help="pause, resume, trigger, delete: the schedule")
        parser.add_argument("-f", "--file", metavar="DOC", help="create: the request document, run on every fire")
        cadence = parser.add_mutually_exclusive_group()
        cadence.add_argument("--every", metavar="DURATION", help="create: fire every DURATION (30d, 12h, 1h30m, 90s)")
        cadence.add_argument("--cron", metavar="EXPR", help="create: fire on a 5-field cron expression, in UTC")
        parser.add_argument(
            "--dry-run", action="store_true", help="create: each fire is a dry run; changes in its plan are drift"
        )
        parser.add_argument(
            "--on-drift",
            choices=["record", "submit"],
            help="create --dry-run: record the drift (default), or also submit the apply for approval",
        )
        parser.add_argument("--reason", default="", help="pause, resume: why (kept as the schedule's note)")
    if name == "policy":
        parser.add_argument("action", choices=["show", "check"])
        parser.add_argument("environment", nargs="?", metavar="ENV", help="show: one environment (default: all)")
        parser.add_argument("-f", "--file", metavar="POLICYFILE", help="check: the policy file (YAML or JSON)")
        parser.add_argument(
            "--local", action="store_true", help="show: read this machine's copy instead of asking the workers"
        )
    if name == "completion":
        parser.add_argument("shell", choices=["bash", "zsh"])
    if name == "config":
        parser.add_argument("action", choices=["show"], help="show: every value, and where it came from")
    if name == "keys":
        parser.add_argument("action", choices=["init", "show"])
        parser.add_argument("--force", action="store_true", help="init: replace an existing key")
    if name == "codec-server":
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
        parser.add_argument("--port", type=int, default=8234, help="default: %(default)s")
        parser.add_argument(
            "--ui-origin",
            action="append",
            metavar="URL",
            help="the Web UI's origin, allowed to call from a browser (repeatable; default: the configured ui_url)",
        )
        parser.add_argument(
            "--token-file", help="the bearer token's file (default: $OPSCTL_CODEC_TOKEN_FILE, config, the dev stack's)"
        )
        parser.add_argument(
            "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="larger requests get 413 (default: %(default)s)"
        )
    if name == "dev":
        parser.add_argument("action", choices=["up", "down", "status"])
        parser.add_argument("--temporal-port", type=int, default=7233)
        parser.add_argument("--ui-port", type=int, default=8233)
        parser.add_argument("--postgres-port", type=int, default=55432)
        parser.add_argument("--aws-port", type=int, default=54566)
        parser.add_argument("--metrics-port", type=int, default=9464, help="the worker's Prometheus /metrics")
        parser.add_argument("--codec-port", type=int, default=8234, help="the codec server the Web UI decodes through")
        parser.add_argument(
            "--http-port", type=int, default=7243, help="Temporal's HTTP API, which status and list read through"
        )
        parser.add_argument("--no-worker", action="store_true", help="start the servers only")


def run(argv: Sequence[str], stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    """Parse, dispatch, print; return the exit code. Never raises for user errors."""
    _REFUSED.clear()
    if argv[:1] == ["__complete"]:  # the completion script asking what may come next
        from client.completion import candidates

        print("\n".join(candidates(build_parser(), argv[1:])), file=stdout)
        return 0
    try:
        # argparse prints usage, errors and --help to sys.stdout/sys.stderr: make those the streams given here.
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parse(argv)
    except SystemExit as exc:  # argparse has printed usage (or --help) already
        if exc.code in (0, None):
            return 0
        if _REFUSED and _asked_for_json(argv):  # stdout stays parseable: the error as JSON too
            hint = "`opsctl --help` lists the commands; `opsctl COMMAND --help` what each takes"
            _json_error(ExitCode.INVALID_INPUT, _REFUSED[-1], hint, stdout)
        return int(ExitCode.INVALID_INPUT)
    except ConflictingOptions as exc:
        # When --format itself conflicts, answer in JSON if any use asked for it: stdout stays parseable.
        fmt = "json" if "json" in exc.given["format"] else "text"
        return _error(exc.exit_code, exc.message, exc.hint, fmt, stdout, stderr)
    if args.command is None:
        build_parser().print_help(stderr)  # not a result: stdout stays empty, or JSON
        hint = "choose one of the commands above; `opsctl COMMAND --help` says what each takes"
        return _error(ExitCode.INVALID_INPUT, "no command given", hint, args.format, stdout, stderr)
    module_name, _ = COMMANDS[args.command]
    fmt = args.format
    try:
        module = importlib.import_module(f"client.commands.{module_name}")
        progress = _Progress(stderr, fmt, stdout)
        try:
            output = module.execute(args, progress)
        finally:
            progress.close()
            _flush_traces(stderr)
    except OpsctlError as exc:
        return _error(exc.exit_code, exc.message, exc.hint, fmt, stdout, stderr, kind=exc.kind, lines=_streams(args))
    except KeyboardInterrupt:
        message, hint = _interrupted(args)
        return _error(ExitCode.INTERRUPTED, message, hint, fmt, stdout, stderr, lines=_streams(args))
    except Exception as exc:
        from temporalio.service import RPCError  # only imported when something already failed

        from contracts.request import DocumentError

        if isinstance(exc, RPCError):
            hint = "check the address, the namespace and that the server is healthy"
            message = f"Temporal refused the request: {exc.message}"
            return _error(ExitCode.DEPENDENCY_FAILURE, message, hint, fmt, stdout, stderr, lines=_streams(args))
        if isinstance(exc, DocumentError):
            return _error(
                exc.exit_code,
                str(exc),
                exc.hint or "see `opsctl schema KIND` for the document's shape",
                fmt,
                stdout,
                stderr,
                field=exc.field,
            )
        if os.environ.get("OPSCTL_DEBUG"):
            raise
        return _error(
            ExitCode.UNEXPECTED,
            f"{type(exc).__name__}: {exc}",
            "this is a bug in opsctl; rerun with OPSCTL_DEBUG=1 for the traceback",
            fmt,
            stdout,
            stderr,
        )
    try:
        print(output.render(fmt), file=stdout)
        stdout.flush()
    except BrokenPipeError:  # `opsctl list | head`: the reader has gone, and that is fine
        _quiet(stdout)
    return int(output.exit_code)


def _flush_traces(stderr: TextIO) -> None:
    """A traced command's last spans leave before it exits (bounded: a dead collector costs ~1 s at most)."""
    tracing = sys.modules.get("client.tracing")  # imported only if this command was traced
    if tracing is not None:
        tracing.flush(stderr)


def _quiet(stream: TextIO) -> None:
    """Point a stream whose reader has gone at /dev/null, so the interpreter's last flush stays silent."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: not a real file (a test's StringIO)
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _interrupted(args: argparse.Namespace) -> tuple[str, str]:
    """Ctrl-C stops this command, never the run: say which run goes on and how to follow it."""
    run = getattr(args, "run", None)
    if run is None and args.command == "apply":
        request = getattr(args, "request", None)  # read before connecting; None: the document was not read yet
        if request is None or not getattr(args, "submitting", False):
            return "interrupted before the run was submitted: nothing started", "apply again when you are ready"
        run = request.workflow_id()
        if not getattr(args, "submitted", False):
            follow = f"see whether it did with `opsctl status {run}`"
            return f"interrupted while submitting run {run}: it may have started", follow
    if run:
        follow = f"follow it with `opsctl status {run}` or `opsctl result {run} --wait`"
        return f"interrupted; run {run} goes on", follow
    if args.command == "plan":
        return "interrupted; the dry run goes on and changes nothing", "see it with `opsctl list`"
    return "interrupted", "nothing of this command goes on"


def _streams(args: argparse.Namespace) -> bool:
    """Commands whose JSON is a stream of lines (`watch -o json`): an error is one more line."""
    return bool(args.command == "watch")


def _error(
    code: ExitCode,
    message: str,
    hint: str,
    fmt: str,
    stdout: TextIO,
    stderr: TextIO,
    *,
    lines: bool = False,
    **extra: Any,
) -> int:
    try:
        print(f"error: {message}", file=stderr)
        if hint:
            print(f"hint: {hint}", file=stderr)
        stderr.flush()
    except BrokenPipeError:  # nobody reads stderr any more: the exit code still says what happened
        _quiet(stderr)
    if fmt == "json":
        _json_error(code, message, hint, stdout, lines=lines, **extra)
    return int(code)


def _json_error(code: ExitCode, message: str, hint: str, stdout: TextIO, *, lines: bool = False, **extra: Any) -> None:
    error = {
        "message": message,
        "hint": hint,
        **{k: (v.value if hasattr(v, "value") else v) for k, v in extra.items() if v},
    }
    try:
        print(json.dumps({"error": error, "exit_code": int(code)}, indent=None if lines else 2), file=stdout)
        stdout.flush()
    except BrokenPipeError:
        _quiet(stdout)


class _Progress:
    """Progress lines for humans go to stderr; stdout carries only the result."""

    def __init__(self, stream: TextIO, fmt: str, results: TextIO | None = None) -> None:
        self._stream = stream
        self._results = results
        self.fmt = fmt
        self._bars: Any = None  # client.progress.Bars, once a long step reports progress on a terminal

    def bar(self, key: str, label: str, done: float, total: float) -> bool:
        """Show a step's progress as a live bar; False off a terminal (the caller prints a line instead)."""
        if self.fmt != "text" or not _is_terminal(self._stream):
            return False
        if self._bars is None:
            from client.progress import Bars

            self._bars = Bars(self._stream)
        self._bars.update(key, label, done, total)
        return True

    def close(self) -> None:
        if self._bars is not None:
            self._bars.close()
            self._bars = None

    def emit(self, line: str) -> None:
        """A line of the result stream (`watch -o json` prints JSON lines as the run moves): stdout."""
        try:
            print(line, file=self._results, flush=True)
        except BrokenPipeError:
            _quiet(self._results or sys.stdout)

    def __call__(self, message: str) -> None:
        try:
            if self._bars is not None:  # above the live bars
                self._bars.print(message)
                return
            print(message, file=self._stream, flush=True)
        except BrokenPipeError:
            _quiet(self._stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def main() -> None:
    # A closed stream (`opsctl … >&-`) is None here: write that stream's share nowhere.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    # opsctl uses no pydantic plugin. Looking for them scans every installed distribution's entry
    # points at the first model each command builds, and one found would see every document validated.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    code = run(sys.argv[1:], sys.stdout or devnull, sys.stderr or devnull)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            _quiet(stream)
    # Exit without interpreter finalization: the Temporal SDK's Rust runtime threads can
    # abort the process while Python tears down (PyGILState_Release), turning a clean
    # exit code into SIGABRT. Everything we print is flushed above; nothing else is pending.
    os._exit(code)


if __name__ == "__main__":
    main()
