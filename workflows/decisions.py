"""How decisions reach a run: updates (the CLI, verdict returned at once) and signals (anyone).

Both carry the same input and are judged by the same code (`RunRecord.receive`). Handlers
take their arguments untyped, so that a malformed attempt — no input, two inputs, bytes
that are not JSON, the wrong shape — is refused *and recorded*, never dropped by the SDK
or allowed to fail the workflow task. A signal of a name the run does not know is recorded
the same way. Updates have no validator on purpose: a rejected update leaves no trace in
the history, and every attempt belongs in the audit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

from workflows.run_record import RunRecord

with workflow.unsafe.imports_passed_through():
    from contracts.run import DecisionRecord

_INPUT = "input: {actor, plan_hash, comment, attempt_id, expires_at, signature}"


class DecisionHandlers:
    """The signal and update handlers every operation's workflow shares."""

    async def _ready(self) -> RunRecord:
        raise NotImplementedError

    async def _receive(self, name: str, args: Sequence[Any], via: str) -> DecisionRecord:
        """Decisions that arrive while the run fetches its policy are judged once it has one."""
        return (await self._ready()).receive(name, args, via)

    # ---- updates: the verdict comes back to the caller -----------------------------------

    @workflow.update(name="approve", description=f"approve the plan by its hash; returns the verdict. {_INPUT}")
    async def approve_update(self, *args: Any) -> DecisionRecord:
        return await self._receive("approve", args, "update")

    @workflow.update(name="reject", description=f"reject the plan awaiting approval; returns the verdict. {_INPUT}")
    async def reject_update(self, *args: Any) -> DecisionRecord:
        return await self._receive("reject", args, "update")

    @workflow.update(name="cancel", description=f"stop at the next safe point, undoing; returns the verdict. {_INPUT}")
    async def cancel_update(self, *args: Any) -> DecisionRecord:
        return await self._receive("cancel", args, "update")

    @workflow.update(
        name="resolve",
        description=f"answer needs_review; returns the verdict. {_INPUT} + resolution: retry|mark_done|abort",
    )
    async def resolve_update(self, *args: Any) -> DecisionRecord:
        return await self._receive("resolve", args, "update")

    @workflow.update(name="note", description=f"attach an operator's note (the comment); changes nothing. {_INPUT}")
    async def note_update(self, *args: Any) -> DecisionRecord:
        return await self._receive("note", args, "update")

    # ---- signals: `temporal workflow signal`, the Web UI's form ---------------------------

    @workflow.signal(
        description=f"approve the plan awaiting approval (or an emergency's review), by its hash. {_INPUT}"
    )
    async def approve(self, *args: Any) -> None:
        await self._receive("approve", args, "signal")

    @workflow.signal(description=f"reject the plan awaiting approval; nothing is changed. {_INPUT}")
    async def reject(self, *args: Any) -> None:
        await self._receive("reject", args, "signal")

    @workflow.signal(description=f"stop at the next safe point and undo the applied steps. {_INPUT}")
    async def cancel(self, *args: Any) -> None:
        await self._receive("cancel", args, "signal")

    @workflow.signal(description=f"answer needs_review. {_INPUT} + resolution: retry | mark_done | abort")
    async def resolve(self, *args: Any) -> None:
        await self._receive("resolve", args, "signal")

    @workflow.signal(description=f"attach an operator's note (the comment); changes nothing. {_INPUT}")
    async def note(self, *args: Any) -> None:
        await self._receive("note", args, "signal")

    @workflow.update(dynamic=True, description="any other update name: refused, recorded, and answered")
    async def unknown_update(self, name: str, args: Sequence[RawValue]) -> DecisionRecord:
        return await self._receive(name, decoded(args), "update")

    @workflow.signal(dynamic=True, description="any other signal name: recorded as a refused attempt")
    async def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        await self._receive(name, decoded(args), "signal")


def decoded(args: Sequence[RawValue]) -> list[Any]:
    """Raw arguments of an unknown name, decoded where they can be (so the record names its actor)."""
    converter = workflow.payload_converter()
    values: list[Any] = []
    for arg in args:
        try:
            values.append(converter.from_payload(arg.payload))
        except Exception:  # undecodable: kept raw, and refused as such
            values.append(arg)
    return values
