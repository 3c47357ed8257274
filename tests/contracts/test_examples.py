"""Every example request document in examples/ is a valid request."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.request import parse_document

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_document_validates(path: Path) -> None:
    request = parse_document(path.read_text(), path.name)
    assert request.metadata.idempotency_key, "examples pin their run id"


POLICY_EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "policies").glob("*.yaml"))


@pytest.mark.parametrize("path", POLICY_EXAMPLES, ids=[p.name for p in POLICY_EXAMPLES])
def test_an_example_policy_file_passes_the_offline_check(path: Path) -> None:
    from contracts.policy import parse_policy_file

    policies = parse_policy_file(path.read_text(), path.name)
    assert {"dev", "staging", "prod"} <= set(policies.environments)
