"""The worker's data converter: pydantic models as JSON, and untrusted input that never vanishes.

Signals and updates come from anyone who can reach the namespace (`temporal workflow
signal`, the Web UI's form). Their handlers take their arguments untyped and judge them
themselves, so a wrong shape is refused *and recorded*. The SDK decodes untyped arguments
before a handler runs, and drops the whole signal if that fails (bytes that are not
JSON, an unknown encoding). Here such a payload is handed on as a `RawValue` instead, for
the handler to refuse by name. Typed decoding (activity results, workflow input) is the
plain pydantic converter's, but a workflow input that does not decode as the `RunInput` it must
be is handed on as an `UndecodedInput` saying why, and `WorkflowInputCheck` (an interceptor, where
the run's own facts are at hand) decides: a run someone started (a raw `temporal workflow start`:
a field of the wrong shape, bytes that are not JSON, no input or two; a cron run or a child too)
fails at once, saying what is wrong, instead of failing its every workflow task; the input of a
run's own continue-as-new is opsctl's: one this worker cannot read (a newer worker wrote it)
fails the workflow task, retried until a worker that reads it comes.

With encryption keys every payload is encrypted (`encryption.codec`); the worker's codec keeps
a payload it cannot decrypt as it is, marked with the reason, so that too becomes a raw value
the handler refuses instead of an error that fails the run's every workflow task.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
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
from contracts.failures import INVALID_WORKFLOW_INPUT
from contracts.run import RunInput
from contracts.words import visible
from encryption.codec import with_encryption
from encryption.keys import EncryptionKeys


class UndecodedInput:
    """A workflow input that is no RunInput, and why (`WorkflowInputCheck` judges it)."""

    def __init__(self, why: str) -> None:
        self.why = why


class UntrustedInputPayloadConverter(PydanticPayloadConverter):
    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[type] | None = None) -> list[Any]:
        if type_hints is None:
            return [self._decode_or_raw(payload) for payload in payloads]
        if RunInput not in type_hints:
            return super().from_payloads(payloads, type_hints)
        values: list[Any] = []
        for payload, hint in zip(payloads, type_hints, strict=True):
            try:
                value = super().from_payloads([payload], [hint])[0]
            except Exception as exc:
                if hint is not RunInput:
                    raise
                value = UndecodedInput(_why(payload, exc))
            if hint is RunInput and not isinstance(value, RunInput | UndecodedInput):
                value = UndecodedInput(_why(payload, None))  # another encoding (binary/plain) decodes whatever the hint
            values.append(value)
        return values

    def _decode_or_raw(self, payload: Payload) -> Any:
        try:
            return super().from_payloads([payload], None)[0]
        except Exception:  # undecodable: the handler refuses it, naming its encoding
            return RawValue(payload)


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
    shown = "; ".join(f"{_where(error['loc'])}: {error['msg']}" for error in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return visible(shown[:1000]) + more


def _where(loc: tuple[int | str, ...]) -> str:
    """A field's path; a key that is no plain name is quoted and cut short (a caller's, not a field's)."""
    parts = [part if isinstance(part, str) and _NAME.fullmatch(part) else _quoted(part) for part in loc]
    return ".".join(str(part) for part in parts) or "the input"


def _quoted(part: int | str) -> str:
    if isinstance(part, int):
        return str(part)
    return repr(part if len(part) <= 40 else part[:39] + "…")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


class WorkflowInputCheck(Interceptor):
    """Refuses a run started with inputs it cannot take: more or fewer than its workflow's parameters
    (the SDK would call the workflow with them, and the TypeError would fail its every workflow task),
    or an `UndecodedInput`."""

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CheckedInput


class _CheckedInput(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        parameters = list(inspect.signature(input.run_fn).parameters.values())[1:]  # past self
        if not any(p.kind is p.VAR_POSITIONAL for p in parameters):
            required = sum(p.default is p.empty for p in parameters)
            if not required <= len(input.args) <= len(parameters):
                taken = required if required == len(parameters) else f"{required} to {len(parameters)}"
                raise _refused(f"the workflow was started with {len(input.args)} inputs; it takes {taken}")
        for arg in input.args:
            if isinstance(arg, UndecodedInput):
                info = workflow.info()
                # A continue-as-new (as `workflows.admission.continues_itself` tells it: cron runs and
                # workflow retries carry the caller's input again) wrote its input itself: a worker
                # that reads it goes on. Anything else is someone's start, a child's included.
                if info.continued_run_id and not info.cron_schedule and info.retry_policy is None:
                    raise RuntimeError(
                        f"this run's input, from its continue-as-new ({info.continued_run_id}), "
                        f"does not decode here: {arg.why}"
                    )
                raise _refused(f"the workflow input is not a RunInput: {arg.why}")
        return await super().execute_workflow(input)


def _refused(why: str) -> ApplicationError:
    hint = "opsctl runs are started by `opsctl apply` / `opsctl plan`, which send a RunInput"
    return ApplicationError(f"{why}; {hint}", type=INVALID_WORKFLOW_INPUT, non_retryable=True)


def data_converter(keys: EncryptionKeys | None) -> DataConverter:
    """The worker's converter; with keys, it encrypts what it writes and decrypts what it reads."""
    plain = DataConverter(payload_converter_class=UntrustedInputPayloadConverter)
    return with_encryption(plain, keys, strict=False)


DATA_CONVERTER = data_converter(None)
"""Without keys: plaintext payloads (the tests' plain stack, replaying committed histories)."""
