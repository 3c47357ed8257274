"""RotateDbCredential: the Secrets Manager rotation protocol as a reviewed, durable run."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.lifecycle import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities.rotate_credential import (
        PlanRotationInput,
        RotateCredentialActivities,
        RotationStepInput,
    )
    from contracts.plan import Plan
    from contracts.rotate_credential import RotateDbCredentialSpec
    from contracts.run import Check, Resource, RunInput, RunState

PROBE_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name="RotateDbCredential")
class RotateDbCredential(Lifecycle[RotateDbCredentialSpec]):
    spec_model = RotateDbCredentialSpec

    @workflow.run
    async def run(self, input: RunInput) -> RunState:
        return await self.run_lifecycle(input)

    async def plan(self, spec: RotateDbCredentialSpec) -> Plan:
        return await self.probe(RotateCredentialActivities.plan, PlanRotationInput(spec=spec), timeout=PROBE_TIMEOUT)

    async def apply(self, spec: RotateDbCredentialSpec, plan: Plan) -> None:
        self.expect_steps(4)
        self._step_input = RotationStepInput(
            workflow_id=workflow.info().workflow_id,
            spec=spec,
            current_version_id=plan.actions[0].observed["current_version_id"],
        )
        secret = Resource(resource_type="secretsmanager:secret", resource_id=spec.secret_id)
        role = Resource(resource_type="postgres:role", resource_id=f"{spec.database}/{spec.role}")

        pending = await self.step(
            "create pending secret version",
            RotateCredentialActivities.create_pending,
            self._step_input,
        )
        self._step_input = self._step_input.model_copy(update={"pending_version_id": pending.version_id})
        self.record_change(
            secret.model_copy(update={"external_id": pending.version_id, "detail": "new version staged AWSPENDING"})
        )
        await self.step("set role password", RotateCredentialActivities.set_password, self._step_input)
        self.record_change(role.model_copy(update={"detail": "password set as a SCRAM-SHA-256 verifier"}))
        await self.step("test login with pending password", RotateCredentialActivities.test_login, self._step_input)
        await self.step(
            "promote pending version to AWSCURRENT",
            RotateCredentialActivities.promote,
            self._step_input,
        )
        self.record_change(
            secret.model_copy(update={"external_id": pending.version_id, "detail": "promoted to AWSCURRENT"})
        )

    async def verify(self, spec: RotateDbCredentialSpec) -> list[Check]:
        result = await self.probe(
            RotateCredentialActivities.verify, self._step_input, step="verify", timeout=PROBE_TIMEOUT
        )
        return result.checks

    async def compensate(self, spec: RotateDbCredentialSpec) -> bool:
        result = await self.probe(
            RotateCredentialActivities.compensate, self._step_input, step="compensate", timeout=PROBE_TIMEOUT
        )
        self.warn(f"compensation: {result.detail}")
        return result.undone


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
