"""RotateDbCredential: the Secrets Manager rotation protocol as a reviewed, durable run."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.lifecycle import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities.rotate_credential import (
        PlanRotationInput,
        RotateCredentialActivities,
        RotationStepInput,
    )
    from contracts.plan import Plan
    from contracts.rotate_credential import RotateDbCredentialSpec
    from contracts.run import Check, Diagnosis, Resource, RunInput, RunState

PROBE_TIMEOUT = timedelta(seconds=30)
DIAGNOSE_WITHIN = timedelta(seconds=60)  # a diagnosis is wanted now: if the database is down, say so instead
# Runs that ended before rotations looked at which password works replay without that look.
DIAGNOSE = "rotation-diagnoses-which-password-works"
STEPS = (
    "create pending secret version",
    "set role password",
    "test login with pending password",
    "promote pending version to AWSCURRENT",
)


class RotationApplied(BaseModel):
    """The secret versions this rotation works with: what verify probes and compensate restores."""

    current_version_id: str = ""  # AWSCURRENT when the plan was made
    pending_version_id: str = ""  # the version this run staged, once it has


def step_input(spec: RotateDbCredentialSpec, applied: RotationApplied) -> RotationStepInput:
    return RotationStepInput(workflow_id=workflow.info().workflow_id, spec=spec, **applied.model_dump())


@workflow.defn(name="RotateDbCredential")
class RotateDbCredential(Lifecycle[RotateDbCredentialSpec, RotationApplied]):
    spec_model = RotateDbCredentialSpec
    applied_model = RotationApplied

    @workflow.run
    async def run(self, input: RunInput) -> RunState:
        return await self.run_lifecycle(input)

    async def plan(self, spec: RotateDbCredentialSpec) -> Plan:
        return await self.probe(RotateCredentialActivities.plan, PlanRotationInput(spec=spec), timeout=PROBE_TIMEOUT)

    def apply_steps(self, spec: RotateDbCredentialSpec, plan: Plan) -> list[str]:
        return list(STEPS)

    async def apply(self, spec: RotateDbCredentialSpec, plan: Plan, applied: RotationApplied) -> RotationApplied:
        create, set_password, test_login, promote = STEPS
        applied.current_version_id = plan.actions[0].observed["current_version_id"]
        secret = Resource(resource_type="secretsmanager:secret", resource_id=spec.secret_id)
        role = Resource(resource_type="postgres:role", resource_id=f"{spec.database}/{spec.role}")

        pending = await self.step(create, RotateCredentialActivities.create_pending, step_input(spec, applied))
        applied.pending_version_id = pending.version_id
        self.record_change(
            secret.model_copy(update={"external_id": pending.version_id, "detail": "new version staged AWSPENDING"})
        )
        await self.step(set_password, RotateCredentialActivities.set_password, step_input(spec, applied))
        self.record_change(role.model_copy(update={"detail": "password set as a SCRAM-SHA-256 verifier"}))
        await self.step(test_login, RotateCredentialActivities.test_login, step_input(spec, applied))
        await self.step(promote, RotateCredentialActivities.promote, step_input(spec, applied))
        self.record_change(
            secret.model_copy(update={"external_id": pending.version_id, "detail": "promoted to AWSCURRENT"})
        )
        return applied

    async def verify(self, spec: RotateDbCredentialSpec, applied: RotationApplied) -> list[Check]:
        result = await self.probe(
            RotateCredentialActivities.verify, step_input(spec, applied), step="verify", timeout=PROBE_TIMEOUT
        )
        return result.checks

    def repair(self, spec: RotateDbCredentialSpec, applied: RotationApplied) -> str:
        if not applied.pending_version_id:
            return f"nothing was staged; secret {spec.secret_id} and role {spec.role} are as before"
        return (
            f"role {spec.role} may have the password of secret version {applied.pending_version_id} (AWSPENDING) "
            f"while AWSCURRENT is version {applied.current_version_id}, which the database may now refuse: set the "
            f"role's password to AWSCURRENT's, or promote {applied.pending_version_id} to AWSCURRENT"
        )

    async def diagnose(self, spec: RotateDbCredentialSpec, applied: RotationApplied) -> Diagnosis:
        """Look which version's password the role takes; within a minute, else say what the record says."""
        if not applied.pending_version_id or not workflow.patched(DIAGNOSE):
            return Diagnosis(statement=self.repair(spec, applied))
        try:
            return await workflow.execute_activity_method(
                RotateCredentialActivities.diagnose,
                step_input(spec, applied),
                start_to_close_timeout=PROBE_TIMEOUT,
                schedule_to_close_timeout=DIAGNOSE_WITHIN,
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5)),
                summary="look which secret version's password the role takes",
            )
        except ActivityError as err:
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause or err)
            looked = f"{self.repair(spec, applied)} (could not look which one the database takes: {cause[:200]})"
            return Diagnosis(statement=looked)

    async def compensate(self, spec: RotateDbCredentialSpec, applied: RotationApplied) -> bool:
        result = await self.probe(
            RotateCredentialActivities.compensate, step_input(spec, applied), step="compensate", timeout=PROBE_TIMEOUT
        )
        self.warn(f"compensation: {result.detail}")
        return result.undone


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
