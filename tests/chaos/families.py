"""The fuzzing families: each a name, what it covers, and a hypothesis strategy of `Case`s.

- documents: any bytes given as a request or policy document (file or stdin), and migration folders;
- structured: documents built from each kind's JSON Schema, then broken, through `validate`;
- examples: every file in `examples/` with characters inserted, deleted or replaced;
- arguments: argv from the real parser's commands, flags and choices, plus hostile tokens;
- config: the config file, the policy file it names, the stack record, key file and keys folder.

The argument vocabulary is read from `client.main.build_parser()`, so a new command or flag is
fuzzed without a change here. What the harness never runs (`EXCLUDED`) is left out of it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from client.main import build_parser
from contracts.kinds import KINDS, json_schema
from contracts.policy import PolicySet
from tests.chaos import hostile
from tests.chaos.harness import EXCLUDED, Case
from tests.chaos.schemas import broken

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass(frozen=True)
class Family:
    name: str
    covers: str
    cases: st.SearchStrategy[Case]


def _read(paths: list[Path]) -> dict[str, bytes]:
    return {str(path.relative_to(EXAMPLES)): path.read_bytes() for path in sorted(paths)}


# Every example a person might start from: requests, the policy file, the migrations they name.
EXAMPLE_FILES = _read([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("policies/*.yaml"), *EXAMPLES.glob("migrations/*.sql")])
MIGRATIONS = {name: data for name, data in EXAMPLE_FILES.items() if name.startswith("migrations/")}
REQUESTS = [hostile.GOOD_REQUEST] + [
    data.decode() for name, data in EXAMPLE_FILES.items() if "/" not in name and name.endswith(".yaml")
]
POLICIES = [data.decode() for name, data in EXAMPLE_FILES.items() if name.startswith("policies/")]
FORMATS = st.sampled_from([(), (), ("--format", "json"), ("--format", "text")])
REQUEST_BASES = st.sampled_from(REQUESTS)
POLICY_BASES = st.sampled_from(POLICIES)


def _with_format(argv: tuple[str, ...], fmt: tuple[str, ...], before: bool) -> tuple[str, ...]:
    return (*fmt, *argv) if before else (*argv, *fmt)


# ---- documents -------------------------------------------------------------------------------

DOCUMENT_NAMES = (
    "doc.yaml",
    "doc.json",
    "doc",
    "a b/doc.yaml",
    os.fsdecode(b"d\xff\xfe.yaml"),
    "d\u202eoc.yaml",
    "\u00e9t\u00e9.yaml",
    "x" * 200 + ".yaml",
)
MIGRATE_DOCUMENT = (
    "apiVersion: opsctl/v1\nkind: MigrateSchema\nmetadata: {{environment: dev}}\n"
    "spec:\n  database: app\n  directory: {directory}\n"
)
DIRECTORIES = ("m", "m/", "./m", "m/../m", "''", ".", "/", "nonexistent", "doc.yaml", '"m\\0x"', "~", "m/0001_a.sql")
SQL_NAMES = ("0001_A.sql", "0001.sql", ".sql", "0001_x.SQL", "x.sql", "0001_a.sql.bak", "00000000000000000000001_a.sql")


def _file_names() -> st.SearchStrategy[str]:
    """One name in a folder: any text or bytes but '/' and NUL, never '.' or '..'."""
    text = st.text(st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1, max_size=20)
    raw = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\x00" not in b).map(os.fsdecode)
    return (text | raw).filter(lambda name: name not in (".", "..") and len(os.fsencode(name)) < 200)


SQL_FILE_NAMES = st.one_of(
    st.from_regex(r"\A[0-9]{1,5}_[a-z0-9_]{0,10}\.sql\Z"),
    st.sampled_from(SQL_NAMES),
    _file_names().map(lambda name: name + ".sql"),
)
_SQL_TEXTS = st.sampled_from([data.decode() for data in MIGRATIONS.values()])
SQL_CONTENTS = st.one_of(
    _SQL_TEXTS.map(str.encode),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    hostile.byte_damage(_SQL_TEXTS),
)


@st.composite
def migration_folders(draw: st.DrawFn) -> Case:
    """A MigrateSchema document naming a folder of odd .sql files (names, bytes, sub-folders)."""
    files: dict[str, bytes] = {"m/": b""}
    drawn = draw(st.dictionaries(SQL_FILE_NAMES, SQL_CONTENTS, max_size=5))
    files.update({f"m/{name}": data for name, data in drawn.items()})
    for folder in draw(st.lists(st.sampled_from(["m/0009_dir.sql/", "m/sub/"]), max_size=2, unique=True)):
        files[folder] = b""
    files["doc.yaml"] = MIGRATE_DOCUMENT.format(directory=draw(st.sampled_from(DIRECTORIES))).encode()
    return Case(("validate", "-f", "doc.yaml"), files=files)


@st.composite
def document_cases(draw: st.DrawFn) -> Case:
    target = draw(st.sampled_from(["validate"] * 6 + ["stdin", "policy", "policy", "plan", "apply", "folder"]))
    if target == "folder":
        return draw(migration_folders())
    bases = POLICY_BASES if target == "policy" else REQUEST_BASES
    how = draw(st.sampled_from(["binary"] * 3 + ["spliced"] * 4 + ["damaged"] * 3 + ["nested"] * 2 + ["huge"]))
    if how == "binary":
        data = draw(hostile.binary())
    elif how == "spliced":
        data = draw(hostile.spliced(bases))
    elif how == "damaged":
        data = draw(hostile.byte_damage(bases))
    else:
        data = draw(hostile.nested() if how == "nested" else hostile.huge())
    name = draw(st.sampled_from(DOCUMENT_NAMES))
    argv = {
        "validate": ("validate", "-f", name),
        "stdin": ("validate", "-f", "-"),
        "policy": ("policy", "check", "-f", name),
        "plan": ("plan", "-f", name),
        "apply": ("apply", "-f", name, "--wait"),
    }[target]
    argv = _with_format(argv, draw(FORMATS), draw(st.booleans()))
    if target == "stdin":
        return Case(argv, stdin=data)
    return Case(argv, files={name: data})


# ---- structured documents ------------------------------------------------------------------

SCHEMAS: dict[str, dict[str, Any]] = {kind: json_schema(kind) for kind in KINDS}
POLICY_SCHEMA = PolicySet.model_json_schema(by_alias=True)


def _serialised(document: Any, how: str) -> bytes:
    """The document as YAML or JSON text; what cannot be written one way is written the other.

    A document holding a huge string is written as JSON: PyYAML's emitter takes seconds over one.
    """
    try:
        if how == "json" or len(json.dumps(document, default=str)) > 20_000:
            return json.dumps(document, default=str).encode()
        if how == "json unicode":
            return json.dumps(document, default=str, ensure_ascii=False, indent=2).encode("utf-8", "surrogatepass")
        flow = how == "yaml flow"
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=flow, allow_unicode=False).encode()
    except (ValueError, TypeError, yaml.YAMLError):
        return json.dumps(document, default=repr).encode()


BROKEN = {kind: broken(schema, kinds=tuple(sorted(SCHEMAS))) for kind, schema in SCHEMAS.items()}
BROKEN["PolicySet"] = broken(POLICY_SCHEMA)


@st.composite
def structured_cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(sorted(BROKEN)))
    document = draw(BROKEN[kind])
    argv = ("policy", "check", "-f", "doc.yaml") if kind == "PolicySet" else ("validate", "-f", "doc.yaml")
    text = _serialised(document, draw(st.sampled_from(["yaml", "yaml flow", "json", "json unicode"])))
    files = {"doc.yaml": text, **MIGRATIONS}  # `directory: migrations` finds the example's
    return Case(_with_format(argv, draw(FORMATS), draw(st.booleans())), files=files, focus="doc.yaml")


# ---- mutations of the examples ---------------------------------------------------------------

EDIT_BYTES = (*(c.encode() for c in hostile.STRUCTURE), b"\x00", b"\xff", b"\t", b"\n", b" ", b"  ", b"\r", b"#")


@st.composite
def _edited(draw: st.DrawFn, data: bytes) -> bytes:
    how = draw(st.sampled_from(["insert", "delete", "replace", "insert", "replace", "lines"]))
    at = draw(st.integers(0, max(0, len(data) - 1)))
    piece = draw(
        st.sampled_from(EDIT_BYTES)
        | st.characters().map(lambda c: c.encode("utf-8", "surrogatepass"))
        | st.binary(min_size=1, max_size=3)
    )
    if how == "insert":
        return data[:at] + piece + data[at:]
    if how == "delete":
        return data[:at] + data[at + draw(st.integers(1, 8)) :]
    if how == "replace":
        return data[:at] + piece + data[at + 1 :]
    lines = data.splitlines(keepends=True) or [b""]
    n, m = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    change = draw(st.sampled_from(["duplicate", "drop", "swap", "indent", "dedent"]))
    if change == "duplicate":
        lines.insert(m, lines[n])
    elif change == "drop":
        del lines[n]
    elif change == "swap":
        lines[n], lines[m] = lines[m], lines[n]
    elif change == "indent":
        lines[n] = b" " * draw(st.integers(1, 4)) + lines[n]
    else:
        lines[n] = lines[n].lstrip(b" ")
    return b"".join(lines)


@st.composite
def example_cases(draw: st.DrawFn) -> Case:
    target = draw(st.sampled_from(sorted(EXAMPLE_FILES)))
    data = EXAMPLE_FILES[target]
    for _ in range(draw(st.integers(1, 6))):
        data = draw(_edited(data))
    files = {f"examples/{name}": (data if name == target else content) for name, content in EXAMPLE_FILES.items()}
    document = "migrate-schema.yaml" if target.startswith("migrations/") else target
    if document.startswith("policies/"):
        argv: tuple[str, ...] = ("policy", "check", "-f", f"examples/{document}")
    else:
        argv = (draw(st.sampled_from(["validate"] * 5 + ["plan"])), "-f", f"examples/{document}")
    return Case(_with_format(argv, draw(FORMATS), draw(st.booleans())), files=files, focus=f"examples/{target}")


# ---- CLI arguments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    """One argument of the parser: its flags (none for a positional), whether it takes a value, its choices."""

    flags: tuple[str, ...]
    dest: str
    takes_value: bool
    choices: tuple[str, ...]
    type: str  # "int", "float" or "str"


@dataclass(frozen=True)
class Vocabulary:
    global_words: tuple[Word, ...]
    commands: Mapping[str, tuple[Word, ...]]

    def flags(self) -> list[str]:
        words = [*self.global_words, *(w for words in self.commands.values() for w in words)]
        return sorted({flag for word in words for flag in word.flags})

    def choices(self) -> list[str]:
        words = [*self.global_words, *(w for words in self.commands.values() for w in words)]
        return sorted({choice for word in words for choice in word.choices})


def _word(action: argparse.Action, command: str | None) -> Word:
    excluded = {action_name for (name, action_name) in EXCLUDED if name == command and action_name}
    choices = tuple(str(c) for c in (action.choices or ()) if str(c) not in excluded)
    kind = getattr(action.type, "__name__", "str") if action.type in (int, float) else "str"
    return Word(tuple(action.option_strings), action.dest, action.nargs != 0, choices, kind)


def vocabulary(parser: argparse.ArgumentParser) -> Vocabulary:
    """The commands, flags and choices the parser knows, without what the harness never runs."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = {
        name: tuple(_word(action, name) for action in command._actions)
        for name, command in sub.choices.items()
        if (name, None) not in EXCLUDED
    }
    return Vocabulary(tuple(_word(a, None) for a in parser._actions if a.option_strings), commands)


VOCABULARY = vocabulary(build_parser())
ARGUMENT_FILES: dict[str, bytes] = {
    "doc.yaml": hostile.GOOD_REQUEST.encode(),
    os.fsdecode(b"d\xff.yaml"): hostile.GOOD_REQUEST.encode(),
    "bad.yaml": b"\xff\xfe not a document",
    "empty.yaml": b"",
    "policy.yaml": POLICIES[0].encode(),
    "dir/": b"",
}
PATHS = (*sorted(ARGUMENT_FILES), "-", "", ".", "/", "nonexistent.yaml", "/dev/null", "x" * 300, "doc.yaml/", "~/x")
INTS = ("0", "-1", "1", "20", "1e3", "0x10", "\u0661\u0662", "9" * 5000, "", " 5", "5 ", "+5", "nan", "-0")
FLOATS = ("nan", "inf", "-inf", "1e309", "-0", "0", "0.001", "1_0", "0x1p3", "", "  3  ", "\u0661", "-1", "1e-320")
DASHES = ("--", "-", "", "-h", "--help", "---")  # values argparse may read as something else (`--as=--`)
RUN_IDS = ("RUN", "RotateDbCredential-dev-dev-rotation-1", "", " ", "-", "a" * 2000, "%00", "../../etc/passwd")


@functools.cache
def _value(word: Word) -> st.SearchStrategy[str]:
    if word.choices:
        plausible: st.SearchStrategy[str] = st.sampled_from(word.choices)
    elif word.type == "int":
        plausible = st.sampled_from(INTS) | st.integers().map(str)
    elif word.type == "float":
        plausible = st.sampled_from(FLOATS) | st.floats().map(repr)
    elif word.dest == "file":
        plausible = st.sampled_from(PATHS)
    elif word.dest == "run":
        plausible = st.sampled_from(RUN_IDS)
    elif word.dest == "kind":
        plausible = st.sampled_from(sorted(KINDS))
    else:
        plausible = st.sampled_from(["alice", "bob", "prod", "dev", "state", "x"])
    return plausible | plausible | hostile.argv_text() | st.sampled_from(DASHES)


@functools.cache
def _use(word: Word) -> st.SearchStrategy[list[str]]:
    return _one_use(word)


@st.composite
def _one_use(draw: st.DrawFn, word: Word) -> list[str]:
    """One use of a word: a positional's value, or a flag with its value in one of the ways argparse reads."""
    if not word.flags:
        return [draw(_value(word))]
    flag = draw(st.sampled_from(word.flags))
    if not word.takes_value:
        return [flag] if draw(st.integers(0, 7)) else [f"{flag}={draw(_value(word))}"]
    value = draw(_value(word))
    style = draw(st.sampled_from(["apart", "apart", "equals", "glued", "missing"]))
    if style == "equals":
        return [f"{flag}={value}"]
    if style == "glued":
        return [flag + value]
    if style == "missing":
        return [flag]
    return [flag, value]


JUNK = ("--", "-", "--help", "-h", "", "---", "--=", "-=", "--no-such-flag", "-x", "help", "--format=", "-ff")


@st.composite
def argument_cases(draw: st.DrawFn) -> Case:
    voc = VOCABULARY
    if draw(st.integers(0, 4)) == 0:  # a soup of every word the parser knows and hostile tokens
        known = st.sampled_from([*voc.flags(), *voc.choices(), *voc.commands, *JUNK])
        argv = draw(st.lists(known | hostile.argv_text(), max_size=10))
    else:
        name = draw(st.sampled_from(sorted(voc.commands)))
        words = voc.commands[name]
        positional = [w for w in words if not w.flags and w.dest != "help"]
        flagged = [w for w in words if w.flags]
        parts = [draw(_use(w)) for w in positional if draw(st.integers(0, 5))]
        parts += [draw(_use(w)) for w in draw(st.lists(st.sampled_from(flagged), max_size=5))]
        parts = list(draw(st.permutations(parts))) if parts else []
        before = [draw(_use(w)) for w in draw(st.lists(st.sampled_from(voc.global_words), max_size=2))]
        argv = [token for part in before for token in part] + [name] + [token for part in parts for token in part]
        for _ in range(draw(st.integers(0, 2))):
            argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(JUNK) | hostile.argv_text()))
    return Case(tuple(argv), files=ARGUMENT_FILES, stdin=hostile.GOOD_REQUEST.encode(), focus="doc.yaml")


# ---- config files ----------------------------------------------------------------------------

CONFIG_KEYS = ("user", "temporal_address", "namespace", "task_queue", "state_dir", "ui_url", "policy_file")
SENSIBLE: dict[str, tuple[str, ...]] = {
    "user": ("alice", "bob", "eve", "", "\u202ebob", "a b", "x" * 100),
    "state_dir": ("state", "", ".", "/", "nonexistent/deep", "~", "doc.yaml", "x" * 300),
    "policy_file": ("policy.yaml", "", "nonexistent", ".", "state", "doc.yaml", "/dev/null"),
    "temporal_address": ("127.0.0.1:1", "::::", "", "localhost"),  # never used: $OPSCTL_TEMPORAL_ADDRESS wins
}
TOML_VALUES = (
    "1",
    "-1",
    "9223372036854775808",
    "0x10",
    "1_000",
    "1.5",
    "nan",
    "-inf",
    "1e400",
    "true",
    "false",
    "1979-05-27T07:32:00Z",
    "1979-05-27",
    "07:32:00",
    "1979-02-30",
    "1979-05-27T25:00:00",
    "[]",
    "[1, 'a', [2]]",
    "{}",
    "{ a = 1 }",
    "'literal'",
    "'''multi\nline'''",
    '"""multi\nline"""',
    '"\\ud800"',
    '"\\u0000"',
    '"\\x41"',
    '"unterminated',
    "",
)
KEY_FOLDERS = ("doc.yaml", "doc.yaml/keys", "x" * 300, "new/deep/keys", "", "home")
CONFIG_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("validate", "-f", "doc.yaml"),
    ("validate", "-f", "doc.yaml", "--format", "json"),
    ("keys", "show"),
    ("keys", "init"),
    ("keys", "init", "--force"),
    ("policy", "show", "--local"),
    ("policy", "show", "prod"),
    ("policy", "check", "-f", "policy.yaml"),
    ("schema", "RotateDbCredential"),
    ("status", "RUN"),
    ("list",),
    ("apply", "-f", "doc.yaml"),
    ("dev", "status"),
)


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string, escapes and all


def _toml_value(key: str) -> st.SearchStrategy[str]:
    sensible = st.sampled_from(SENSIBLE.get(key, ("x", ""))).map(_toml_string)
    return sensible | sensible | st.sampled_from(TOML_VALUES) | hostile.argv_text().map(_toml_string)


@st.composite
def toml_documents(draw: st.DrawFn) -> bytes:
    keys = st.sampled_from(CONFIG_KEYS) | st.sampled_from(["USER", "user ", "unknown", '"user"', "user.name", "a.b.c"])
    lines = []
    for key in draw(st.lists(keys, max_size=6)):
        lines.append(f"{key} = {draw(_toml_value(key.strip(chr(34))))}")
    for _ in range(draw(st.integers(0, 1))):
        header = draw(st.sampled_from(["[user]", "[[user]]", "[opsctl]", "[", "[a.b]", "[]"]))
        lines.insert(draw(st.integers(0, len(lines))), header)
    return "\n".join(lines).encode()


def _stack_record(ports: Any, pieces: Any) -> bytes:
    return json.dumps({"ports": ports, "pieces": pieces}, default=str).encode()


PIECE = st.fixed_dictionaries(
    {"name": st.sampled_from(["temporal", "worker"]), "address": st.sampled_from(["127.0.0.1:1", "", "x:y"])},
    optional={"pid": st.sampled_from([0, -1, 2**40]) | hostile.hostile_values(), "extra": hostile.hostile_values()},
)
STACK_RECORDS = st.one_of(
    hostile.binary(),
    st.builds(
        _stack_record,
        st.dictionaries(st.sampled_from(["temporal", "ui", "postgres", "bogus"]), hostile.hostile_values(), max_size=3)
        | hostile.hostile_values(),
        st.dictionaries(st.sampled_from(["temporal", "worker", "bogus"]), PIECE | hostile.hostile_values(), max_size=2)
        | hostile.hostile_values(),
    ),
)


@st.composite
def config_cases(draw: st.DrawFn) -> Case:
    files: dict[str, bytes] = {"doc.yaml": hostile.GOOD_REQUEST.encode()}
    content = draw(
        toml_documents() | toml_documents() | hostile.binary() | hostile.byte_damage(st.just('user = "alice"\n'))
    )
    where = draw(st.sampled_from(["config.toml"] * 5 + ["missing", "folder/", "~", "", os.fsdecode(b"c\xff.toml")]))
    env: dict[str, str | None] = {}
    if where == "missing":
        env["OPSCTL_CONFIG"] = "missing.toml"
    elif where == "~":
        files["home/config.toml"] = content
        env["OPSCTL_CONFIG"] = "~/config.toml"
    elif where in ("", "folder/"):
        files["folder/"] = b""
        env["OPSCTL_CONFIG"] = where
    else:
        files[where] = content
        env["OPSCTL_CONFIG"] = where
    for name in draw(st.sets(st.sampled_from(["OPSCTL_USER", "OPSCTL_STATE_DIR", "OPSCTL_POLICY_FILE"]))):
        env[name] = None  # the config file's key decides instead
    if draw(st.booleans()):
        files["policy.yaml"] = draw(st.sampled_from(POLICIES).map(str.encode) | hostile.binary())
    if draw(st.booleans()):
        files[draw(st.sampled_from(["state/stack.json", "stack.json"]))] = draw(STACK_RECORDS)
    if draw(st.integers(0, 3)) == 0:
        files["keys/alice.key"] = draw(hostile.binary())
    if draw(st.integers(0, 3)) == 0:  # where your keys live: a file, a name too long, a folder to create
        env["OPSCTL_KEYS_DIR"] = draw(st.sampled_from(KEY_FOLDERS))
    return Case(draw(st.sampled_from(CONFIG_COMMANDS)), files=files, env=env)


FAMILIES = (
    Family(
        "documents",
        "bytes as a request or policy document (file or stdin): binary, invalid UTF-8, BOMs, NULs, control "
        "and bidi characters, huge, deep flow and block nesting, YAML tags, anchors, aliases, merge keys, "
        "non-string and duplicate keys, directives; migration folders of odd .sql files",
        document_cases(),
    ),
    Family(
        "structured",
        "documents from each kind's JSON Schema (and the policy file's), with wrong types, values just "
        "outside declared bounds, huge strings, unicode, missing and unknown fields, wrong apiVersion and kind",
        structured_cases(),
    ),
    Family(
        "examples",
        "every file in examples/ (requests, policy, migrations) with bytes inserted, deleted, replaced "
        "and lines duplicated, dropped, swapped or re-indented",
        example_cases(),
    ),
    Family(
        "arguments",
        "argv from the parser's own commands, flags and choices, in any order and position, repeated, "
        "--flag=value and glued forms, missing values, --, empty, very long and non-UTF-8 arguments",
        argument_cases(),
    ),
    Family(
        "config",
        "$OPSCTL_CONFIG as random bytes, TOML with real and unknown keys and wrong types, a missing file, "
        "a folder; with the policy file, stack record, key file and keys folder it leads to",
        config_cases(),
    ),
)
