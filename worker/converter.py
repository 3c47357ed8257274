"""The worker's data converter: pydantic models as JSON, and untrusted input that never vanishes.

Signals and updates come from anyone who can reach the namespace (`temporal workflow
signal`, the Web UI's form). Their handlers take their arguments untyped and judge them
themselves, so a wrong shape is refused *and recorded*. The SDK decodes untyped arguments
before a handler runs, and drops the whole signal if that fails (bytes that are not
JSON, an unknown encoding). Here such a payload is handed on as a `RawValue` instead, for
the handler to refuse by name. Typed decoding (activity results, workflow input) is the
plain pydantic converter's, but a workflow input that does not decode as the `RunInput` it must
be (a raw `temporal workflow start`: a field of the wrong shape, bytes that are not JSON) fails
the run at once, saying why, instead of failing its every workflow task: the SDK fails the run
itself for an `ApplicationError` raised while decoding. `ArgumentCount` does the same for a start
with more or fewer inputs than the workflow takes.

With encryption keys every payload is encrypted (`encryption.codec`); the worker's codec keeps
a payload it cannot decrypt as it is, marked with the reason, so that too becomes a raw value
the handler refuses instead of an error that fails the run's every workflow task.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from contracts.encryption import ERROR_METADATA
from contracts.run import RunInput
from encryption.codec import with_encryption
from encryption.keys import EncryptionKeys

INVALID_INPUT = "InvalidWorkflowInput"  # the failure's type: the run was refused before it began
START_HINT = "opsctl runs are started by `opsctl apply` / `opsctl plan`, which send a RunInput"


class UntrustedInputPayloadConverter(PydanticPayloadConverter):
    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[type] | None = None) -> list[Any]:
        if type_hints is None:
            return [self._decode_or_raw(payload) for payload in payloads]
        if RunInput not in type_hints:
            return super().from_payloads(payloads, type_hints)
        at = type_hints.index(RunInput)
        try:
            values = super().from_payloads(payloads, type_hints)
        except Exception as exc:
            raise _not_a_run_input(_why(payloads[at], exc)) from None
        if not isinstance(values[at], RunInput):  # another encoding (binary/plain) decodes whatever the hint
            raise _not_a_run_input(_why(payloads[at], None))
        return values

    def _decode_or_raw(self, payload: Payload) -> Any:
        try:
            return super().from_payloads([payload], None)[0]
        except Exception:  # undecodable: the handler refuses it, naming its encoding
            return RawValue(payload)


def _not_a_run_input(why: str) -> ApplicationError:
    message = f"the workflow input is not a RunInput: {why}; {START_HINT}"
    return ApplicationError(message, type=INVALID_INPUT, non_retryable=True)


def _why(payload: Payload, exc: Exception | None) -> str:
    """What is wrong with an input, in a few words and without its values (they are the caller's)."""
    if ERROR_METADATA in payload.metadata:
        return f"it could not be decrypted ({payload.metadata[ERROR_METADATA].decode(errors='replace')[:200]})"
    encoding = payload.metadata.get("encoding", b"").decode(errors="replace")[:60]
    if encoding != "json/plain":
        return f"its encoding is {encoding!r}, not 'json/plain'"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return "it does not decode as one"
    errors = cause.errors(include_url=False, include_input=False, include_context=False)
    shown = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the input'}: {error['msg']}" for error in errors[:5]
    )
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return shown[:1000] + more


class ArgumentCount(Interceptor):
    """Refuses a run started with more or fewer inputs than its workflow takes (the SDK would call
    the workflow with them, and a TypeError there fails every workflow task of the run)."""

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CountedArguments


class _CountedArguments(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        parameters = list(inspect.signature(input.run_fn).parameters.values())[1:]  # past self
        if not any(p.kind is p.VAR_POSITIONAL for p in parameters):
            required = sum(p.default is p.empty for p in parameters)
            if not required <= len(input.args) <= len(parameters):
                raise ApplicationError(
                    f"the workflow was started with {len(input.args)} inputs; it takes "
                    f"{required if required == len(parameters) else f'{required} to {len(parameters)}'}"
                    f"; {START_HINT}",
                    type=INVALID_INPUT,
                    non_retryable=True,
                )
        return await super().execute_workflow(input)


def data_converter(keys: EncryptionKeys | None) -> DataConverter:
    """The worker's converter; with keys, it encrypts what it writes and decrypts what it reads."""
    plain = DataConverter(payload_converter_class=UntrustedInputPayloadConverter)
    return with_encryption(plain, keys, strict=False)


DATA_CONVERTER = data_converter(None)
"""Without keys: plaintext payloads (the tests' plain stack, replaying committed histories)."""
