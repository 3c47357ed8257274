"""OpsctlNote: a note on a run that has ended, kept in a history of its own (`opsctl note`).

A closed run's history takes no more events, so a note after the fact is its own small workflow,
`<run>:note:<attempt id>` (one per attempt: Temporal refuses the id twice). Its input is a claim:
the workflow asks Temporal which run it is for and in which environment, verifies the signature
against that environment's policy as a decision on the run would be, and returns the record.
`opsctl audit` and `opsctl explain` read these records next to the run's own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.notes import NoteActivities
    from activities.policy import PolicyActivities, ResolvePolicyInput
    from contracts.gate import check_identity
    from contracts.run import NOTE_WORKFLOW, Decision, DecisionInput, DecisionRecord

MAX_NOTE = 1000


@workflow.defn(name=NOTE_WORKFLOW)
class RunNote:
    @workflow.run
    async def run(self, *args: Any) -> DecisionRecord:
        info = workflow.info()
        run, _, attempt = info.workflow_id.partition(":note:")
        try:
            input = DecisionInput.model_validate(args[0] if len(args) == 1 else None)
        except Exception:
            return self._record("unknown", "", attempt, False, "a note takes one input: {actor, comment, …}")
        if not input.comment.strip():
            return self._record(input.actor, "", attempt, False, "a note needs text (the comment)")
        comment = input.comment[:MAX_NOTE]
        if input.attempt_id != attempt:
            return self._record(
                input.actor, comment, attempt, False, "the workflow id must end in the note's attempt id"
            )
        target = await workflow.execute_activity_method(
            NoteActivities.note_target,
            run,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=5),
            summary="find the run the note is for",
        )
        if not target.exists or not target.environment:
            return self._record(input.actor, comment, attempt, False, f"no opsctl run {run!r}")
        if not target.closed:
            return self._record(input.actor, comment, attempt, False, "the run goes on: note it there (`opsctl note`)")
        settings = await workflow.execute_local_activity_method(
            PolicyActivities.resolve_policy,
            ResolvePolicyInput(environment=target.environment),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary="load the environment's policy",
        )
        if settings.policy is None:
            return self._record(input.actor, comment, attempt, False, f"no policy for {target.environment}")
        identity = check_identity(
            settings.policy,
            actor=input.actor,
            payload=input.signature_payload(target.scope, Decision.NOTE),
            signature=input.signature,
            attempt_id=input.attempt_id,
            expires_at=input.expires_at,
            now=workflow.now(),
            seen_attempts=set(),  # the workflow id is the attempt: Temporal runs it once
        )
        reason = "note recorded" if identity.accepted else identity.reason
        return self._record(input.actor, comment, attempt, identity.accepted, reason, signed=identity.signed)

    def _record(
        self, actor: str, comment: str, attempt: str, accepted: bool, reason: str, signed: bool = False
    ) -> DecisionRecord:
        return DecisionRecord(
            decision=Decision.NOTE,
            actor=actor[:100],
            plan_hash="",
            comment=comment,
            attempt_id=attempt[:64],
            accepted=accepted,
            reason=reason,
            at=workflow.now(),
            signed=signed,
            via="note",
        )


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
