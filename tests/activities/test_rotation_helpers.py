"""Pure helpers of the rotation steps: deterministic tokens, unambiguous staging labels."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.rotate_credential import pending_token, version_with


def test_the_pending_token_is_a_function_of_the_run_and_the_replaced_version() -> None:
    assert pending_token("run-1", "v1") == pending_token("run-1", "v1")
    assert pending_token("run-1", "v1") != pending_token("run-1", "v2")
    assert pending_token("run-1", "v1") != pending_token("run-2", "v1")


def test_the_version_holding_a_stage_is_found() -> None:
    stages = {"a": ["AWSPREVIOUS"], "b": ["AWSCURRENT"], "c": ["AWSPENDING"]}
    assert "b" == version_with("AWSCURRENT", stages)
    assert "" == version_with("AWSCURRENT", {"a": ["AWSPREVIOUS"]})


def test_a_stage_on_two_versions_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ApplicationError) as caught:
        version_with("AWSCURRENT", {"a": ["AWSCURRENT"], "b": ["AWSCURRENT", "AWSPENDING"]})
    assert "validation" == caught.value.type
    assert caught.value.non_retryable
