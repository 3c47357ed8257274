"""validate and schema: offline, no server needed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.config import Config, config_for
from client.migrations import inline_directory
from client.render import Output
from contracts.failures import ExitCode, OpsctlError
from contracts.request import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    Request,
    check_size,
    decode_document,
    load_mapping,
    parse_request,
)

LOCAL_FILES: dict[str, Callable[[dict[str, Any], Path], dict[str, Any]]] = {"MigrateSchema": inline_directory}


def read_request(path: str, config: Config) -> Request:
    """Load and validate a document, and settle who the requester is (your identity)."""
    if path == "-":
        raw, source = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1), "stdin"
    else:
        try:
            with Path(path).open("rb") as file:  # at most one byte past the limit: a huge file is never read whole
                raw, source = file.read(MAX_DOCUMENT_BYTES + 1), path
        except OSError as exc:
            raise OpsctlError(ExitCode.INVALID_INPUT, f"cannot read {path}: {exc.strerror or exc}") from exc
    data = load_mapping(decode_document(raw, source), source)
    # Files a spec names on this machine are read here: the worker never sees this disk.
    read_local_files = LOCAL_FILES.get(str(data.get("kind")))
    if read_local_files is not None and isinstance(data.get("spec"), dict):
        base = Path.cwd() if path == "-" else Path(path).parent
        data = {**data, "spec": read_local_files(data["spec"], base)}
    request = parse_request(data)
    check_size(request)
    _check_environment(request, config)
    user = config.user
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
    del progress
    if args.command == "schema":
        return schema(args.kind)
    request = read_request(args.file, config_for(args))
    data = {
        "valid": True,
        "kind": request.kind,
        "run_id": request.workflow_id(),
        "environment": request.metadata.environment,
        "requester": request.metadata.requester,
        "spec": request.spec,
    }
    text = (
        f"{args.file}: valid {request.kind} for {request.metadata.environment}, "
        f"requested by {request.metadata.requester}\nrun id when applied: {request.workflow_id()}"
    )
    return Output(data, text)


def schema(kind: str) -> Output:
    from contracts.kinds import KINDS, json_schema

    if kind not in KINDS:
        raise OpsctlError(
            ExitCode.INVALID_INPUT, f"unknown kind {kind!r}", hint=f"known kinds: {', '.join(sorted(KINDS))}"
        )
    document = json_schema(kind)
    return Output(document, json.dumps(document, indent=2))
