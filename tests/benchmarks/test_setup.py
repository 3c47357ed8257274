"""The benchmarks' own setup, checked by `make test`: `make bench` runs rarely, and a change to the
contracts once broke it unseen (the kinds table turned lazy; the no-op kind's registration crashed)."""

from __future__ import annotations

import pytest

from contracts import kinds
from contracts.request import API_VERSIONS, DocumentError, parse_request
from tests.benchmarks.lifecycle import register_kind
from tests.benchmarks.noop_activities import KIND, NoOpSpec


def test_the_no_op_kind_registers_and_its_documents_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "VERSIONS", dict(kinds.VERSIONS))  # this test's process only
    register_kind()
    document = {
        "apiVersion": API_VERSIONS[0],
        "kind": KIND,
        "metadata": {"environment": "dev", "requester": "bench", "idempotencyKey": "k"},
        "spec": {"steps": 2},
    }
    assert NoOpSpec is kinds.KINDS[KIND]
    assert {"steps": 2} == parse_request(document).spec
    with pytest.raises(DocumentError):  # validated by the no-op's own model
        parse_request({**document, "spec": {"steps": 2, "extra": 1}})
