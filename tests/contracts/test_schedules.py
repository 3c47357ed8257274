"""Schedules' contract: cadences in one spelling, what a schedule's signature covers, Temporal's spec read back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.request import parse_request
from contracts.run import Mode, RunInput
from contracts.schedules import (
    OnDrift,
    ScheduleGrant,
    cron,
    describe_spec,
    every,
    fire_id,
    is_drift_apply_of,
)
from contracts.signing import verify
from tests.identities import KEYRING


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("30d", 30 * 86400, "every 30d"),
        ("2s", 2, "every 2s"),
        ("1h30m", 5400, "every 1h30m"),
        ("90s", 90, "every 1m30s"),
        ("1w", 7 * 86400, "every 7d"),
        ("12H", 12 * 3600, "every 12h"),
    ],
)
def test_an_interval_has_one_spelling(text: str, seconds: int, canonical: str) -> None:
    cadence = every(text)
    assert (seconds, canonical) == (cadence.every_seconds, cadence.text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0s", "at least 1s"),
        ("10", "write a duration"),
        ("3x", "write a duration"),
        ("1000d", "at most 366d"),
        ("", "write a duration"),
        ("-5m", "write a duration"),
    ],
)
def test_a_bad_interval_says_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        every(text)


@pytest.mark.parametrize(
    ("expression", "canonical"),
    [
        ("0 3 * * 1", "cron 0 3 * * 1"),
        ("0 3 * * MON", "cron 0 3 * * 1"),
        ("*/15 * * * *", "cron */15 * * * *"),
        ("0,15,30,45 * * * *", "cron */15 * * * *"),
        ("30 2 * * mon-fri", "cron 30 2 * * 1-5"),
        ("0 0 * * 7", "cron 0 0 * * 0"),
        ("0 0 * * 5-7", "cron 0 0 * * 0,5-6"),
        ("@daily", "cron 0 0 * * *"),
        ("@weekly", "cron 0 0 * * 0"),
        ("0 9 1 jan,jul *", "cron 0 9 1 1,7 *"),
        ("10/20 * * * *", "cron 10,30,50 * * * *"),
    ],
)
def test_a_cron_expression_has_one_spelling(expression: str, canonical: str) -> None:
    assert canonical == cron(expression).text


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * *", "give 5 fields"),
        ("0 3 * * * *", "give 5 fields"),
        ("61 * * * *", "61 is outside the minute field"),
        ("0 24 * * *", "24 is outside the hour field"),
        ("0 0 0 * *", "0 is outside the day of month field"),
        ("0 0 * 13 *", "13 is outside the month field"),
        ("0 0 * * 8", "8 is outside the day of week field"),
        ("*/0 * * * *", "the step in '\\*/0' must be a positive number"),
        ("5-1 * * * *", "runs backwards"),
        ("x * * * *", "'x' is not a value of the minute field"),
        ("0 0 1 * 1", "not both"),
        ("0,,5 * * * *", "an empty item"),
    ],
)
def test_a_bad_cron_expression_says_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cron(expression)


def calendar_proto(**fields: list[dict[str, int]]) -> dict[str, object]:
    """A structured calendar as Temporal returns it (JSON, protobuf field names): defaults filled the server's way."""
    full = {
        "second": [{"step": 1}],
        "minute": [{"step": 1}],
        "hour": [{"step": 1}],
        "day_of_month": [{"start": 1, "end": 31, "step": 1}],
        "month": [{"start": 1, "end": 12, "step": 1}],
        "day_of_week": [{"start": 0, "end": 6, "step": 1}],
    }
    return {**full, **fields}


def test_temporal_s_spec_reads_back_as_the_cadence_opsctl_created() -> None:
    """What Temporal returns for opsctl's spec is the same text the requester signed; anything added is named."""
    assert "every 30d" == describe_spec({"interval": [{"interval": "2592000s"}]})
    weekly = calendar_proto(hour=[{"start": 3, "end": 3, "step": 1}], day_of_week=[{"start": 1, "end": 1, "step": 1}])
    assert cron("0 3 * * 1").text == describe_spec({"structured_calendar": [weekly]})
    quarter = calendar_proto(minute=[{"start": 0, "end": 59, "step": 15}], hour=[{"start": 0, "end": 23, "step": 1}])
    assert "cron */15 * * * *" == describe_spec({"structured_calendar": [quarter]})

    changed = {
        "interval": [{"interval": "2592000s"}, {"interval": "1s"}],
        "jitter": "600s",
        "end_time": "2027-01-01T00:00:00Z",
    }
    described = describe_spec(changed, {"overlap_policy": "SCHEDULE_OVERLAP_POLICY_ALLOW_ALL"})
    assert "every 30d + every 1s (until 2027-01-01T00:00:00Z) (jitter 10m) (overlap allow_all)" == described
    assert "every 30d" == describe_spec(
        {"interval": [{"interval": "2592000s"}]}, {"overlap_policy": "SCHEDULE_OVERLAP_POLICY_SKIP"}
    )
    assert "every 30d offset 1h" == describe_spec({"interval": [{"interval": "2592000s", "phase": "3600s"}]})
    assert "never (cron 0 3 * * 1)" == describe_spec({"cron_string": ["0 3 * * 1"]})


def request() -> RunInput:
    document = {
        "apiVersion": "opsctl/v1",
        "kind": "RotateDbCredential",
        "metadata": {"environment": "prod", "requester": "alice"},
        "spec": {"database": "app", "role": "app_user", "secretId": "s"},
    }
    return RunInput(request=parse_request(document), mode=Mode.DRY_RUN)


def test_a_schedule_signature_names_the_schedule_and_covers_its_cadence_and_drift_answer() -> None:
    grant = ScheduleGrant(schedule_id="RotateDbCredential-prod-k", cadence="every 30d")
    signed = KEYRING.sign_request(request().model_copy(update={"schedule": grant}), grant.scope, lifetime=86400)
    assert signed.signature is not None
    key = KEYRING.public_key("alice")
    assert key is not None
    sig = signed.signature

    def verifies(input: RunInput, scope: str = grant.scope) -> bool:
        return verify(key, input.signature_payload(scope, sig.attempt_id, sig.expires_at), sig.signature)

    assert verifies(signed)
    assert not verifies(signed, scope=fire_id(grant.schedule_id, datetime(2026, 1, 1, tzinfo=UTC))), "not one fire"
    for change in ({"cadence": "every 1s"}, {"on_drift": OnDrift.SUBMIT}, {"schedule_id": "RotateDbCredential-prod-j"}):
        assert not verifies(signed.model_copy(update={"schedule": grant.model_copy(update=change)}))
    assert not verifies(signed.model_copy(update={"mode": Mode.APPLY})), "a dry run's signature is not an apply's"


def test_an_input_without_a_schedule_signs_the_same_bytes_as_before_schedules() -> None:
    """Committed histories carry signatures over the old body: it must not gain a key."""
    assert {"request", "mode", "emergency", "requester"} == set(request().signed_body())


def test_a_drift_apply_is_named_after_its_dry_run_of_that_schedule_only() -> None:
    schedule_id = "SweepStaleVolumes-prod-weekly"
    check = fire_id(schedule_id, datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    assert "SweepStaleVolumes-prod-weekly-2026-03-02T03:00:00Z" == check
    assert is_drift_apply_of(schedule_id, f"{check}-apply")
    assert not is_drift_apply_of(schedule_id, check)
    assert not is_drift_apply_of("SweepStaleVolumes-prod", f"{check}-apply"), "another schedule's prefix"
