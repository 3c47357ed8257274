"""The request envelope: a Kubernetes-style YAML or JSON document, validated strictly.

`parse_document` turns text into a `Request` whose spec has been checked by its kind's
model; every problem is reported as a `DocumentError` that names the offending field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from contracts.failures import ExitCode

# Every apiVersion some kind has (`contracts.kinds` says which kind has which); v1 is every kind's first.
API_VERSIONS = ("opsctl/v1", "opsctl/v2")
API_VERSION = API_VERSIONS[0]


class StrictModel(BaseModel):
    """Unknown fields are errors; documents use camelCase, Python uses snake_case."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


REQUESTER_CHARS = 128


class Metadata(StrictModel):
    environment: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,31}$", description="Target environment; the worker's policy for it governs the run."
    )
    requester: str | None = Field(
        default=None,
        min_length=1,
        max_length=REQUESTER_CHARS,  # a search attribute of the run: Temporal terminates a run whose upsert passes 2 KB
        description="Who asks for the run. Filled from your identity; must match it if given.",
    )
    idempotency_key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Same key, same run: a repeated apply attaches to it. Default: the spec's hash.",
    )
    approval_timeout_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Shortens the environment's approval deadline (never lengthens it).",
    )
    labels: dict[str, str] = Field(default_factory=dict)


RERUN_LABEL = "opsctl/rerun-of"  # metadata.labels: the run a rerun repeats (`opsctl rerun`)


class Request(StrictModel):
    """A validated request. `spec` holds the kind's spec, normalised to document form."""

    api_version: Literal["opsctl/v1", "opsctl/v2"] = "opsctl/v1"
    kind: str = Field(max_length=64)  # a search attribute too; the workflow judges whether it is its own
    metadata: Metadata
    spec: dict[str, Any]

    def spec_hash(self) -> str:
        """sha256 over kind, environment and spec: the default idempotency identity.

        The spec is taken in the oldest version that says it (`contracts.kinds.identity_spec`):
        a document and its conversion to a newer version are the same request, the same run.
        """
        from contracts.kinds import identity_spec  # the kinds table imports this module

        spec = identity_spec(self.kind, self.api_version, self.spec)
        canonical = json.dumps(
            {"kind": self.kind, "environment": self.metadata.environment, "spec": spec},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def workflow_id(self) -> str:
        key = self.metadata.idempotency_key or self.spec_hash()[:16]
        return f"{self.kind}-{self.metadata.environment}-{key}"


class DocumentError(Exception):
    """A request document that cannot be used. `field` is a dotted path when one is known;
    `hint` says what to do about it, when the message alone does not."""

    def __init__(
        self, message: str, field: str = "", exit_code: ExitCode = ExitCode.INVALID_INPUT, hint: str = ""
    ) -> None:
        prefixed = field and not message.startswith(f"{field}:")
        super().__init__(f"{field}: {message}" if prefixed else message)
        self.field = field
        self.message = message
        self.exit_code = exit_code
        self.hint = hint


def _field_path(loc: tuple[int | str, ...]) -> str:
    # A key from the document is shown escaped when it holds a newline or a control character:
    # it must not break the message's line or speak to the terminal.
    return ".".join(str(part) if str(part).isprintable() else repr(part) for part in loc)


def describe_validation_error(
    error: ValidationError, prefix: str = "", model: type[BaseModel] | None = None
) -> DocumentError:
    """Turn pydantic's report into one DocumentError naming every bad field.

    `model`: the model that was validated; an unknown field is then matched against the
    fields it has at that place ("did you mean 'olderThanDays'?").
    """
    from contracts.suggest import unknown_field

    problems = []
    first_field = ""
    for item in error.errors():
        path = _field_path((prefix, *item["loc"]) if prefix else item["loc"])
        first_field = first_field or path
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            meant = unknown_field(model, item["loc"]) if model is not None else ""
            parent = _field_path((prefix, *item["loc"][:-1]) if prefix else item["loc"][:-1])
            meant = f"{parent}.{meant}" if meant and parent else meant
            message = f"unknown field; did you mean {meant!r}?" if meant else "unknown field"
        problems.append(f"{path}: {message}")
    return DocumentError("; ".join(problems), field=first_field, exit_code=ExitCode.VALIDATION_FAILED)


# A document travels in every payload of its run (input, state, result), and Temporal refuses a
# payload over 2 MB: a request is kept well under that, with room for its plan and decisions.
MAX_DOCUMENT_BYTES = 512 * 1024
MAX_DEPTH = 32  # nesting of mappings and lists; request documents need a handful


def decode_document(data: bytes, source: str = "document") -> str:
    """A document's bytes as text, or DocumentError (exit 2) naming what is wrong with them."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"{source} is larger than {MAX_DOCUMENT_BYTES:,} bytes, the most a request document may be "
            "(its run carries it in every Temporal payload, which the server caps at 2 MB)"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError(f"{source} is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")  # a UTF-8 byte-order mark is allowed, and dropped
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{source} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") from None
    if "\x00" in text:
        raise DocumentError(f"{source} contains a NUL character (at offset {text.index(chr(0))}): it is not text")
    return text


_SURROGATE = re.compile(r"[\ud800-\udfff]")


MAX_INTEGER_BITS = 256  # far past every numeric field's bounds


def _shown(value: Any, limit: int = 60, form: Callable[[Any], str] = repr) -> str:
    """A value read from a document, for a message: cut to `limit` characters."""
    try:
        text = form(value)
    except ValueError:  # an int past Python's 4,300-digit limit cannot even be printed
        return f"an integer of {value.bit_length():,} bits" if isinstance(value, int) else type(value).__name__
    length = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({length:,} characters)"


def _strict_loader(aliases: bool) -> Any:
    """yaml's SafeLoader, stricter: a key given twice, a key that is not a string, an anchor or
    alias, a merge key and nesting past MAX_DEPTH are errors (each would make a document mean
    something other than what it shows, or cost more than its size); so are a value its tag
    cannot hold (2026-02-30, a 5,000-digit int) and a lone surrogate escape, with their place."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                value = super().construct_object(node, deep=deep)
                # 0xfff… of 4,000 digits is read, but cannot even be printed (Python's 4,300-digit limit).
                if isinstance(value, int) and value.bit_length() > MAX_INTEGER_BITS:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"an integer of {value.bit_length():,} bits is larger than any field takes",
                        node.start_mark,
                    )
                return value
            # PyYAML's constructors trust the tag or pattern that chose them: 2026-02-30, !!bool x, !!timestamp x.
            except (ValueError, KeyError, AttributeError) as exc:
                value = _shown(node.value if isinstance(node, yaml.ScalarNode) else node.id, 40)
                reason = f" ({exc})" if isinstance(exc, ValueError) else ""
                kind = str(node.tag).rsplit(":", 1)[-1]
                raise yaml.constructor.ConstructorError(
                    None, None, f"{value} is not a valid {kind}{reason}", node.start_mark
                ) from None

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if not aliases and (isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)):
                raise yaml.composer.ComposerError(
                    None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark
                )
            self._depth = getattr(self, "_depth", 0) + 1
            try:
                if self._depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(
                        None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    def mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):  # `!!map [1]`: the tag asks for a mapping the node is not
            found = "sequence" if isinstance(node, yaml.SequenceNode) else "scalar"
            raise yaml.constructor.ConstructorError(
                None, None, f"a !!map must be a mapping, not a {found}", node.start_mark
            )
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, "merge keys (<<) are not allowed", key_node.start_mark
                )
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"keys must be strings, not {type(key).__name__} ({_shown(key, 40, str)})",
                    key_node.start_mark,
                )
            if key in result:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            result[key] = loader.construct_object(value_node, deep=True)
        return result

    def text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
        # YAML reads "\ud83d\udca9" as two surrogates, JSON as one character (json.dumps writes emoji so):
        # pairs become their character; a lone surrogate is no character at all.
        value = loader.construct_scalar(node)
        if not _SURROGATE.search(value):
            return value
        try:
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a lone surrogate escape (\\ud800-\\udfff without its pair) is not a character",
                node.start_mark,
            ) from None

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG, text)
    return StrictLoader


NOT_PLAIN_HINT = (
    "documents are plain YAML or JSON: string keys, each once; no anchors, aliases, merge keys or custom tags"
)


def _syntax_hint(where: Any) -> str:
    """'fix the YAML syntax at line 3, column 7': the place PyYAML points at (a mark, or an error holding one)."""
    mark = getattr(where, "problem_mark", None) or getattr(where, "context_mark", None) or where
    line, column = getattr(mark, "line", None), getattr(mark, "column", None)
    at = f" at line {line + 1}, column {column + 1}" if isinstance(line, int) and isinstance(column, int) else ""
    return f"fix the YAML syntax{at} (indentation, a missing ':' or closing bracket or quote); JSON is YAML too"


def load_mapping(
    text: str,
    source: str = "document",
    shape: str = "a mapping with apiVersion, kind, metadata and spec",
    aliases: bool = False,
) -> dict[str, Any]:
    """Read YAML or JSON (JSON is YAML) into a mapping, or raise DocumentError (exit 2).

    `aliases`: allow YAML anchors and aliases (an operator's policy file may share a list);
    a request document may not (an alias expands to copies when the run serialises it).
    """
    import yaml  # imported here: the CLI's --help must not pay for it

    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{source} is larger than {MAX_DOCUMENT_BYTES:,} bytes, the most a request may be")
    loader = None
    try:
        loader = _strict_loader(aliases)(text)  # what yaml.load does, keeping the loader to say where
        data = loader.get_single_data()
    except (yaml.scanner.ScannerError, yaml.parser.ParserError, yaml.reader.ReaderError) as exc:
        raise DocumentError(f"{source} has a YAML syntax error: {exc}", hint=_syntax_hint(exc)) from exc
    except yaml.YAMLError as exc:  # well-formed, but something a document may not hold (the message says what)
        raise DocumentError(f"{source} is not valid YAML or JSON: {exc}", hint=NOT_PLAIN_HINT) from exc
    except ValueError as exc:  # the scanner's escapes: "\U00110000" names no character
        mark = loader.get_mark() if loader is not None else None
        where = f"\n{mark}" if mark is not None else ""
        raise DocumentError(f"{source} has a YAML syntax error: {exc}{where}", hint=_syntax_hint(mark)) from None
    except RecursionError:
        raise DocumentError(f"{source} is nested too deeply to read") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise DocumentError(f"{source} must be {shape}")
    return data


def parse_request(data: dict[str, Any]) -> Request:
    """Validate the envelope, then the spec against its kind's model at the document's version.

    The spec stays in the version the document wrote (what the requester signs and the run
    records); `contracts.kinds.read_spec` converts it to the latest where a workflow reads it.
    Whether a deprecated version is still accepted depends on the day: `kinds.check_accepted`.
    """
    from contracts import kinds  # the kinds table imports this module
    from contracts.suggest import did_you_mean

    version = data.get("apiVersion")
    if version not in API_VERSIONS:
        suggestion = did_you_mean(version, API_VERSIONS) if isinstance(version, str) else ""
        raise DocumentError(
            f"must be one of {', '.join(API_VERSIONS)}, got {_shown(version)}{suggestion}", field="apiVersion"
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in kinds.VERSIONS:
        raise kinds.unknown_kind(kind)
    if kinds.version(kind, version) is None:
        raise kinds.unknown_version(kind, version)
    try:
        envelope = Request.model_validate(data)
    except ValidationError as exc:
        error = describe_validation_error(exc, model=Request)
        error.hint = f"`opsctl schema {kind} --version {version}` shows the document's shape"
        raise error from exc
    try:
        spec = kinds.validate_spec(kind, envelope.api_version, envelope.spec)
    except DocumentError as exc:
        exc.hint = _other_version_hint(kind, envelope.api_version, envelope.spec)
        raise
    return envelope.model_copy(update={"spec": spec.model_dump(mode="json", by_alias=True)})


def _other_version_hint(kind: str, api_version: str, spec: dict[str, Any]) -> str:
    """A spec written for another version of its kind (the apiVersion changed, the spec did not) says so."""
    from contracts import kinds

    known = kinds.versions(kind)
    for other in known:
        if other != api_version:
            try:
                kinds.validate_spec(kind, other, spec)
            except DocumentError:
                continue
            then = (
                " (then `opsctl convert -f DOC` prints it as the newer one)"
                if known.index(other) < known.index(api_version)
                else ""
            )
            return f"the spec is a valid {kind} {other} spec: set apiVersion: {other}{then}"
    return f"`opsctl schema {kind} --version {api_version}` shows the document's shape"


def check_size(request: Request) -> None:
    """The request as its run will carry it must fit (documents grow when the client inlines files)."""
    size = len(request.model_dump_json(by_alias=True).encode())
    if size > MAX_DOCUMENT_BYTES:
        hint = (
            " (split the migrations over several documents, each under that)" if request.kind == "MigrateSchema" else ""
        )
        raise DocumentError(
            f"the request is {size:,} bytes as submitted; at most {MAX_DOCUMENT_BYTES:,} fit in a run's "
            f"Temporal payloads{hint}",
            field="spec",
        )


def parse_document(text: str, source: str = "document") -> Request:
    return parse_request(load_mapping(text, source))
