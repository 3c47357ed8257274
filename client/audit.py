"""Read a run's audit trail out of its event history (every run of a continue-as-new chain).

The history is the record: this module only decodes it (through the client's converter, so an
encrypted run is read with your keys) and names what each event means.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import DataConverter

from client.runs import notes_after, quoted, read_state
from contracts.audit import AuditEvent, AuditKind, AuditTrail
from contracts.failures import OpsctlError
from contracts.plan import Plan
from contracts.run import RunState

_E = EventType


async def read_trail(client: Client, workflow_id: str) -> AuditTrail:
    """The run opsctl started under this id — its first execution and every continue-as-new after it —
    read event by event. A later execution that reused the id (a raw `temporal workflow start` after the
    run closed) is not this run: it is named in `other_executions`, never mixed in.

    The verdicts of decisions sent by signal are only in the run's record: a closed run's result (in
    its history), an open run's state (its query, asked only then; a run nobody answers for is audited
    without them)."""
    executions = [e async for e in client.list_workflows(f"WorkflowId = '{quoted(workflow_id)}'")]
    executions.sort(key=lambda execution: execution.start_time)
    reader = _Reader(client.data_converter, workflow_id)
    run = executions[0].run_id if executions else (await client.get_workflow_handle(workflow_id).describe()).run_id
    chain: list[str] = []
    while run and run not in chain:
        chain.append(run)
        history = await client.get_workflow_handle(workflow_id, run_id=run).fetch_history()
        await reader.read(run, history.events)
        last = history.events[-1] if history.events else None
        run = ""
        if last is not None and last.event_type == _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    reader.trail.other_executions = [e.run_id for e in executions if e.run_id not in chain]
    if not reader.trail.closed:
        with contextlib.suppress(OpsctlError):
            reader.settle(await read_state(client.get_workflow_handle(workflow_id, result_type=RunState)))
    for record in await notes_after(client, workflow_id):  # notes made after the run ended: their own workflows
        entry = _decision_sent("note", {"actor": record.actor, "comment": record.comment}, record.at, "note")
        reader.trail.events.append(_with_verdict(entry, record.model_dump(mode="json")))
    return reader.trail


class _Reader:
    def __init__(self, converter: DataConverter, workflow_id: str) -> None:
        self._converter = converter
        self.trail = AuditTrail(workflow_id=workflow_id)
        self._scheduled: dict[int, tuple[str, str, datetime]] = {}  # event id → (activity type, summary, time)
        self._updates: dict[str, tuple[str, dict[str, Any]]] = {}  # update id → (name, input)
        self._signals: list[int] = []  # positions of decisions sent by signal: verdicts from the run's record

    async def read(self, run: str, events: Sequence[HistoryEvent]) -> None:
        for event in events:
            entry = await self._entry(event)
            if entry is not None:
                self.trail.events.append(entry.model_copy(update={"run": run, "event_id": event.event_id}))

    def _at(self, event: HistoryEvent) -> datetime:
        return event.event_time.ToDatetime().replace(tzinfo=UTC)

    async def _values(self, payloads: Payloads) -> list[Any]:
        """Decoded payloads; one a caller sent that cannot be decoded is named, never fatal to the audit."""
        if not payloads.payloads:
            return []
        try:
            return list(await self._converter.decode(payloads.payloads))
        except Exception as exc:  # any encoding, any bytes: a raw signal may carry anything
            return [Undecodable(f"{type(exc).__name__}: {str(exc)[:200]}")]

    async def _failure(self, failure: Failure) -> dict[str, str]:
        decoded = await self._converter.decode_failure(failure)
        kind = failure.application_failure_info.type if failure.HasField("application_failure_info") else ""
        if not kind and failure.HasField("timeout_failure_info"):
            kind = "timeout"
        return {"error_class": kind or type(decoded).__name__, "message": str(decoded)}

    async def _entry(self, event: HistoryEvent) -> AuditEvent | None:
        at, kind = self._at(event), event.event_type
        if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            return await self._started(event, at)
        if kind == _E.EVENT_TYPE_MARKER_RECORDED:
            return await self._marker(event, at)
        if kind == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            summary = ""
            if event.user_metadata.HasField("summary"):
                summary = str((await self._converter.decode([event.user_metadata.summary]))[0])
            self._scheduled[event.event_id] = (scheduled.activity_type.name, summary, at)
            return None
        if kind == _E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.attempt <= 1:
                return None
            step, summary, _ = self._scheduled.get(started.scheduled_event_id, ("?", "", at))
            failure = await self._failure(started.last_failure) if started.HasField("last_failure") else {}
            why = f" after {failure['error_class']}: {failure['message']}" if failure else ""
            return AuditEvent(
                at=at,
                kind=AuditKind.RETRY,
                summary=f"{summary or step}: attempt {started.attempt}{why}",
                details={"step": step, "attempt": started.attempt, **failure},
            )
        if kind == _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            values = await self._values(completed.result)
            return self._completed(completed.scheduled_event_id, at, values[0] if values else None)
        if kind in _STEP_ENDINGS:
            return await self._step_failed(event, at)
        if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            values = await self._values(request.input.args)
            self._updates[request.meta.update_id] = (request.input.name, values[0] if values else {})
            return None
        if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            return await self._update_completed(event, at)
        if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = event.workflow_execution_signaled_event_attributes
            values = await self._values(signaled.input)
            entry = _decision_sent(signaled.signal_name, values[0] if values else {}, at, "signal")
            self._signals.append(len(self.trail.events))  # where `read` puts it
            return entry
        if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            new_run = event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            return AuditEvent(at=at, kind=AuditKind.CONTINUED, summary=f"continued as new run {new_run}")
        if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            values = await self._values(event.workflow_execution_completed_event_attributes.result)
            return self._outcome(at, RunState.model_validate(values[0]) if values else None)
        if kind in _RUN_ENDINGS:
            self.trail.closed = True
            ended = _RUN_ENDINGS[kind]
            self.trail.outcome = {"phase": ended, "exit_code": 1}
            return AuditEvent(at=at, kind=AuditKind.OUTCOME, summary=f"the run was {ended} outside opsctl")
        return None

    async def _started(self, event: HistoryEvent, at: datetime) -> AuditEvent | None:
        attributes = event.workflow_execution_started_event_attributes
        values = await self._values(attributes.input)
        input = values[0] if values and isinstance(values[0], dict) else {}
        if input.get("continuation"):  # a continued run starts from its predecessor's state, not a new request
            return None
        request: dict[str, Any] = input["request"] if isinstance(input.get("request"), dict) else {}
        metadata: dict[str, Any] = request["metadata"] if isinstance(request.get("metadata"), dict) else {}
        trail = self.trail
        trail.request, trail.requested_at = request, at
        trail.kind = str(request.get("kind", attributes.workflow_type.name))
        trail.environment, trail.requester = str(metadata.get("environment", "")), str(metadata.get("requester", ""))
        mode, emergency = input.get("mode", "apply"), input.get("emergency", "")
        how = " as a DRY RUN" if mode == "dry_run" else (f" as an EMERGENCY: {emergency}" if emergency else "")
        signed = bool(input.get("signature"))
        return AuditEvent(
            at=at,
            kind=AuditKind.REQUESTED,
            actor=trail.requester,
            summary=f"{trail.requester} requested {trail.kind} in {trail.environment}{how}"
            + ("" if signed else " (unsigned)"),
            details={
                "mode": mode,
                "emergency": emergency,
                "signed": signed,
                "client": attributes.identity,
                "request": request,
                "rerun_of": input.get("rerun_of", ""),
            },
        )

    async def _marker(self, event: HistoryEvent, at: datetime) -> AuditEvent | None:
        details = event.marker_recorded_event_attributes.details
        if "data" not in details or "result" not in details:
            return None
        meta = (await self._values(details["data"]) or [{}])[0]
        if not isinstance(meta, dict) or meta.get("activity_type") != "opsctl.resolve_policy":
            return None
        result = (await self._values(details["result"]) or [{}])[0]
        settings = result if isinstance(result, dict) else {}
        policy = settings.get("policy") or {}
        source = settings.get("policy_source", "")
        if not policy:
            return AuditEvent(at=at, kind=AuditKind.POLICY, summary=f"no policy for this environment ({source})")
        approvals = policy.get("requiredApprovals", 0)
        signatures = "signatures required" if policy.get("requireSignatures") else "signatures optional"
        return AuditEvent(
            at=at,
            kind=AuditKind.POLICY,
            summary=f"policy from {source}: {approvals} approval(s), {signatures}",
            details={"source": source, "environment": policy.get("environment", ""), "required_approvals": approvals},
        )

    def _completed(self, scheduled: int, at: datetime, result: Any) -> AuditEvent:
        step, summary, started = self._scheduled.get(scheduled, ("?", "", at))
        timing = {"step": step, "started": started.isoformat(), "duration_ms": _ms(started, at)}
        name = summary or step
        if step.endswith(".plan") and isinstance(result, dict):
            plan = Plan.model_validate(result)
            self.trail.plan_hash = plan.hash()
            changes = sum(1 for action in plan.actions if action.action.value != "noop")
            return AuditEvent(
                at=at,
                kind=AuditKind.PLANNED,
                summary=f"{name}: {changes} change(s), plan hash {self.trail.plan_hash[:12]}…",
                details={**timing, "plan_hash": self.trail.plan_hash, "plan": result},
            )
        if step.endswith(".verify") and isinstance(result, dict | list):
            checks = (result.get("checks") or []) if isinstance(result, dict) else result
            passed = sum(1 for check in checks if isinstance(check, dict) and check.get("passed"))
            return AuditEvent(
                at=at,
                kind=AuditKind.VERIFIED,
                summary=f"{name}: {passed} of {len(checks)} check(s) passed",
                details={**timing, "checks": checks},
            )
        return AuditEvent(at=at, kind=AuditKind.STEP, summary=name, details={**timing, "result": result})

    async def _step_failed(self, event: HistoryEvent, at: datetime) -> AuditEvent:
        kind = event.event_type
        if kind == _E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attributes: Any = event.activity_task_failed_event_attributes
            failure = await self._failure(attributes.failure)
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            attributes = event.activity_task_timed_out_event_attributes
            failure = await self._failure(attributes.failure)
        else:
            attributes = event.activity_task_canceled_event_attributes
            failure = {"error_class": "cancelled", "message": "the step was cancelled"}
        step, summary, started = self._scheduled.get(attributes.scheduled_event_id, ("?", "", at))
        return AuditEvent(
            at=at,
            kind=AuditKind.STEP_FAILED,
            summary=f"{summary or step} failed: {failure['error_class']}: {failure['message']}",
            details={"step": step, "duration_ms": _ms(started, at), **failure},
        )

    async def _update_completed(self, event: HistoryEvent, at: datetime) -> AuditEvent | None:
        attributes = event.workflow_execution_update_completed_event_attributes
        name, sent = self._updates.get(attributes.meta.update_id, ("?", {}))
        entry = _decision_sent(name, sent if isinstance(sent, dict) else {}, at, "update")
        if attributes.outcome.HasField("failure"):
            failure = await self._failure(attributes.outcome.failure)
            return entry.model_copy(
                update={
                    "summary": f"{entry.summary}: refused ({failure['message']})",
                    "details": {**entry.details, **failure},
                }
            )
        values = await self._values(attributes.outcome.success)
        record = values[0] if values and isinstance(values[0], dict) else {}
        return _with_verdict(entry, record)

    def _outcome(self, at: datetime, state: RunState | None) -> AuditEvent:
        self.trail.closed = True
        if state is None:
            return AuditEvent(at=at, kind=AuditKind.OUTCOME, summary="the run completed without a result")
        self.trail.plan_hash = state.plan_hash or self.trail.plan_hash
        self.settle(state)
        self.trail.outcome = {
            "phase": state.phase.value,
            "exit_code": int(state.exit_code()),
            "failure": state.failure.model_dump(mode="json") if state.failure else None,
            "changed": [resource.model_dump(mode="json") for resource in state.changed],
            "uncertain": state.uncertain,
        }
        words = f"the run ended {state.phase.value} (exit {int(state.exit_code())})"
        if state.failure:
            words += f": {state.failure.kind.value}: {state.failure.message}"
        return AuditEvent(at=at, kind=AuditKind.OUTCOME, summary=words, details=self.trail.outcome)

    def settle(self, state: RunState) -> None:
        """What only the run's record (its result, or an open run's query) knows: whether the worker
        verified the request's signature, and the verdicts of decisions sent by signal.

        Signal verdicts are matched in the order the run took them, by actor — never by an id the
        caller chose. A verdict the record no longer keeps (past its limit) is said to be so."""
        for index, entry in enumerate(self.trail.events):
            if entry.kind is AuditKind.REQUESTED:
                verified = "signature verified" if state.requester_verified else "signature NOT verified"
                summary = f"{entry.summary} ({verified})" if entry.details.get("signed") else entry.summary
                self.trail.events[index] = entry.model_copy(
                    update={
                        "summary": summary,
                        "details": {**entry.details, "requester_verified": state.requester_verified},
                    }
                )
        records = [decision for decision in state.decisions if decision.via == "signal"]
        taken = 0
        for index in self._signals:
            entry = self.trail.events[index]
            match = next(
                (i for i in range(taken, len(records)) if records[i].actor == entry.actor[:100]),
                None,
            )
            if match is None:
                note = "verdict not kept in the run's record (it keeps a bounded number of refused attempts)"
                self.trail.events[index] = entry.model_copy(update={"summary": f"{entry.summary}: {note}"})
                continue
            taken = match + 1
            self.trail.events[index] = _with_verdict(entry, records[match].model_dump(mode="json"))


_STEP_ENDINGS = {
    _E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    _E.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
}
_RUN_ENDINGS = {
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
}


class Undecodable(str):
    """A payload a caller sent that this client cannot decode (its text says why)."""


def _decision_sent(name: str, sent: Any, at: datetime, via: str) -> AuditEvent:
    """Every signal and update is a decision attempt (an unknown name too: the run refuses and records it)."""
    if not isinstance(sent, dict):
        shown = f"undecodable input ({sent})" if isinstance(sent, Undecodable) else "input that is not an object"
        return AuditEvent(
            at=at,
            kind=AuditKind.DECISION,
            actor="unknown",
            summary=f"{name[:60]!r} with {shown}",
            details={"decision": name[:60], "via": via, "verdict": "unknown", "input": str(sent)[:200]},
        )
    actor = str(sent.get("actor", "?"))
    if name == "note":
        return AuditEvent(
            at=at,
            kind=AuditKind.NOTE,
            actor=actor,
            summary=f"note by {actor}: {sent.get('comment', '')}",
            details={"via": via},
        )
    comment = sent.get("comment", "")
    if name == "resolve" and sent.get("resolution"):
        name = f"resolve ({sent['resolution']})"
    return AuditEvent(
        at=at,
        kind=AuditKind.DECISION,
        actor=actor,
        summary=f"{name} by {actor}" + (f" ({comment})" if comment else ""),
        details={
            "decision": name,
            "via": via,
            "plan_hash": sent.get("plan_hash", ""),
            "comment": comment,
            "attempt_id": sent.get("attempt_id", ""),
            "signature_sent": bool(sent.get("signature")),
            "verdict": "unknown",
        },
    )


def _with_verdict(entry: AuditEvent, record: dict[str, Any]) -> AuditEvent:
    if entry.kind is AuditKind.NOTE:
        verdict = "accepted" if record.get("accepted") else "REFUSED"
        signed = "signature verified" if record.get("signed") else "no verified signature"
        reason = "" if record.get("accepted") else f" — {record.get('reason', '')}"
        return entry.model_copy(
            update={
                "summary": f"{entry.summary} ({verdict}{reason}; {signed})",
                "details": {**entry.details, **record, "verdict": verdict.lower()},
            }
        )
    verdict = "accepted" if record.get("accepted") else "refused"
    signature = "signature verified" if record.get("signed") else "no verified signature"
    reason = record.get("reason", "")
    return entry.model_copy(
        update={
            "summary": f"{entry.summary}: {verdict.upper()} — {reason} ({signature})",
            "details": {
                **entry.details,
                "verdict": verdict,
                "reason": reason,
                "signed": bool(record.get("signed")),
                "groups": record.get("groups", []),
                "voided": record.get("voided", ""),
            },
        }
    )


def _ms(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() * 1000)
