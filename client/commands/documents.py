"""validate, schema and convert: offline, no server needed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from client.config import Config, config_for
from client.render import Output, table
from contracts import kinds
from contracts.failures import ExitCode, OpsctlError
from contracts.request import (
    MAX_DOCUMENT_BYTES,
    REQUESTER_CHARS,
    DocumentError,
    Request,
    check_size,
    decode_document,
    load_mapping,
    parse_request,
)


def _inline_migrations(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    from client.migrations import inline_directory  # MigrateSchema's models: only for its documents

    return inline_directory(spec, base)


LOCAL_FILES: dict[str, Callable[[dict[str, Any], Path], dict[str, Any]]] = {"MigrateSchema": _inline_migrations}


def now() -> datetime:
    """The moment a deprecated version is judged at (the worker judges again, at the run's start)."""
    return datetime.now(UTC)


def read_document(path: str) -> tuple[str, str]:
    """A document's text and the name to call it by ('-': stdin)."""
    if path == "-":
        raw, source = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1), "stdin"
    else:
        try:
            with Path(path).open("rb") as file:  # at most one byte past the limit: a huge file is never read whole
                raw, source = file.read(MAX_DOCUMENT_BYTES + 1), path
        except OSError as exc:
            raise OpsctlError(ExitCode.INVALID_INPUT, f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_document(raw, source), source


def read_request(path: str, config: Config, warn: Callable[[str], None] | None = None) -> Request:
    """Load and validate a document, and settle who the requester is (your identity).

    A deprecated version is refused once its date has passed (exit 3); until then each of
    its warnings is handed to `warn`.
    """
    text, source = read_document(path)
    data = load_mapping(text, source)
    # Files a spec names on this machine are read here: the worker never sees this disk.
    read_local_files = LOCAL_FILES.get(str(data.get("kind")))
    if read_local_files is not None and isinstance(data.get("spec"), dict):
        base = Path.cwd() if path == "-" else Path(path).parent
        data = {**data, "spec": read_local_files(data["spec"], base)}
    request = parse_request(data)
    reserved = [label for label in request.metadata.labels if label.startswith("opsctl/")]
    if reserved:
        raise DocumentError(
            f"{reserved[0]!r}: labels under opsctl/ are set by opsctl itself (opsctl/rerun-of: `opsctl rerun`)",
            field="metadata.labels",
        )
    for warning in kinds.check_accepted(request.kind, request.api_version, now()):
        if warn is not None:
            warn(warning)
    check_size(request)
    _check_environment(request, config)
    user = config.user
    if len(user) > REQUESTER_CHARS:  # model_copy below does not validate: the worker would refuse the run
        raise DocumentError(
            f"is {len(user)} characters long (you, {user[:20]!r}…); a requester has at most {REQUESTER_CHARS}",
            field="metadata.requester",
            exit_code=ExitCode.VALIDATION_FAILED,
        )
    asked = request.metadata.requester
    if asked is not None and asked != user:
        raise DocumentError(
            f"is {asked!r} but you are {user!r}; the requester is whoever submits the run",
            field="metadata.requester",
            exit_code=ExitCode.VALIDATION_FAILED,
        )
    metadata = request.metadata.model_copy(update={"requester": user})
    return request.model_copy(update={"metadata": metadata})


def _check_environment(request: Request, config: Config) -> None:
    """An environment no policy names fails here already (the worker would refuse it too)."""
    from client.policies import local_policies

    policies, source = local_policies(config)
    if request.metadata.environment not in policies.environments:
        raise DocumentError(
            f"no policy for environment {request.metadata.environment!r} in {source}; "
            f"known: {', '.join(sorted(policies.environments))}",
            field="metadata.environment",
            exit_code=ExitCode.VALIDATION_FAILED,
        )


def execute(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    if args.command == "schema":
        return schema(args.kind, args.api_version, args.example, progress)
    if args.command == "convert":
        return convert(args.file, progress)
    return validate(args, progress)


def validate(args: argparse.Namespace, progress: Callable[[str], None]) -> Output:
    warnings: list[str] = []
    request = read_request(args.file, config_for(args), warn=warnings.append)
    for warning in warnings:
        progress(f"warning: {warning}")
    data = {
        "valid": True,
        "kind": request.kind,
        "api_version": request.api_version,
        "run_id": request.workflow_id(),
        "environment": request.metadata.environment,
        "requester": request.metadata.requester,
        "spec": request.spec,
        "warnings": warnings,
    }
    text = (
        f"{args.file}: valid {request.kind} for {request.metadata.environment}, "
        f"requested by {request.metadata.requester} ({request.api_version})\n"
        f"run id when applied: {request.workflow_id()}"
    )
    return Output(data, text)


def _known_kind(kind: str) -> None:
    if kind not in kinds.VERSIONS:
        error = kinds.unknown_kind(kind)
        message, _, known = error.message.partition("; known kinds: ")
        raise OpsctlError(ExitCode.INVALID_INPUT, message, hint=f"known kinds: {known} (`opsctl schema` lists them)")


def _known_version(kind: str, api_version: str) -> None:
    if kinds.version(kind, api_version) is None:
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            kinds.unknown_version(kind, api_version).message,
            hint=f"`opsctl schema` lists every kind with its versions; without --version: {kinds.latest(kind)}",
        )


def schema(kind: str | None, api_version: str | None, example: bool, progress: Callable[[str], None]) -> Output:
    """No kind: the kinds and their versions. A kind: its JSON Schema, or (--example) a commented example."""
    if kind is None:
        if api_version is not None or example:
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"{'--version' if api_version is not None else '--example'} needs a KIND",
                hint="`opsctl schema` lists the kinds",
            )
        return schema_listing()
    _known_kind(kind)
    version = kinds.latest(kind) if api_version is None else api_version  # "": a version nobody has (exit 2)
    _known_version(kind, version)
    deprecated = kinds.deprecation(kind, version)
    if deprecated is not None:
        progress(f"warning: {deprecated.warning()}")
    if example:
        from contracts.examples import example as example_of

        text = example_of(kind, version)
        return Output(load_mapping(text, "the example"), text.rstrip("\n"))
    document = kinds.json_schema(kind, version)
    return Output(document, json.dumps(document, indent=2))


def schema_listing() -> Output:
    """Every kind with its versions: which is the latest, which are deprecated and until when."""
    rows: list[dict[str, Any]] = []
    text_rows: list[dict[str, Any]] = []
    for kind, versions in kinds.VERSIONS.items():
        deprecations = [kinds.deprecation(kind, row.api_version) for row in versions]
        listed = [
            {
                "api_version": row.api_version,
                "latest": row is versions[-1],
                "deprecated": deprecated is not None,
                "stops_being_accepted": f"{deprecated.stops:%Y-%m-%d}" if deprecated else None,
            }
            for row, deprecated in zip(versions, deprecations, strict=True)
        ]
        rows.append({"kind": kind, "latest": versions[-1].api_version, "versions": listed})
        note = "; ".join(
            f"{found.api_version} stops being accepted on {found.stops:%Y-%m-%d}" for found in deprecations if found
        )
        names = ", ".join(row.api_version for row in versions)
        text_rows.append({"kind": kind, "versions": names, "latest": versions[-1].api_version, "deprecated": note})
    text = table(text_rows, ["kind", "versions", "latest", "deprecated"])
    text += "\n\n`opsctl schema KIND [--version V]` prints a kind's JSON Schema; add --example for a commented example"
    return Output({"kinds": rows}, text)


def convert(path: str, progress: Callable[[str], None]) -> Output:
    """The document in its kind's latest version: the same request (the same run id), nothing else changed."""
    import yaml

    text, source = read_document(path)
    data = load_mapping(text, source)
    request = parse_request(data)  # the document must be valid as it is: only a valid one converts exactly
    latest = kinds.latest(request.kind)
    if request.api_version == latest:
        known = kinds.versions(request.kind)
        why = (
            f"{request.kind} has one version, {latest}: nothing to convert"
            if len(known) == 1
            else f"{source} is already {latest}, the latest version of {request.kind}"
        )
        progress(f"{why}; printed unchanged")
        return Output(data, text.rstrip("\n"))
    spec = kinds.read_spec(request.kind, request.api_version, request.spec)
    document = {
        "apiVersion": latest,
        "kind": request.kind,
        "metadata": data["metadata"],
        "spec": spec.model_dump(mode="json", by_alias=True),
    }
    converted = parse_request(document)
    assert converted.workflow_id() == request.workflow_id(), "a conversion is the same request"
    progress(f"converted {source} from {request.api_version} to {latest}; the run id stays {request.workflow_id()}")
    rendered = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return Output(document, rendered.rstrip("\n"))
