"""What Temporal itself says about the run a note is for (the note's input only claims it)."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from contracts import search_attributes as sa


class NoteTarget(BaseModel):
    exists: bool
    closed: bool = False
    scope: str = ""  # workflow id / first run id: what a decision's signature names as its run
    environment: str = ""


class NoteActivities:
    @activity.defn(name="opsctl.note_target")
    async def note_target(self, run: str) -> NoteTarget:
        """The run as the server knows it: its first execution (opsctl never reuses an id), and whether the
        chain it started has closed."""
        client = activity.client()
        try:
            described = await client.get_workflow_handle(run).describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return NoteTarget(exists=False)
            raise
        info = described.raw_description.workflow_execution_info
        first = info.first_run_id or described.run_id
        environment = ""
        for key, value in described.typed_search_attributes:
            if key.name == sa.ENVIRONMENT and isinstance(value, str):
                environment = value
        return NoteTarget(
            exists=True,
            closed=described.status is not WorkflowExecutionStatus.RUNNING,
            scope=f"{run}/{first}",
            environment=environment,
        )
