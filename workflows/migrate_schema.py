"""MigrateSchema: ordered SQL migrations, linted and planned against the ledger, one step each."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

from workflows.lifecycle import Lifecycle

with workflow.unsafe.imports_passed_through():
    from activities.migrate_schema import (
        LEDGER_RESOURCE,
        MIGRATION_RESOURCE,
        MigrateSchemaActivities,
        MigrationStepInput,
        PlanMigrationsInput,
        VerifyMigrationsInput,
    )
    from contracts.migrate_schema import MigrateSchemaSpec
    from contracts.plan import Action, Plan
    from contracts.run import Check, Resource, RunInput, RunState

PROBE_TIMEOUT = timedelta(seconds=60)
# Beyond the statements' own timeouts: connecting, taking the lock, writing the ledger row.
STEP_MARGIN = timedelta(seconds=30)


def pending_statements(plan: Plan) -> dict[str, int]:
    """Version → statement count of every migration the plan applies."""
    return {
        action.resource_id.rsplit("/", 1)[-1]: int(action.observed.get("statements", "1"))
        for action in plan.actions
        if action.resource_type == MIGRATION_RESOURCE and action.action is Action.MODIFY
    }


def creates_ledger(plan: Plan) -> bool:
    return any(a.resource_type == LEDGER_RESOURCE and a.action is Action.CREATE for a in plan.actions)


LEDGER_STEP = "create the migration ledger"


def step_timeout(spec: MigrateSchemaSpec, statements: int) -> timedelta:
    """Every statement may use its statement_timeout; one more for rebuilding an invalid index."""
    return timedelta(seconds=spec.statement_timeout_seconds * (statements + 1)) + STEP_MARGIN


class MigrationsApplied(BaseModel):
    versions: list[str] = []  # versions this run applied: verify probes their objects


@workflow.defn(name="MigrateSchema")
class MigrateSchema(Lifecycle[MigrateSchemaSpec, MigrationsApplied]):
    spec_model = MigrateSchemaSpec
    applied_model = MigrationsApplied

    @workflow.run
    async def run(self, input: RunInput) -> RunState:
        return await self.run_lifecycle(input)

    async def plan(self, spec: MigrateSchemaSpec) -> Plan:
        return await self.probe(MigrateSchemaActivities.plan, PlanMigrationsInput(spec=spec), timeout=PROBE_TIMEOUT)

    def apply_steps(self, spec: MigrateSchemaSpec, plan: Plan) -> list[str]:
        ledger = [LEDGER_STEP] if creates_ledger(plan) else []
        return ledger + [f"apply {m.version}" for m in spec.migrations if m.version in pending_statements(plan)]

    async def apply(self, spec: MigrateSchemaSpec, plan: Plan, applied: MigrationsApplied) -> MigrationsApplied:
        pending = pending_statements(plan)
        run_id = workflow.info().workflow_id
        base = MigrationStepInput(
            workflow_id=run_id,
            database=spec.database,
            schema_name=spec.schema_name,
            lock_timeout_seconds=spec.lock_timeout_seconds,
            statement_timeout_seconds=spec.statement_timeout_seconds,
        )
        if creates_ledger(plan):
            ledger = await self.step(LEDGER_STEP, MigrateSchemaActivities.create_ledger, base)
            # Recorded even if a retry found it already there: the plan said this run creates it.
            self.record_change(
                Resource(
                    resource_type=LEDGER_RESOURCE,
                    resource_id=f"{spec.database}/{spec.schema_name}.opsctl_schema_migrations",
                    detail=ledger.detail,
                )
            )
        for migration in spec.migrations:
            if migration.version not in pending:
                continue
            result = await self.step(
                f"apply {migration.version}",
                MigrateSchemaActivities.apply_migration,
                base.model_copy(
                    update={"version": migration.version, "sql": migration.sql, "checksum": migration.sha256}
                ),
                timeout=step_timeout(spec, pending[migration.version]),
            )
            if result.applied_by != run_id:
                self.warn(f"{migration.version}: {result.detail}")
                continue
            applied.versions.append(migration.version)
            self.record_change(
                Resource(
                    resource_type=MIGRATION_RESOURCE,
                    resource_id=f"{spec.database}/{spec.schema_name}/{migration.version}",
                    external_id=migration.sha256,
                    detail=result.detail,
                )
            )
        return applied

    async def verify(self, spec: MigrateSchemaSpec, applied: MigrationsApplied) -> list[Check]:
        result = await self.probe(
            MigrateSchemaActivities.verify,
            VerifyMigrationsInput(spec=spec, applied_versions=applied.versions),
            step="verify",
            timeout=PROBE_TIMEOUT,
        )
        return result.checks

    async def compensate(self, spec: MigrateSchemaSpec, applied: MigrationsApplied) -> bool:
        # Migrations have no down scripts: what was applied stays, and the report says so.
        versions = ", ".join(applied.versions) or "none"
        self.warn(f"not undone: applied migrations are not rolled back (applied by this run: {versions})")
        return False


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `python -m worker`")
