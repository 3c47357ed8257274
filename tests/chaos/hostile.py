"""Hostile pieces for documents: bytes, YAML fragments and values nobody should send.

Strategies here build raw material; `tests.chaos.families` puts it into cases. Each is built
once (`functools.cache`): hypothesis validates a strategy the first time it draws from it.
Sizes stay small in what hypothesis draws (it caps the data one example may use) and grow by
repetition, so "huge" costs nothing to generate.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC
from typing import Any

from hypothesis import strategies as st

from contracts.request import MAX_DEPTH, MAX_DOCUMENT_BYTES

GOOD_REQUEST = (
    "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata:\n  environment: dev\n"
    "spec:\n  database: app\n  role: app_user\n  secretId: demo/app_user\n"
)

# Byte sequences that are not UTF-8: stray continuation bytes, overlong forms, truncated
# sequences, encoded surrogates (CESU-8), code points past U+10FFFF, bytes never used.
INVALID_UTF8 = (
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xbf",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xe2\x82",
    b"\xf0\x28\x8c\xbc",
    b"\xf0\x90\x28\xbc",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfc\x84\x80\x80\x80\x80",
)

# Byte-order marks, each with the codec its text would be in (None: the bytes follow as UTF-8).
BOMS: tuple[tuple[bytes, str | None], ...] = (
    (b"\xef\xbb\xbf", None),
    (b"\xef\xbb\xbf\xef\xbb\xbf", None),  # two: the second is text
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", None),
    (b"\xfe\xff", None),
    (b"+/v8", None),  # UTF-7
    (b"\xf7\x64\x4c", None),  # UTF-1
    (b"\x0e\xfe\xff", None),  # SCSU
    (b"\xdd\x73\x66\x73", None),  # UTF-EBCDIC
)

# Characters that change how text looks or reads: bidi controls, zero widths, line and
# paragraph separators, C0/C1 controls, an escape sequence, non-characters, private use.
TRICKY_CHARACTERS = (
    "\u202e",
    "\u202d",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200b",
    "\u200d",
    "\u200e",
    "\u200f",
    "\ufeff",
    "\u2028",
    "\u2029",
    "\x85",
    "\x1b[31m",
    "\x1b]8;;http://x\x07",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x07",
    "\x7f",
    "\x9b",
    "\ue000",
    "\ufffe",
    "\uffff",
    "\U0010ffff",
    "\U0001f4a9",
    "\u0301",
    "\t",
)

# YAML tags, safe ones and ones SafeLoader must refuse.
TAGS = (
    "!!python/object/apply:os.system ['true']",
    "!!python/object/new:os.system ['true']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!python/bytes aGVsbG8=",
    "!!binary aGVsbG8=",
    "!!binary '!!!'",
    "!!set {a, b}",
    "!!omap [{a: 1}, {b: 2}]",
    "!!omap [a, b]",
    "!!pairs [[a, 1, 2]]",
    "!!timestamp 2026-02-30",
    "!!timestamp 2026-01-01T25:61:61Z",
    "!!timestamp x",
    "!!float x",
    "!!float 1e999",
    "!!int x",
    "!!int 0x",
    "!!bool maybe",
    "!!null x",
    "!!str 1",
    "!!map [1]",
    "!!seq {a: 1}",
    "!!merge x",
    "!!value x",
    "!custom x",
    "!<tag:example.com,2026:x> y",
    "!<!> z",
    "!e!x y",
    "!!",
    "!",
)

# Plain scalars YAML 1.1 reads as something other than a string, and other loaded values.
SCALARS = (
    "yes",
    "no",
    "on",
    "off",
    "y",
    "~",
    "null",
    "true",
    ".nan",
    ".inf",
    "-.inf",
    "0x1F",
    "0o17",
    "017",
    "0b101",
    "1_000",
    "1e999",
    "-1e999",
    "1e-999",
    "2026-12-01",
    "2026-02-30",
    "2026-13-01",
    "2026-12-01T00:00:00Z",
    "2026-12-01 25:00:00",
    "9999-12-31T23:59:59.9999999+99:99",
    "190:20:30",
    "-190:20:30.5",
    "=",
    "''",
    '""',
    '"\\ud800"',
    '"\\udcff"',
    '"\\x00"',
    '"\\u0000"',
    '"\\u202e"',
    '"\\U0010ffff"',
    '"\\U00110000"',
    '"\\q"',
    "9" * 4300,
    "9" * 4301,
    "-" + "9" * 5000,
    "0x" + "f" * 4000,
    "1" * 5000 + ".5",
    "0." + "0" * 5000 + "1",
    "x" * 2049,
)

# Keys YAML reads as something other than a string, duplicated keys, odd keys.
KEYS = (
    "1",
    "-1",
    "1.5",
    "true",
    "null",
    "~",
    ".nan",
    "2026-01-01",
    "0x10",
    "? [a, b]\n",
    "? {a: 1}\n",
    "? !!binary aGVsbG8=\n",
    "? |\n  block\n",
    "<<",
    "=",
    "''",
    '"spec"',
    "spec",
    "kind",
    "apiVersion",
    "metadata",
    "environment",
    "role",
    "secretId",
    "secret_id",
    "SecretId",
    "\u202espec",
    "spec\u200b",
    "x" * 1025,
)

# Anchors, aliases and merge keys, including the recursive and exponential ones.
ALIASES = (
    "a: &a x\nb: *a",
    "a: &a [*a]",
    "a: &a {b: *a}",
    "x: *undefined",
    "base: &b {role: postgres}\nother:\n  <<: *b",
    "<<: {role: postgres}",
    "<<: [{a: 1}, {b: 2}]",
    "<<: 1",
    "a: &a [1, 1, 1, 1]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]",
    "&anchor key: value",
    "*alias : value",
    "a: !!binary &b aGVsbG8=",
)

# Directives and document markers.
DIRECTIVES = (
    "%YAML 1.1",
    "%YAML 1.2",
    "%YAML 1.3",
    "%YAML 2.0",
    "%YAML 1.1\n%YAML 1.1",
    "%TAG ! tag:example.com,2026:",
    "%TAG !! tag:example.com,2026:",
    "%FOO bar",
    "---",
    "--- |",
    "--- !!map",
    "--- !!python/object:os.system",
    "...",
    "---\n---",
    "--- a\n--- b",
)

STRUCTURE = (":", "{", "}", "[", "]", "-", "&", "*", "!", "|", ">", "'", '"', "#", "%", "@", "`", ",", "?", "\\")
# Tokens whose random sequences look enough like YAML to get past the scanner now and then.
YAML_SOUP = (
    *STRUCTURE,
    "\n",
    "\n  ",
    "\n- ",
    ": ",
    "- ",
    "? ",
    "&a ",
    "*a",
    "<<: ",
    "!!str ",
    "!!binary ",
    "apiVersion: opsctl/v1\n",
    "kind: RotateDbCredential\n",
    "metadata:\n",
    "spec:\n",
    "  environment: dev\n",
    "  role: app_user\n",
    "x",
    "1",
    " ",
    "\t",
)


def _splice(text: str, line: int, indent: int, fragment: str) -> str:
    """`fragment` inserted before line `line` (modulo the line count), each of its lines indented."""
    lines = text.splitlines(keepends=True)
    at = line % (len(lines) + 1)
    pad = " " * indent
    inserted = "".join(f"{pad}{part}\n" for part in fragment.split("\n"))
    return "".join([*lines[:at], inserted, *lines[at:]])


def _replace_value(text: str, line: int, value: str) -> str:
    """The value of the `key: value` line at `line` (modulo) replaced, keeping its key."""
    lines = text.splitlines(keepends=True)
    candidates = [n for n, part in enumerate(lines) if ": " in part and not part.lstrip().startswith("#")]
    if not candidates:
        return text + value
    n = candidates[line % len(candidates)]
    key = lines[n].split(": ", 1)[0]
    lines[n] = f"{key}: {value}\n"
    return "".join(lines)


def _insert(data: bytes, position: int, piece: bytes) -> bytes:
    at = position % (len(data) + 1)
    return data[:at] + piece + data[at:]


@functools.cache
def yaml_fragments() -> st.SearchStrategy[str]:
    """One line or a few: a key with a hostile value, a tag, an alias, a directive."""
    value = st.sampled_from(SCALARS) | st.sampled_from(TAGS) | st.sampled_from(STRUCTURE)
    key_value = st.builds(lambda k, v: f"{k}: {v}", st.sampled_from(KEYS), value)  # "? [a]\n" + ": v": a complex key
    return st.one_of(key_value, st.sampled_from(ALIASES), st.sampled_from(DIRECTIVES), st.sampled_from(TAGS))


@functools.cache
def spliced(bases: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """A good document with a hostile fragment spliced in, or one value replaced by a hostile one."""
    insert = st.builds(_splice, bases, st.integers(0, 60), st.sampled_from([0, 2, 4, 1, 3]), yaml_fragments())
    replace = st.builds(_replace_value, bases, st.integers(0, 60), st.sampled_from(SCALARS) | st.sampled_from(TAGS))
    return st.one_of(insert, replace).map(str.encode)


@functools.cache
def byte_damage(bases: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """A good document with NULs, invalid UTF-8 or tricky characters inserted, or a BOM in front."""
    nul = st.builds(_insert, bases.map(str.encode), st.integers(0, 400), st.sampled_from([b"\x00", b"\x00" * 3]))
    invalid = st.builds(_insert, bases.map(str.encode), st.integers(0, 400), st.sampled_from(INVALID_UTF8))
    tricky = st.builds(
        _insert, bases.map(str.encode), st.integers(0, 400), st.sampled_from(TRICKY_CHARACTERS).map(str.encode)
    )
    surrogates = st.builds(
        _insert,
        bases.map(str.encode),
        st.integers(0, 400),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF).map(lambda c: c.encode("utf-8", "surrogatepass")),
    )
    return st.one_of(nul, invalid, tricky, surrogates, st.builds(_with_bom, st.sampled_from(BOMS), bases))


def _with_bom(bom: tuple[bytes, str | None], text: str) -> bytes:
    mark, codec = bom
    return mark + text.encode(codec or "utf-8")


@functools.cache
def nested() -> st.SearchStrategy[bytes]:
    """Flow and block nesting, balanced or not, around the depth limit and far past it."""
    depth = st.integers(MAX_DEPTH - 4, MAX_DEPTH + 4) | st.integers(1, 6000)
    shapes: dict[str, Callable[[int], str]] = {
        "flow lists": lambda n: "spec: " + "[" * n + "]" * n,
        "flow maps": lambda n: "spec: " + "{a: " * n + "b" + "}" * n,
        "flow mixed": lambda n: "spec: " + "[{a: " * n + "1" + "}]" * n,
        "unclosed": lambda n: "spec: " + "[" * n,
        "unopened": lambda n: "spec: " + "]" * n,
        "block maps": lambda n: "spec:\n" + "".join("  " * (i + 1) + "k:\n" for i in range(min(n, 400))),
        "block lists": lambda n: "spec: " + "- " * n + "x",
        "block lists on lines": lambda n: "spec:\n" + "".join("  " * (i + 1) + "-\n" for i in range(min(n, 400))),
        "anchored": lambda n: "a: &x " + "[" * n + "]" * n + "\nb: *x",
    }
    return st.builds(lambda shape, n: shapes[shape](n).encode(), st.sampled_from(sorted(shapes)), depth)


@functools.cache
def huge() -> st.SearchStrategy[bytes]:
    """Around the size limit and past it: a long comment, a long value, a long line, many keys."""
    near = st.integers(MAX_DOCUMENT_BYTES - 64, MAX_DOCUMENT_BYTES + 64)
    over = st.sampled_from([MAX_DOCUMENT_BYTES * 2, MAX_DOCUMENT_BYTES * 8])
    size = st.one_of(over, over, over, near)

    def comment(n: int) -> bytes:
        return GOOD_REQUEST.encode() + b"#" + b"x" * max(0, n - len(GOOD_REQUEST) - 2) + b"\n"

    def value(n: int) -> bytes:
        head = GOOD_REQUEST.replace("secretId: demo/app_user", "secretId: ")
        return head.encode() + b"s" * max(0, n - len(head))

    def labels(n: int) -> bytes:
        lines = [f"    l{i}: v\n" for i in range(max(1, n // 10))]
        return GOOD_REQUEST.replace("environment: dev\n", "environment: dev\n  labels:\n" + "".join(lines)).encode()

    def line(n: int) -> bytes:
        return b"x" * n

    makers = {"comment": comment, "value": value, "line": line}
    big = st.builds(lambda how, n: makers[how](n), st.sampled_from(sorted(makers)), size)
    # Many small labels: YAML must read every one of them, so these stay well under the limit.
    many = st.integers(100, 2000).map(lambda n: labels(n * 10))
    return big | many


@functools.cache
def binary() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=2048),
        st.text(max_size=600).map(str.encode),
        st.lists(st.sampled_from(YAML_SOUP), max_size=60).map(lambda tokens: "".join(tokens).encode()),
        st.sampled_from([b"", b"\n", b" ", b"\x00", b"null", b"~", b"[]", b"{}", b"-", b"---", b"...", b"#"]),
    )


@functools.cache
def argv_text() -> st.SearchStrategy[str]:
    """What a shell can pass as one argument: any text but NUL, or bytes that are not UTF-8 (surrogate-escaped)."""
    return st.one_of(
        st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40),
        st.binary(min_size=1, max_size=24).filter(lambda b: b"\x00" not in b).map(os.fsdecode),
        st.sampled_from(TRICKY_CHARACTERS),
        st.integers(1_000, 200_000).map(lambda n: "x" * n),
    )


@functools.cache
def hostile_values() -> st.SearchStrategy[Any]:
    """Values of every type a document can hold, and a few it cannot (bytes, datetimes: YAML tags)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([-1, 0, 2**31, 2**63, 2**64, -(2**63) - 1, 10**100, 10**4000]),
        st.floats(),
        st.text(max_size=40),
        st.sampled_from([*TRICKY_CHARACTERS, "", " ", "\ud800", "\udcff", "a\ud800b", "\x00", "null", "~", "yes"]),
        st.integers(2040, 4100).map(lambda n: "x" * n),
        st.sampled_from([MAX_DOCUMENT_BYTES - 200, MAX_DOCUMENT_BYTES + 10]).map(lambda n: "y" * n),
        st.binary(max_size=16),
        st.datetimes(timezones=st.none() | st.just(UTC)),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(max_size=8) | st.integers() | st.none(), inner, max_size=3)
        ),
        max_leaves=6,
    )
