"""Documents drawn from the kinds' own JSON Schemas (pydantic's `model_json_schema`), then broken.

`fitting(schema)` draws a document that fits its schema field by field: patterns through
`st.from_regex`, numeric bounds, enums, required and optional properties, so many documents
pass and reach the spec models' own validators. `broken(schema)` then damages a few places:
a value of the wrong type, a number or length just outside a bound the schema declares, a
required field dropped, an unknown one added (often the snake_case twin of a real camelCase
field), a value wrapped in a list, a wrong apiVersion or kind.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from contracts.migrate_schema import checksum_of
from tests.chaos.hostile import hostile_values

Schema = dict[str, Any]

# Values that make a document likelier to pass as a whole: a policy-known environment, the
# caller as requester, a well-formed public key, migrations in order with their checksums.
_SQL = ("CREATE TABLE t (id int);", "SELECT 1;", "ALTER TABLE t ADD COLUMN c int;", "BEGIN; COMMIT;", "not sql")


def _migrations(sqls: list[str], checksums: bool) -> list[dict[str, str]]:
    return [
        {"version": f"{n:04d}_m{n}", "sql": sql, **({"checksum": checksum_of(sql)} if checksums else {})}
        for n, sql in enumerate(sqls, 1)
    ]


HINTS: dict[str, st.SearchStrategy[Any]] = {
    "environment": st.sampled_from(["dev", "staging", "prod"]),
    "requester": st.just("alice"),
    "publicKey": st.binary(min_size=32, max_size=32).map(lambda raw: "ed25519:" + base64.b64encode(raw).decode()),
    "migrations": st.builds(
        _migrations,
        st.lists(st.sampled_from(_SQL) | st.text(min_size=1, max_size=30), min_size=1, max_size=3),
        st.booleans(),
    ),
    "directory": st.sampled_from(["migrations", "nonexistent", ".", "", "/"]),
}


def _resolved(node: Schema, defs: Schema) -> Schema:
    while "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def fitting(schema: Schema) -> st.SearchStrategy[Any]:
    """Documents that fit `schema` (a whole one, with its `$defs`)."""
    return _fitting(schema, schema.get("$defs", {}), "")


def _fitting(node: Schema, defs: Schema, name: str) -> st.SearchStrategy[Any]:
    generic = _generic(_resolved(node, defs), defs)
    hint = HINTS.get(name)
    return generic if hint is None else hint | generic


def _generic(node: Schema, defs: Schema) -> st.SearchStrategy[Any]:
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "anyOf" in node:
        return st.one_of(*(_fitting(option, defs, "") for option in node["anyOf"]))
    kind = node.get("type")
    if kind == "string":
        return _string(node)
    if kind == "integer":
        low = node.get("minimum", node["exclusiveMinimum"] + 1 if "exclusiveMinimum" in node else None)
        return st.integers(low, node.get("maximum"))
    if kind == "number":
        return st.floats(node.get("minimum"), node.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        least = node.get("minItems", 0)
        return st.lists(_fitting(node.get("items", {}), defs, ""), min_size=least, max_size=least + 2)
    if kind == "object" or "properties" in node:
        return _object(node, defs)
    return hostile_values()  # a schema that allows anything


def _string(node: Schema) -> st.SearchStrategy[str]:
    least, most = node.get("minLength", 0), node.get("maxLength")
    if "pattern" in node:
        matching = st.from_regex(str(node["pattern"]), fullmatch=True)
        return matching.filter(lambda s: least <= len(s) <= (most or len(s)))
    if node.get("format") == "date-time":
        return st.datetimes().map(lambda moment: moment.isoformat() + "Z")
    if node.get("format") == "time":
        return st.times().map(lambda moment: moment.isoformat(timespec="minutes"))
    return st.text(min_size=least, max_size=max(least, min(most or 20, 20)))


def _object(node: Schema, defs: Schema) -> st.SearchStrategy[dict[str, Any]]:
    properties: Schema = node.get("properties", {})
    if properties:
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {key: _fitting(sub, defs, key) for key, sub in properties.items() if key in required},
            optional={key: _fitting(sub, defs, key) for key, sub in properties.items() if key not in required},
        )
    values = node.get("additionalProperties")
    if isinstance(values, dict):
        keys = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,12}\Z") | st.text(min_size=1, max_size=12)
        return st.dictionaries(keys, _fitting(values, defs, ""), max_size=3)
    return st.dictionaries(st.text(max_size=8), hostile_values(), max_size=3)


def edges(schema: Schema) -> list[Any]:
    """Values just inside and just outside every bound the schema declares: numbers and string lengths."""
    found: set[int] = set()
    for node in _nodes(schema):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"):
            if isinstance(node.get(key), int):
                found.add(node[key])
    numbers = sorted({bound + step for bound in found for step in (-1, 0, 1)})
    lengths = [n for n in numbers if 0 <= n <= 5000]
    return [*numbers, *(float(n) for n in numbers[:4]), *("x" * n for n in lengths), *(str(n) for n in numbers[:4])]


def _nodes(node: Any) -> Iterator[Schema]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _places(document: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key or index) for every value inside the document."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield document, key
            yield from _places(value)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield document, index
            yield from _places(value)


WRONG_API_VERSIONS = (
    "opsctl/v2",
    "opsctl/V1",
    "Opsctl/v1",
    " opsctl/v1",
    "opsctl/v1 ",
    "opsctl",
    "",
    None,
    1,
    ["opsctl/v1"],
)


def broken(schema: Schema, kinds: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Documents fitting `schema`, damaged in up to four places (or not at all).

    `kinds`: for a request document, the kinds a wrong `kind` may name instead.
    """
    fits = fitting(schema)
    outside = st.sampled_from(edges(schema)) if edges(schema) else hostile_values()
    wrong_kind = st.sampled_from(kinds or ("",)) | st.sampled_from(
        ["", "rotatedbcredential", "Rotate DbCredential", None, 1]
    )

    @st.composite
    def damaged(draw: st.DrawFn) -> Any:
        document = copy.deepcopy(draw(fits))
        for _ in range(draw(st.integers(0, 4))):
            places = list(_places(document))
            if not places:
                break
            container, key = draw(st.sampled_from(places))
            how = draw(st.sampled_from(["wrong type", "out of range", "drop", "extra", "twin", "wrap"]))
            if how == "wrong type":
                container[key] = draw(hostile_values())
            elif how == "out of range":
                container[key] = draw(outside)
            elif how == "drop" and isinstance(container, dict):
                del container[key]
            elif how == "extra" and isinstance(container, dict):
                extra = draw(st.text(max_size=12) | st.sampled_from(sorted(str(k) for k in container)))
                container[extra] = draw(hostile_values())
            elif how == "twin" and isinstance(container, dict) and isinstance(key, str) and _snake(key) != key:
                container[_snake(key)] = container.pop(key)
            elif how == "wrap":
                container[key] = [container[key]]
        if isinstance(document, dict) and kinds and draw(st.integers(0, 5)) == 0:
            document["apiVersion"] = draw(st.sampled_from(WRONG_API_VERSIONS))
        if isinstance(document, dict) and kinds and draw(st.integers(0, 5)) == 0:
            document["kind"] = draw(wrong_kind)
        return document

    return damaged()
