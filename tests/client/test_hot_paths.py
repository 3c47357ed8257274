"""What `validate`, `status` and `list` import: only what they need (README, "What the CLI costs").

Each command runs in a fresh interpreter, as a person or CI calls it; the modules it loaded are
then listed. `status` and `list` read through a small HTTP server standing in for Temporal's HTTP
API (a finished run's description and result, a listing), so nothing here needs Temporal.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.devstack import free_port
from contracts.phases import Phase
from tests.client.conftest import ROOT
from tests.client.test_http_runs import FakeApi
from tests.contracts.test_markdown import state

# Never on these paths: the SDK, the settings library, telemetry, the AWS and PostgreSQL clients, an event loop.
HEAVY = ("temporalio", "pydantic_settings", "opentelemetry", "boto3", "botocore", "asyncpg", "asyncio")
OTHER_KINDS = (
    "contracts.migrate_schema",
    "contracts.sweep_volumes",
    "contracts.backfill_table",
    "contracts.read_replica",
    "client.migrations",
)
# As `client.main.main` ends: os._exit, past the SDK's runtime threads (were it ever loaded).
LOADED = (
    "import io, os, sys\nfrom client.main import run\ncode = run(sys.argv[1:], io.StringIO(), sys.stderr)\n"
    "print(code)\nprint('\\n'.join(sorted(sys.modules)), flush=True)\nos._exit(0)\n"
)


def loaded(env: dict[str, str], *argv: str) -> tuple[int, set[str]]:
    """The exit code of `opsctl argv` in a fresh interpreter, and the modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    code, *modules = done.stdout.splitlines()
    return int(code), set(modules)


def top_levels(modules: set[str], names: tuple[str, ...]) -> set[str]:
    return {module for module in modules if module in names or module.split(".")[0] in names}


def json_payload(value: str) -> dict[str, object]:
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(value.encode()).decode(),
    }


@pytest.fixture
def temporal_http() -> Iterator[FakeApi]:
    """A finished run and a listing with it, as the HTTP API writes them."""
    run = state(Phase.SUCCEEDED, next_action="")
    api = FakeApi()
    described = {
        "workflowExecutionInfo": {
            "execution": {"workflowId": run.workflow_id, "runId": "r1"},
            "status": "WORKFLOW_EXECUTION_STATUS_COMPLETED",
        }
    }
    closed = {
        "history": {
            "events": [
                {
                    "workflowExecutionCompletedEventAttributes": {
                        "result": {"payloads": [json_payload(run.model_dump_json())]}
                    }
                }
            ]
        }
    }
    keyword = {"encoding": base64.b64encode(b"json/plain").decode(), "type": base64.b64encode(b"Keyword").decode()}
    attributes = {"OpsctlKind": {**json_payload('"RotateDbCredential"'), "metadata": keyword}}
    listing = {
        "executions": [
            {
                "execution": {"workflowId": run.workflow_id, "runId": "r1"},
                "type": {"name": "RotateDbCredential"},
                "startTime": "2026-12-01T18:49:18.508283689Z",
                "searchAttributes": {"indexedFields": attributes},
            }
        ]
    }

    def answer(method: str, path: str) -> tuple[int, str, bytes]:
        body = closed if "/history?" in path else listing if "/workflows?" in path else described
        return 200, "application/json", json.dumps(body).encode()

    api.answer = answer
    yield api
    api.close()


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {key: value for key, value in os.environ.items() if not key.startswith("OPSCTL_")}
    return {**keep, "OPSCTL_CONFIG": "", "OPSCTL_STATE_DIR": str(tmp_path / "state"), "OPSCTL_USER": "alice", **extra}


def test_status_and_list_through_the_http_api_import_no_sdk(temporal_http: FakeApi, tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        OPSCTL_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",  # nothing there: the SDK is not asked
        OPSCTL_TEMPORAL_HTTP_ADDRESS=temporal_http.address,
    )
    for argv in (("status", "RotateDbCredential-prod-1"), ("list",)):
        code, modules = loaded(env, *argv)
        assert 0 == code, argv
        assert set() == top_levels(modules, (*HEAVY, "yaml")), argv
        assert set() == top_levels(modules, OTHER_KINDS), argv


def test_validate_imports_no_sdk_and_only_its_document_s_kind(tmp_path: Path) -> None:
    document = tmp_path / "rotate.yaml"
    document.write_text(
        "apiVersion: opsctl/v1\nkind: RotateDbCredential\nmetadata: {environment: dev}\n"
        "spec: {database: app, role: r, secretId: s}\n"
    )
    code, modules = loaded(environment(tmp_path), "validate", "-f", str(document))
    assert 0 == code
    assert set() == top_levels(modules, HEAVY)
    assert set() == top_levels(modules, OTHER_KINDS)
    assert "contracts.rotate_credential" in modules
