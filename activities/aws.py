"""AWS adapter: boto3 clients from settings, and error classification by code and status.

boto3 is synchronous; activities call it through `asyncio.to_thread` so the worker's
event loop stays free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from temporalio.exceptions import ApplicationError

from activities import call_spans
from activities.errors import failure
from contracts.failures import FailureKind

T = TypeVar("T")


class AwsSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str = "us-east-1"
    endpoint_url: str | None = None  # a local endpoint (moto) in development
    # Per request. AWS pages its listings; moto answers one unpaged listing, which for
    # 10,000 volumes takes it minutes (its cost grows with the square of the count).
    read_timeout_seconds: int = 60


def make_client(settings: AwsSettings, service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Retries are the workflow's job (classified, visible in history); boto3 gets a short leash.
    config = Config(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=settings.read_timeout_seconds
    )
    # The service is chosen at run time, so no single boto3-stubs overload applies.
    client = boto3.client(  # type: ignore[call-overload]
        service, region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )
    call_spans.trace_calls(client)  # a span per API call while the worker traces; otherwise a no-op
    return client


async def call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, **kwargs)


TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalServiceError",
    "InternalFailure",
    "RequestTimeout",
}
AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "AuthFailure",
}
VALIDATION_CODES = {
    "ResourceNotFoundException",
    "InvalidParameterException",
    "InvalidParameterValue",
    "InvalidRequestException",
    "ValidationException",
    "MalformedPolicyDocumentException",
}
CONFLICT_CODES = {"ResourceExistsException", "ConflictException", "OperationAborted"}


def classify_aws_code(code: str, status: int) -> FailureKind | None:
    if code in TRANSIENT_CODES or status in (429, 500, 502, 503, 504):
        return FailureKind.DEPENDENCY_UNAVAILABLE
    if code in AUTH_CODES or status in (401, 403):
        return FailureKind.AUTH
    if code in CONFLICT_CODES:
        return FailureKind.CONFLICT
    if code in VALIDATION_CODES:
        return FailureKind.VALIDATION
    return None


def classify_aws(exc: BaseException) -> ApplicationError | None:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        kind = classify_aws_code(code, status)
        if kind is None:
            return None
        return failure(kind, f"AWS {code} ({status}): {error.get('Message', '')}")
    # HTTPClientError: read timeouts, connections closed or reset; a garbled answer is a blip too.
    if isinstance(exc, ConnectionError | HTTPClientError | ResponseParserError):
        return failure(FailureKind.DEPENDENCY_UNAVAILABLE, f"AWS endpoint unreachable: {exc}")
    return None
