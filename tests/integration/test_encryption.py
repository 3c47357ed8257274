"""Payload encryption on the real stack: nothing of a request in clear in the history, the codec
server decodes it for people, rotation keeps old runs readable, and no signal can wedge a run."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from client.devstack import Stack, seed_role
from client.runs import decide, start_run, wait_for
from contracts.encryption import ENCODING
from contracts.phases import Phase
from contracts.request import parse_request
from contracts.run import Decision, DecisionInput, RunState
from encryption.codec import DecryptionError
from encryption.keys import new_key_entry
from tests.conftest import encrypted_worker, opsctl_client
from tests.identities import KEYRING
from tests.integration.test_readable_runs import awaiting_rotation, temporal
from tests.integration.test_rotate_credential import current_password, rotation_request
from worker.settings import WorkerSettings

ENCRYPTED = ENCODING.encode()


def distinctive_request(environment: str, *, seed: bool = True, stack: Stack | None = None) -> tuple[dict, list[str]]:
    """A rotation whose every spec value (and a label) is a string found nowhere else."""
    tag = uuid.uuid4().hex[:10]
    role, secret, ticket = f"enc_role_{tag}", f"enc/sealed-secret-{tag}", f"ENC-TICKET-{tag}"
    if seed and stack is not None:
        seed_role(stack, role, secret)
    document = rotation_request(role, secret, environment=environment)
    document["metadata"]["labels"] = {"ticket": ticket}
    return document, [role, secret, ticket]


def found_in(document: Any, needle: str, path: str = "") -> list[str]:
    """Where `needle` stands in a JSON document: in a string, or in one that is base64 of bytes holding it."""
    if isinstance(document, dict):
        return [hit for key, value in document.items() for hit in found_in(value, needle, f"{path}.{key}")]
    if isinstance(document, list):
        return [hit for index, value in enumerate(document) for hit in found_in(value, needle, f"{path}[{index}]")]
    if not isinstance(document, str):
        return []
    hits = [path] if needle in document else []
    try:
        if needle.encode() in base64.b64decode(document, validate=True):
            hits.append(f"{path} (base64)")
    except ValueError:
        pass
    return hits


async def raw_history(stack: Stack, workflow_id: str) -> bytes:
    """Every event as the server stores it, fetched by a client that has no codec at all."""
    plain = await Client.connect(stack.temporal_address)
    history = await plain.get_workflow_handle(workflow_id).fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


async def shown(stack: Stack, workflow_id: str, *codec: str) -> Any:
    return json.loads(await temporal(stack, "workflow", "show", "-w", workflow_id, "--output", "json", *codec))


def codec_flags(stack: Stack) -> list[str]:
    return ["--codec-endpoint", stack.codec_url, "--codec-auth", f"Bearer {stack.codec_token()}"]


async def test_the_raw_history_holds_no_request_field_in_clear_and_the_codec_server_decodes_them(
    stack: Stack, encrypted_client: Client, encrypted_task_queue: str
) -> None:
    document, values = distinctive_request("dev", stack=stack)
    handle, _ = await start_run(
        encrypted_client, parse_request(document), task_queue=encrypted_task_queue, keys=KEYRING
    )
    result: RunState = await handle.result()
    assert Phase.SUCCEEDED == result.phase, result.failure

    raw = await raw_history(stack, handle.id)
    assert [] == [value for value in values if value.encode() in raw]
    undecoded = await shown(stack, handle.id)
    assert {value: [] for value in values} == {value: found_in(undecoded, value) for value in values}
    started = undecoded["events"][0]
    summary = base64.b64decode(started["userMetadata"]["summary"]["metadata"]["encoding"])
    assert ENCRYPTED == summary, "the static summary is a payload, encrypted like the rest"
    # Search attributes stay plain by design: `opsctl list` and the Web UI filter on them.
    attributes = started["workflowExecutionStartedEventAttributes"]["searchAttributes"]["indexedFields"]
    assert b'"dev"' == base64.b64decode(attributes["OpsctlEnvironment"]["data"])

    decoded = await shown(stack, handle.id, *codec_flags(stack))
    for value in values:
        assert found_in(decoded, value), f"{value} is in the history the codec server decodes"


async def test_a_failure_message_naming_a_request_field_is_encrypted_too(
    stack: Stack, encrypted_client: Client, encrypted_task_queue: str
) -> None:
    document, (role, secret, _) = distinctive_request("dev", seed=False)
    seed_role(stack, f"other_{uuid.uuid4().hex[:8]}", secret)  # the secret exists, the requested role does not
    handle, _ = await start_run(
        encrypted_client, parse_request(document), task_queue=encrypted_task_queue, keys=KEYRING
    )
    result: RunState = await handle.result()
    assert Phase.FAILED == result.phase
    assert result.failure is not None
    message = result.failure.message
    assert secret in message
    assert role in message

    raw = await raw_history(stack, handle.id)
    assert (False, False) == (secret.encode() in raw, role.encode() in raw)
    decoded = await shown(stack, handle.id, *codec_flags(stack))
    failures = [hit for hit in found_in(decoded, message) if "failure" in hit.lower()]
    assert failures, "the activity's failure message is decoded by the codec server"


async def test_a_run_started_under_one_key_is_approved_and_finished_after_the_worker_rotates_to_another(
    stack: Stack, worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    key_a, key_b = new_key_entry("key-a"), new_key_entry("key-b")
    only_a, rotated, only_b = tmp_path / "a", tmp_path / "a+b", tmp_path / "b"
    only_a.write_text(key_a)
    rotated.write_text(key_a + key_b)  # rotation: the new key is added, and the last one encrypts
    only_b.write_text(key_b)
    document, values = distinctive_request("prod", stack=stack)

    async with encrypted_worker(worker_settings, only_a) as queue:
        client_a = await opsctl_client(stack, only_a)
        handle, _ = await start_run(client_a, parse_request(document), task_queue=queue, keys=KEYRING)
        state = await wait_for(handle, lambda s: s.phase is Phase.AWAITING_APPROVAL, timeout=30)

    async with encrypted_worker(worker_settings, rotated, task_queue=queue):  # replays what key-a sealed
        client_ab = await opsctl_client(stack, rotated)
        handle_ab = client_ab.get_workflow_handle(handle.id, result_type=RunState)
        approval = DecisionInput(actor="bob", plan_hash=state.plan_hash, comment="after the rotation")
        record, _ = await decide(handle_ab, Decision.APPROVE, approval, keys=KEYRING)
        assert record.accepted, record.reason
        result = await handle_ab.result()
    assert Phase.SUCCEEDED == result.phase, result.failure

    history = await shown(stack, handle.id)
    key_ids = {base64.b64decode(hit_value).decode() for hit_value in _metadata_values(history, "encryption-key-id")}
    assert {"key-a", "key-b"} == key_ids
    assert [] == [value for value in values if value.encode() in await raw_history(stack, handle.id)]
    # Each key alone reads only its part: the start under key-a, the ending under key-b.
    with pytest.raises(DecryptionError, match="key id 'key-a' is not in this keyring"):
        await (await (await opsctl_client(stack, only_b)).get_workflow_handle(handle.id).describe()).static_summary()
    with pytest.raises(DecryptionError, match="key id 'key-b' is not in this keyring"):
        await client_a.get_workflow_handle(handle.id, result_type=RunState).result()


def _metadata_values(document: Any, name: str) -> list[str]:
    if isinstance(document, dict):
        own = (
            [document["metadata"][name]]
            if isinstance(document.get("metadata"), dict) and name in document["metadata"]
            else []
        )
        return own + [value for child in document.values() for value in _metadata_values(child, name)]
    if isinstance(document, list):
        return [value for child in document for value in _metadata_values(child, name)]
    return []


async def test_a_signal_the_worker_cannot_decrypt_is_refused_and_recorded_and_the_run_goes_on(
    stack: Stack, encrypted_client: Client, encrypted_task_queue: str, tmp_path: Path
) -> None:
    handle = await awaiting_rotation(stack, encrypted_client, encrypted_task_queue)
    state = await handle.query("state", result_type=RunState)
    foreign_keys = tmp_path / "foreign"
    foreign_keys.write_text(new_key_entry("someone-elses"))
    foreign = await opsctl_client(stack, foreign_keys)
    approval = {"actor": "bob", "plan_hash": state.plan_hash, "comment": "sealed with a key the worker lacks"}
    await foreign.get_workflow_handle(handle.id).signal("approve", approval)
    # Bytes that claim to be encrypted under the worker's own key id, but are not a ciphertext of it.
    await temporal(
        stack,
        "workflow",
        "signal",
        "--workflow-id",
        handle.id,
        "--name",
        "approve",
        "--input-meta",
        f"encoding={ENCODING}",
        "--input-meta",
        "encryption-key-id=dev-1",
        "--input",
        '"forged ciphertext"',
    )

    state = await wait_for(handle, lambda s: len(s.decisions) >= 2, timeout=30)
    assert Phase.AWAITING_APPROVAL == state.phase, "nothing undecryptable wedges or moves the run"
    reasons = [decision.reason for decision in state.decisions]
    assert "key id 'someone-elses' is not in this keyring (it has dev-1)" in reasons[0]
    assert "an encrypted payload the worker cannot decrypt" in reasons[0]
    assert "key id 'dev-1': the ciphertext fails authentication" in reasons[1]
    assert not any(decision.accepted for decision in state.decisions)

    record, _ = await decide(
        handle, Decision.APPROVE, DecisionInput(actor="bob", plan_hash=state.plan_hash, comment="ok"), keys=KEYRING
    )
    assert record.accepted, record.reason
    assert Phase.SUCCEEDED == (await handle.result()).phase


async def test_a_request_sent_in_clear_to_an_encrypting_worker_is_refused_before_any_step(
    stack: Stack, client: Client, encrypted_client: Client, encrypted_task_queue: str
) -> None:
    """A client without the keys (a newcomer outside the stack's folder) starts a run in clear: the
    worker, which encrypts, refuses to run it — the credential is not rotated behind a cleartext request."""
    document, [role, secret, _] = distinctive_request("dev", stack=stack)
    old_password = current_password(stack, secret)
    handle, _ = await start_run(client, parse_request(document), task_queue=encrypted_task_queue, keys=KEYRING)
    result: RunState = await encrypted_client.get_workflow_handle(handle.id, result_type=RunState).result()

    assert Phase.FAILED == result.phase
    assert result.failure is not None
    assert "validation" == result.failure.kind.value
    assert "the request reached Temporal unencrypted" in result.failure.message
    assert [] == result.changed
    assert old_password == current_password(stack, secret), f"{role}'s secret is as it was"
