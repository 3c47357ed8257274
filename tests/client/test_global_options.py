"""Global options (--format, --as, --state-dir): the same before or after the command, never silently overridden."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from client.main import COMMANDS, GLOBAL_OPTIONS, ConflictingOptions, parse, run

# The least each command needs to parse; a new command without an entry fails the tests below.
REQUIRED: dict[str, list[str]] = {
    "validate": ["-f", "doc.yaml"],
    "schema": ["RotateDbCredential"],
    "convert": ["-f", "doc.yaml"],
    "plan": ["-f", "doc.yaml"],
    "apply": ["-f", "doc.yaml"],
    "approve": ["RUN", "--plan-hash", "H"],
    "reject": ["RUN", "--reason", "no"],
    "cancel": ["RUN"],
    "resolve": ["RUN", "--retry", "--comment", "checked"],
    "status": ["RUN"],
    "note": ["RUN", "checked"],
    "watch": ["RUN"],
    "audit": ["RUN"],
    "explain": ["RUN"],
    "rerun": ["RUN"],
    "result": ["RUN"],
    "list": [],
    "schedule": ["list"],
    "dev": ["status"],
    "config": ["show"],
    "completion": ["bash"],
    "policy": ["show", "prod"],
    "keys": ["show"],
    "codec-server": [],
    "demo": [],
}

GLOBALS = ["--format", "json", "--as", "alice", "--address", "h:1", "--namespace", "ns", "--state-dir", "some/state"]
RESOLVED = {"format": "json", "as_user": "alice", "address": "h:1", "namespace": "ns", "state_dir": "some/state"}
DEFAULTS = {"format": "text", "as_user": None, "address": None, "namespace": None, "state_dir": None}


def resolved(argv: list[str]) -> dict[str, object]:
    args = vars(parse(argv))
    return {option.dest: args[option.dest] for option in GLOBAL_OPTIONS}


def two_values(flag: str) -> tuple[str, str]:
    option = next(option for option in GLOBAL_OPTIONS if option.flag == flag)
    return (option.choices[0], option.choices[1]) if option.choices else ("one", "two")


def capture(argv: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(argv, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def document(tmp_path: Path) -> str:
    path = tmp_path / "rotate.yaml"
    path.write_text(
        "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata:\n  environment: prod\n"
        "spec:\n  database: app\n  role: app_user\n  secretId: s\n"
    )
    return str(path)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file, no $OPSCTL_USER or $OPSCTL_STATE_DIR: only the flags decide."""
    monkeypatch.setenv("OPSCTL_CONFIG", "")  # no user file
    monkeypatch.delenv("OPSCTL_USER", raising=False)
    monkeypatch.delenv("OPSCTL_STATE_DIR", raising=False)


def test_every_command_has_a_minimal_argv_here() -> None:
    """The tables below cover every command, so a new command is checked too."""
    assert set(COMMANDS) == set(REQUIRED)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_globals_before_the_command_equal_globals_after_it(name: str) -> None:
    """Every command resolves the global options the same whichever side of the command they are."""
    before = vars(parse([*GLOBALS, name, *REQUIRED[name]]))
    after = vars(parse([name, *REQUIRED[name], *GLOBALS]))
    assert before == after
    assert RESOLVED == resolved([*GLOBALS, name, *REQUIRED[name]])


@pytest.mark.parametrize("name", list(COMMANDS))
def test_globals_split_across_both_positions_resolve_each(name: str) -> None:
    """Some globals before the command and the others after it: each keeps its own value."""
    argv = ["--format", "json", "--address", "h:1", name, *REQUIRED[name], "--as", "alice", "--namespace", "ns"]
    argv += ["--state-dir", "some/state"]
    assert RESOLVED == resolved(argv)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_globals_not_given_take_their_defaults(name: str) -> None:
    """Without any global option, command modules read the defaults they always did."""
    assert DEFAULTS == resolved([name, *REQUIRED[name]])


@pytest.mark.parametrize("option", [option.flag for option in GLOBAL_OPTIONS])
def test_the_same_value_twice_is_accepted(option: str) -> None:
    """Repeating a global option with the same value, in either or both positions, is not a conflict."""
    value, _ = two_values(option)
    dest = next(o.dest for o in GLOBAL_OPTIONS if o.flag == option)
    assert value == resolved([option, value, "status", "RUN", option, value])[dest]
    assert value == resolved([option, value, option, value, "status", "RUN"])[dest]
    assert value == resolved(["status", "RUN", option, value, option, value])[dest]


@pytest.mark.parametrize("option", [option.flag for option in GLOBAL_OPTIONS])
@pytest.mark.parametrize("where", ["before and after", "twice before", "twice after"])
def test_different_values_exit_2_naming_the_option(option: str, where: str) -> None:
    """A global option given twice with different values is an error (exit 2), never a silent choice."""
    first, second = two_values(option)
    argv = {
        "before and after": [option, first, "status", "RUN", option, second],
        "twice before": [option, first, option, second, "status", "RUN"],
        "twice after": ["status", "RUN", option, first, option, second],
    }[where]
    with pytest.raises(ConflictingOptions):
        parse(argv)
    code, _, stderr = capture(argv)
    assert 2 == code
    assert f"error: {option} given twice with different values ({first}, {second}); give it once\n" == stderr


def test_a_conflict_in_json_mode_prints_the_json_error() -> None:
    """With --format json, the conflict is also reported as the JSON error object on stdout."""
    code, stdout, stderr = capture(["--format", "json", "--as", "alice", "status", "RUN", "--as", "bob"])
    assert 2 == code
    assert "error: --as given twice with different values (alice, bob); give it once\n" == stderr
    assert {
        "error": {"message": "--as given twice with different values (alice, bob); give it once", "hint": ""},
        "exit_code": 2,
    } == json.loads(stdout)


def test_a_conflicting_format_answers_in_json() -> None:
    """When --format itself conflicts and one use asked for JSON, stdout still carries the JSON error."""
    code, stdout, _ = capture(["--format", "json", "status", "RUN", "--format", "text"])
    assert 2 == code
    assert 2 == json.loads(stdout)["exit_code"]


def test_help_lists_the_global_options_at_both_levels(capsys: pytest.CaptureFixture[str]) -> None:
    """`opsctl --help` and `opsctl COMMAND --help` both document every global option."""
    flags = [option.flag for option in GLOBAL_OPTIONS]
    for argv in (["--help"], ["status", "--help"]):
        with pytest.raises(SystemExit):
            parse(argv)
        shown = capsys.readouterr().out
        assert flags == [flag for flag in flags if f"  {flag} " in shown or f", {flag} " in shown]


def test_format_json_before_the_command_prints_json() -> None:
    """`opsctl --format json schema KIND` prints JSON, the same as with --format after the command."""
    before = capture(["--format", "json", "schema", "RotateDbCredential"])
    after = capture(["schema", "RotateDbCredential", "--format", "json"])
    assert 0 == before[0]
    assert "object" == json.loads(before[1])["type"]
    assert after == before


@pytest.mark.usefixtures("offline")
def test_as_before_the_command_is_the_requester(tmp_path: Path) -> None:
    """`opsctl --as bob validate` records bob as the requester, the same as `--as bob` after the command."""
    path = document(tmp_path)
    before = capture(["--as", "bob", "--format", "json", "validate", "-f", path])
    after = capture(["validate", "-f", path, "--as", "bob", "--format", "json"])
    assert 0 == before[0], before[2]
    assert "bob" == json.loads(before[1])["requester"]
    assert after == before


@pytest.mark.usefixtures("offline")
def test_state_dir_before_dev_status_is_the_one_read(tmp_path: Path) -> None:
    """`opsctl --state-dir X dev status` looks in X, the same as `--state-dir` after the command."""
    state = tmp_path / "state"
    state.mkdir()
    before = capture(["--state-dir", str(state), "--format", "json", "dev", "status"])
    after = capture(["dev", "status", "--state-dir", str(state), "--format", "json"])
    assert str(state.resolve()) == json.loads(before[1])["state_dir"]
    assert after == before


def test_an_argparse_error_goes_to_the_stderr_run_was_given() -> None:
    """In-process callers (tests, the demo) read argparse's own message from their stream, with exit 2."""
    code, stdout, stderr = capture(["validate"])
    assert 2 == code
    assert "" == stdout
    assert "opsctl validate: error: the following arguments are required: -f/--file" in stderr


def test_help_goes_to_the_stdout_run_was_given() -> None:
    code, stdout, stderr = capture(["status", "--help"])
    assert 0 == code
    assert stdout.startswith("usage: opsctl status")
    assert "" == stderr


def test_no_command_is_exit_2_with_an_error_message_and_help_on_stderr() -> None:
    """`opsctl` alone names the problem; stdout stays empty in text and carries the JSON error in JSON."""
    code, stdout, stderr = capture([])
    assert (2, "") == (code, stdout)
    assert "usage: opsctl" in stderr
    assert "error: no command given\n" in stderr
    code, stdout, _ = capture(["--format", "json"])
    assert 2 == code
    assert "no command given" == json.loads(stdout)["error"]["message"]


@pytest.mark.parametrize(
    "argv",
    [
        ["schema", "RotateDbCredential", "--as=--"],
        ["--format=--", "schema", "RotateDbCredential"],
        ["validate", "--file=--"],
        ["validate", "-f--"],
        ["list", "--limit=--"],
    ],
)
def test_an_option_whose_value_is_a_double_dash_is_exit_2_expecting_one_argument(argv: list[str]) -> None:
    """Python 3.11's argparse reads `--as=--` as the empty list: it was an exception out of run, or exit 1."""
    code, _, stderr = capture(argv)
    assert 2 == code
    assert "expected one argument" in stderr


def test_o_is_format_before_and_after_the_command_and_version_prints_the_installed_one() -> None:
    """`-o json` as kubectl has it, in either place; `--version` on stdout, exit 0."""
    import io
    from importlib.metadata import version

    assert "json" == parse(["-o", "json", "list"]).format
    assert "json" == parse(["list", "-o", "json"]).format
    with pytest.raises(ConflictingOptions):
        parse(["-o", "json", "list", "--format", "text"])
    out, err = io.StringIO(), io.StringIO()
    assert 0 == run(["--version"], stdout=out, stderr=err)
    assert (f"opsctl {version('opsctl')}\n", "") == (out.getvalue(), err.getvalue())
