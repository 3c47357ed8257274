"""One fuzz case at a time: `opsctl` in-process, in a sandbox folder, with no Temporal it could reach.

The sandbox is a temp folder holding each case's working directory, $HOME, state folder, config
file and a copy of the test identities' keys and policy file, so nothing a case does lands
outside it. Temporal's address is a local port held bound but never listening: a command that
must talk to Temporal fails at once ("cannot reach Temporal"), so no case can start a run, and
no other program can take the port while the campaign holds it. `judge` says what makes an
outcome a failure; streams behave as the console script's do (stdout strict UTF-8, stderr
backslash-escaping what it cannot encode), so what would crash a terminal crashes here too.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import sys
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from client.main import build_parser, run

# What a case never runs, and why: each starts servers, or signals processes a stack record names.
EXCLUDED: dict[tuple[str, str | None], str] = {
    ("demo", None): "starts the embedded stack (Temporal, PostgreSQL, moto, a worker) and runs a rotation on it",
    ("dev", "up"): "starts the embedded stack's servers",
    ("dev", "down"): "signals the processes the state folder's stack record names",
}
ALLOWED = frozenset({0, 2, 3})
TRACEBACK = "Traceback (most recent call last)"
# The environment a case may not change: it is what keeps every case away from a real stack.
PINNED = ("OPSCTL_TEMPORAL_ADDRESS", "HOME", "XDG_CONFIG_HOME")


@dataclass(frozen=True)
class Case:
    """One input: argv, the files and stdin it reads, and changes to the sandbox's environment."""

    argv: tuple[str, ...]
    # Path in the case folder → content; a path ending in "/" is a folder, a *.key file is mode 0600.
    files: Mapping[str, bytes] = field(default_factory=dict)
    stdin: bytes = b""
    env: Mapping[str, str | None] = field(default_factory=dict)  # None unsets a variable
    focus: str = ""  # the file this case is about, when the others are fixtures (shown alone in a report)

    def describe(self, limit: int = 400) -> str:
        """The case in one line, each part cut to a readable length."""
        parts = [f"argv={_cut(repr(list(self.argv)), limit)}"]
        if self.env:
            parts.append(f"env={_cut(repr(dict(self.env)), limit)}")
        shown = {self.focus: self.files[self.focus]} if self.focus else self.files
        parts += [f"{name!r}={_cut(repr(content), limit)}" for name, content in shown.items()]
        if self.stdin:
            parts.append(f"stdin={_cut(repr(self.stdin), limit)}")
        return _cut(" ".join(parts), 4 * limit)


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: an exception escaped `run`
    stdout: str
    stderr: str
    stray: str  # what reached sys.stdout/sys.stderr instead of the streams `run` was given
    escaped: str = ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} chars)"


class Sandbox:
    """A temp folder and a dead Temporal address; `run` plays one case in a fresh case folder."""

    def __init__(self, keys: Path) -> None:
        self._keys = keys  # the test identities' keys and policy.yaml: copied into every case
        self._parser = build_parser()
        self._stack = contextlib.ExitStack()
        self.root = Path()
        self.temporal_address = ""
        self._base_env: dict[str, str] = {}  # the caller's environment, without anything opsctl reads

    def __enter__(self) -> Sandbox:
        self.root = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="opsctl-fuzz-")))
        port = self._stack.enter_context(socket.socket())
        port.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused at once
        self.temporal_address = f"127.0.0.1:{port.getsockname()[1]}"
        self._stack.enter_context(_restored_process_state())
        # OPSCTL_DEBUG, say, would turn a bug into a raise: no variable of the caller's reaches a case.
        self._base_env = {name: value for name, value in os.environ.items() if not name.startswith("OPSCTL_")}
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def case_dir(self) -> Path:
        return self.root / "case"

    def environment(self) -> dict[str, str]:
        """Every variable opsctl reads, pointed into the case folder (or at the dead port)."""
        case = self.case_dir
        return {
            "HOME": str(case / "home"),
            "XDG_CONFIG_HOME": str(case / "home" / ".config"),
            "OPSCTL_CONFIG": "",
            "OPSCTL_STATE_DIR": str(case / "state"),
            "OPSCTL_USER": "alice",
            "OPSCTL_KEYS_DIR": str(case / "keys"),
            "OPSCTL_POLICY_FILE": str(case / "keys" / "policy.yaml"),
            "OPSCTL_TEMPORAL_ADDRESS": self.temporal_address,
        }

    def command_of(self, argv: tuple[str, ...]) -> tuple[str | None, str | None] | None:
        """(command, action) as `opsctl` would parse argv, or None when it would refuse it."""
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                args = self._parser.parse_args(list(argv))
            except (SystemExit, Exception):  # the real run reports it, or fails on it: a finding either way
                return None
        return args.command, getattr(args, "action", None)

    def excluded(self, argv: tuple[str, ...]) -> str:
        """Why argv must not run ('' if it may)."""
        command = self.command_of(argv)
        if command is None or command[0] is None:
            return ""
        return EXCLUDED.get((command[0], None)) or EXCLUDED.get((command[0], command[1])) or ""

    def run(self, case: Case) -> Outcome:
        pinned = sorted(set(case.env) & set(PINNED))
        assert not pinned, f"a case may not change {pinned}"
        assert not self.excluded(case.argv), f"excluded: {case.argv}"
        self._prepare(case)
        os.environ.clear()
        os.environ.update(self._base_env)
        os.environ.update(self.environment())
        for name, value in case.env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        out, err = io.BytesIO(), io.BytesIO()
        stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True)
        stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
        stray = io.StringIO()
        sys.stdin = io.TextIOWrapper(io.BytesIO(case.stdin))
        os.chdir(self.case_dir)
        code: int | None = None
        escaped = ""
        try:
            with contextlib.redirect_stdout(stray), contextlib.redirect_stderr(stray):
                code = run(list(case.argv), stdout=stdout, stderr=stderr)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: `run` returns its code, it never exits
            escaped = "".join(traceback.format_exception_only(exc)).strip()
        finally:
            os.chdir(self.root)
        return Outcome(code, _text(out), _text(err), stray.getvalue(), escaped)

    def _prepare(self, case: Case) -> None:
        if self.case_dir.exists():
            shutil.rmtree(self.case_dir)
        (self.case_dir / "home").mkdir(parents=True)
        keys = self.case_dir / "keys"
        keys.mkdir(mode=0o700)
        for source in self._keys.iterdir():
            try:  # a link costs nothing; `keys init --force` unlinks before it writes, so the source stays
                os.link(source, keys / source.name)
            except OSError:  # another file system
                shutil.copy2(source, keys / source.name)
        for name, content in case.files.items():
            path = self.case_dir / name
            assert os.path.normpath(path).startswith(f"{self.case_dir}{os.sep}"), f"{name!r} leaves the case folder"
            if name.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or path.exists():
                path.unlink()
            path.write_bytes(content)
            if path.suffix == ".key":
                path.chmod(0o600)  # a private key anyone could read is refused before it is parsed


@contextlib.contextmanager
def _restored_process_state() -> Iterator[None]:
    """The environment, working directory and stdin as they were before the campaign."""
    environ, cwd, stdin = dict(os.environ), os.getcwd(), sys.stdin
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        sys.stdin = stdin


def _text(stream: io.BytesIO) -> str:
    return stream.getvalue().decode("utf-8", "replace")


def names_a_problem(stderr: str) -> bool:
    """An `error: …` line with something after it (ours, or argparse's `opsctl: error: …`)."""
    return any(line.partition("error: ")[2].strip() for line in stderr.splitlines())


def judge(outcome: Outcome, command: tuple[str | None, str | None] | None, temporal_address: str) -> str:
    """Why an outcome is a failure ('' if it is not)."""
    if outcome.escaped:
        return f"an exception escaped run: {outcome.escaped}"
    if any(TRACEBACK in text for text in (outcome.stdout, outcome.stderr, outcome.stray)):
        return "a traceback in the output"
    if outcome.code == 4 and f"cannot reach Temporal at {temporal_address}" in outcome.stderr:
        return ""  # a command that needs Temporal, refused before it could start anything
    if outcome.code == 4 and command == ("dev", "status") and outcome.stdout.strip():
        return ""  # documented: `dev status` exits 4 when a piece of the stack is down, listing each piece
    if outcome.code not in ALLOWED:
        return f"exit {outcome.code}"
    if outcome.code != 0 and not names_a_problem(outcome.stderr):
        return f"exit {outcome.code} without an error message on stderr"
    return ""
