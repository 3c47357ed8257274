"""Error classification tables: what retries, what fails at once, what needs a human."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from activities.aws import classify_aws, classify_aws_code
from activities.postgres import classify_postgres, classify_sqlstate, scram_verifier
from contracts.failures import FailureKind

TRANSIENT, AUTH, VALIDATION, CONFLICT = (
    FailureKind.DEPENDENCY_UNAVAILABLE,
    FailureKind.AUTH,
    FailureKind.VALIDATION,
    FailureKind.CONFLICT,
)


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("08006", TRANSIENT),  # connection failure
        ("40001", TRANSIENT),  # serialization failure
        ("40P01", TRANSIENT),  # deadlock detected
        ("53300", TRANSIENT),  # too many connections
        ("55P03", TRANSIENT),  # lock not available (lock_timeout)
        ("25006", TRANSIENT),  # read-only transaction: a failover's old primary
        ("57P01", TRANSIENT),  # admin shutdown
        ("57014", TRANSIENT),  # statement timeout (query canceled)
        ("28P01", AUTH),  # invalid password
        ("23505", VALIDATION),  # unique violation
        ("42P01", VALIDATION),  # undefined table
        ("42704", VALIDATION),  # undefined object (role)
        ("P0001", None),  # raise_exception: unknown to us
        ("XX000", None),  # internal error
    ],
)
def test_postgres_errors_are_classified_by_sqlstate(sqlstate: str, kind: FailureKind | None) -> None:
    assert kind == classify_sqlstate(sqlstate)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 400, TRANSIENT),
        ("InternalServiceError", 500, TRANSIENT),
        ("Whatever", 503, TRANSIENT),
        ("AccessDeniedException", 400, AUTH),
        ("UnrecognizedClientException", 400, AUTH),
        ("ResourceNotFoundException", 400, VALIDATION),
        ("InvalidRequestException", 400, VALIDATION),
        ("ResourceExistsException", 400, CONFLICT),
        ("SomethingNew", 400, None),
    ],
)
def test_aws_errors_are_classified_by_code_and_status(code: str, status: int, kind: FailureKind | None) -> None:
    assert kind == classify_aws_code(code, status)


def test_the_scram_verifier_proves_the_password_it_was_made_from() -> None:
    """Recompute StoredKey from the salt and iterations: only the right password matches."""
    verifier = scram_verifier("correct horse")
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]

    def stored_for(password: str) -> str:
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return base64.b64encode(hashlib.sha256(client_key).digest()).decode()

    assert "SCRAM-SHA-256" == method
    assert stored_key == stored_for("correct horse")
    assert stored_key != stored_for("wrong horse")


async def test_a_huge_chained_error_leaves_an_activity_bounded_and_without_its_chain() -> None:
    """Temporal refuses a failure past its size limit and then shows nothing: keep it small."""
    from temporalio.exceptions import ApplicationError

    from activities.errors import MESSAGE_LIMIT, classified

    @classified(lambda _: None)
    async def step() -> None:
        try:
            raise RuntimeError("inner " + "x" * 100_000)
        except RuntimeError as inner:
            raise ValueError("outer " + "y" * 100_000) from inner

    with pytest.raises(ApplicationError) as raised:
        await step()
    assert len(raised.value.message) <= MESSAGE_LIMIT + 100
    assert raised.value.message.startswith("ValueError: outer yyy")
    assert "[cut; the whole error is in the worker's log" in raised.value.message
    assert raised.value.__cause__ is None
    assert FailureKind.UNKNOWN.value == raised.value.type


async def test_a_result_too_big_for_the_history_fails_for_good_naming_its_size() -> None:
    """An 8.9 MB plan was retried for the whole window ("Blob data size exceeds limit"): refuse it once."""
    from temporalio.exceptions import ApplicationError

    from activities.errors import RESULT_LIMIT, classified

    @classified(lambda _: None)
    async def plan() -> list[str]:
        return ["DROP TABLE a;"] * (RESULT_LIMIT // 10)

    with pytest.raises(ApplicationError) as raised:
        await plan()
    assert (VALIDATION.value, True) == (raised.value.type, raised.value.non_retryable)
    assert "split the request into smaller ones" in raised.value.message


def lost_connections() -> list[BaseException]:
    import asyncpg
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
    from botocore.parsers import ResponseParserError

    return [
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        ConnectionClosedError(endpoint_url="http://aws"),
        EndpointConnectionError(endpoint_url="http://aws"),
        ReadTimeoutError(endpoint_url="http://aws"),
        ResponseParserError("garbled"),
    ]


@pytest.mark.parametrize("exc", lost_connections(), ids=lambda exc: type(exc).__name__)
def test_a_dependency_that_restarts_or_drops_a_connection_is_transient(exc: BaseException) -> None:
    """A PostgreSQL restart closes idle sessions; a proxy resets a connection: retry, do not review."""
    classify = classify_aws if type(exc).__module__.startswith("botocore") else classify_postgres
    classified = classify(exc)
    assert classified is not None
    assert (TRANSIENT.value, False) == (classified.type, classified.non_retryable)


def test_a_misused_connection_is_not_mistaken_for_an_outage() -> None:
    import asyncpg

    assert classify_postgres(asyncpg.InterfaceError("another operation is in progress")) is None
