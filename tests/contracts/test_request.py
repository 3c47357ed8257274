"""Request documents: strict parsing, field-naming errors, stable identities."""

from __future__ import annotations

import pytest

from contracts.failures import ExitCode
from contracts.request import DocumentError, parse_document

VALID = """\
apiVersion: opsctl/v1
kind: RotateDbCredential
metadata:
  environment: prod
spec:
  database: app
  role: app_user
  secretId: demo/app_user
"""


def test_a_valid_document_parses_into_a_request() -> None:
    request = parse_document(VALID)
    assert "RotateDbCredential" == request.kind
    assert {"database": "app", "role": "app_user", "secretId": "demo/app_user"} == request.spec


def test_json_documents_are_accepted_too() -> None:
    document = (
        '{"apiVersion": "opsctl/v1", "kind": "RotateDbCredential", "metadata": {"environment": "dev"},'
        ' "spec": {"database": "app", "role": "r", "secretId": "s"}}'
    )
    assert "dev" == parse_document(document).metadata.environment


@pytest.mark.parametrize(
    ("change", "field", "exit_code"),
    [
        (("spec:", "spec:\n  extra: 1"), "spec.extra", ExitCode.VALIDATION_FAILED),
        (("  role: app_user\n", ""), "spec.role", ExitCode.VALIDATION_FAILED),
        (("role: app_user", "role: App-User"), "spec.role", ExitCode.VALIDATION_FAILED),
        (("environment: prod", "environment: PROD!"), "metadata.environment", ExitCode.VALIDATION_FAILED),
        (("metadata:", "metadata:\n  owner: x"), "metadata.owner", ExitCode.VALIDATION_FAILED),
        (("kind: RotateDbCredential", "kind: DropEverything"), "kind", ExitCode.INVALID_INPUT),
        (("apiVersion: opsctl/v1", "apiVersion: opsctl/v0"), "apiVersion", ExitCode.INVALID_INPUT),
        (("spec:", "status: {}\nspec:"), "status", ExitCode.VALIDATION_FAILED),
    ],
)
def test_invalid_documents_name_the_field(change: tuple[str, str], field: str, exit_code: ExitCode) -> None:
    """Unknown, missing or malformed fields are refused with their dotted path."""
    with pytest.raises(DocumentError) as caught:
        parse_document(VALID.replace(*change))
    assert field == caught.value.field
    assert exit_code == caught.value.exit_code


def test_a_json_surrogate_pair_is_one_character() -> None:
    """json.dumps writes an emoji as a surrogate pair; YAML alone would read two lone surrogates."""
    document = (
        '{"apiVersion": "opsctl/v1", "kind": "RotateDbCredential", "metadata": {"environment": "dev"},'
        ' "spec": {"database": "app", "role": "r", "secretId": "s\\ud83d\\udca9"}}'
    )
    assert "s\U0001f4a9" == parse_document(document).spec["secretId"]


def test_a_field_name_with_a_newline_is_shown_escaped() -> None:
    """A key holding a newline must not break the error message's line (an `error:` line with nothing after it)."""
    with pytest.raises(DocumentError) as caught:
        parse_document(VALID.replace("spec:", 'spec:\n  "\\nx": 1'))
    assert "spec.'\\nx'" == caught.value.field
    assert "spec.'\\nx': unknown field" == str(caught.value)


def test_text_that_is_not_a_mapping_is_an_invalid_document() -> None:
    for text in ("just words", "[1, 2]", "a: [unclosed"):
        with pytest.raises(DocumentError) as caught:
            parse_document(text)
        assert ExitCode.INVALID_INPUT == caught.value.exit_code


def test_the_run_id_comes_from_the_idempotency_key_when_given() -> None:
    keyed = parse_document(VALID.replace("environment: prod", "environment: prod\n  idempotencyKey: CHG-42"))
    assert "RotateDbCredential-prod-CHG-42" == keyed.workflow_id()


def test_the_run_id_is_the_spec_hash_otherwise_and_ignores_key_order_and_labels() -> None:
    reordered = VALID.replace("  database: app\n  role: app_user\n", "  role: app_user\n  database: app\n").replace(
        "metadata:", "metadata:\n  labels: {ticket: X}"
    )
    assert parse_document(VALID).workflow_id() == parse_document(reordered).workflow_id()
    other = VALID.replace("role: app_user", "role: other_user")
    assert parse_document(VALID).workflow_id() != parse_document(other).workflow_id()
