"""The steps of RotateDbCredential, following the Secrets Manager rotation protocol.

create pending version → set the role's password → test a login with it → promote it.
Every step first looks for its own earlier effect and adopts it, so a retry after a
crash never rotates twice. The generated password exists only inside these
activities and in Secrets Manager: inputs and results carry version ids, never values.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from activities.aws import AwsSettings, call, classify_aws, make_client
from activities.errors import classified, failure, first_known
from activities.postgres import (
    Databases,
    DatabaseTarget,
    classify_postgres,
    quote_ident,
    quote_literal,
    scram_verifier,
)
from contracts.failures import FailureKind
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.rotate_credential import RotateDbCredentialSpec
from contracts.run import Check, Diagnosis

PENDING, CURRENT, PREVIOUS = "AWSPENDING", "AWSCURRENT", "AWSPREVIOUS"
# Fixed namespace: tokens are a pure function of workflow id, step and the rotated version.
TOKEN_NAMESPACE = uuid.UUID("5f0c7a52-0f55-4d59-8f38-6f7073637431")

classify = first_known(classify_postgres, classify_aws)


class PlanRotationInput(BaseModel):
    spec: RotateDbCredentialSpec


class RotationStepInput(BaseModel):
    """What every apply step needs: the spec and the versions the plan was built on."""

    workflow_id: str
    spec: RotateDbCredentialSpec
    current_version_id: str  # AWSCURRENT when the plan was made
    pending_version_id: str = ""


class CreatePendingResult(BaseModel):
    version_id: str
    created: bool


class StepResult(BaseModel):
    changed: bool
    detail: str = ""


class CompensateResult(BaseModel):
    undone: bool  # False: the rotation had completed, so it stands
    detail: str


class VerifyRotationResult(BaseModel):
    checks: list[Check]


def pending_token(workflow_id: str, current_version_id: str) -> str:
    """The ClientRequestToken of the new version: same workflow and starting point, same token."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, f"{workflow_id}/create-pending/{current_version_id}"))


def stages_of(described: dict[str, Any]) -> dict[str, list[str]]:
    return dict(described.get("VersionIdsToStages", {}))


def version_with(stage: str, stages: dict[str, list[str]]) -> str:
    """The one version carrying `stage` ("" if none). Two carriers is a broken secret: refuse."""
    holders = [version for version, labels in stages.items() if stage in labels]
    if len(holders) > 1:
        raise failure(
            FailureKind.VALIDATION,
            f"{stage} is on {len(holders)} versions ({', '.join(holders)}); repair the secret's staging labels first",
        )
    return holders[0] if holders else ""


class RotateCredentialActivities:
    def __init__(self, databases: Databases, aws: AwsSettings) -> None:
        self._databases = databases
        self._secrets = make_client(aws, "secretsmanager")

    async def _describe(self, secret_id: str) -> dict[str, Any]:
        return await call(self._secrets.describe_secret, SecretId=secret_id)

    async def _credentials(self, secret_id: str, version_id: str) -> dict[str, Any]:
        value = await call(self._secrets.get_secret_value, SecretId=secret_id, VersionId=version_id)
        try:
            data = json.loads(value["SecretString"])
        except (KeyError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict) or "password" not in data:
            raise failure(
                FailureKind.VALIDATION,
                f"secret {secret_id} version {version_id} is not JSON with a password field",
            )
        return data

    def _target(self, spec: RotateDbCredentialSpec) -> DatabaseTarget:
        return self._databases.target(spec.database)

    @activity.defn(name="rotate_credential.plan")
    @classified(classify)
    async def plan(self, input: PlanRotationInput) -> Plan:
        """Read-only discovery: the secret's versions and the role, as the plan's facts."""
        spec = input.spec
        target = self._target(spec)
        stages = stages_of(await self._describe(spec.secret_id))
        current = version_with(CURRENT, stages)
        if not current:
            raise failure(FailureKind.VALIDATION, f"secret {spec.secret_id} has no {CURRENT} version")
        username = (await self._credentials(spec.secret_id, current)).get("username")
        if username not in (None, spec.role):
            raise failure(
                FailureKind.VALIDATION,
                f"secret {spec.secret_id} belongs to user {username!r}, not role {spec.role!r}",
            )
        conn = await self._databases.connect(target)
        try:
            can_login = await conn.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", spec.role)
        finally:
            await conn.close()
        if can_login is None:
            raise failure(FailureKind.VALIDATION, f"role {spec.role!r} does not exist in database {spec.database!r}")
        if not can_login:
            raise failure(FailureKind.VALIDATION, f"role {spec.role!r} cannot log in (NOLOGIN): nothing to rotate")
        secret = f"{spec.secret_id}"
        role = f"{spec.database}/{spec.role}"
        facts = {"current_version_id": current, "pending_version_id": version_with(PENDING, stages) or "none"}
        return Plan(
            kind="RotateDbCredential",
            target=f"role {role} via secret {secret}",
            actions=[
                PlannedAction(
                    action=Action.CREATE,
                    resource_type="secretsmanager:secret-version",
                    resource_id=secret,
                    reason=f"stage a new random password as {PENDING}",
                    reversible=True,
                    rollback=Rollback.COMPENSATE,
                    observed=facts,
                ),
                PlannedAction(
                    action=Action.MODIFY,
                    resource_type="postgres:role",
                    resource_id=role,
                    reason="set the role's password to the pending one (ALTER ROLE, lock_timeout 5s)",
                    reversible=True,
                    rollback=Rollback.COMPENSATE,
                    observed={"role_exists": "true", "can_login": "true"},
                ),
                PlannedAction(
                    action=Action.MODIFY,
                    resource_type="secretsmanager:secret-stage",
                    resource_id=secret,
                    reason=f"after a test login, promote the pending version to {CURRENT}",
                    reversible=False,
                    rollback=Rollback.NONE,
                    observed={"current_version_id": current},
                ),
            ],
        )

    @activity.defn(name="rotate_credential.create_pending")
    @classified(classify)
    async def create_pending(self, input: RotationStepInput) -> CreatePendingResult:
        spec = input.spec
        token = pending_token(input.workflow_id, input.current_version_id)
        stages = stages_of(await self._describe(spec.secret_id))
        if token in stages:
            return CreatePendingResult(version_id=token, created=False)
        if version_with(CURRENT, stages) != input.current_version_id:
            # Not retryable: the approved plan is stale, waiting cannot make it true again.
            raise failure(
                FailureKind.VALIDATION,
                f"secret {spec.secret_id} was rotated by someone else since the plan was made; submit a new request",
            )
        current = await self._credentials(spec.secret_id, input.current_version_id)
        new_value = {**current, "password": secrets.token_urlsafe(24)}
        await call(
            self._secrets.put_secret_value,
            SecretId=spec.secret_id,
            ClientRequestToken=token,
            SecretString=json.dumps(new_value),
            VersionStages=[PENDING],
        )
        return CreatePendingResult(version_id=token, created=True)

    @activity.defn(name="rotate_credential.set_password")
    @classified(classify)
    async def set_password(self, input: RotationStepInput) -> StepResult:
        spec = input.spec
        target = self._target(spec)
        password = (await self._credentials(spec.secret_id, input.pending_version_id))["password"]
        if await self._databases.can_login(target, spec.role, password):
            return StepResult(changed=False, detail="the role already has the pending password")
        await self._set_role_password(target, spec.role, password)
        return StepResult(changed=True)

    async def _set_role_password(self, target: DatabaseTarget, role: str, password: str) -> None:
        statement = f"ALTER ROLE {quote_ident(role)} PASSWORD {quote_literal(scram_verifier(password))}"
        async with self._databases.admin_transaction(target, f"opsctl:role:{role}") as conn:
            await conn.execute(statement)

    @activity.defn(name="rotate_credential.test_login")
    @classified(classify)
    async def test_login(self, input: RotationStepInput) -> StepResult:
        spec = input.spec
        password = (await self._credentials(spec.secret_id, input.pending_version_id))["password"]
        if not await self._databases.can_login(self._target(spec), spec.role, password):
            raise failure(FailureKind.AUTH, f"role {spec.role!r} cannot log in with the pending password")
        return StepResult(changed=False, detail="login with the pending password works")

    @activity.defn(name="rotate_credential.promote")
    @classified(classify)
    async def promote(self, input: RotationStepInput) -> StepResult:
        spec = input.spec
        stages = stages_of(await self._describe(spec.secret_id))
        current = version_with(CURRENT, stages)
        changed = current != input.pending_version_id
        if changed:
            await call(
                self._secrets.update_secret_version_stage,
                SecretId=spec.secret_id,
                VersionStage=CURRENT,
                MoveToVersionId=input.pending_version_id,
                RemoveFromVersionId=current,
            )
        # A second call, so a crash can fall between the two: a retry still finishes the job.
        if PENDING in stages.get(input.pending_version_id, []) or changed:
            await call(
                self._secrets.update_secret_version_stage,
                SecretId=spec.secret_id,
                VersionStage=PENDING,
                RemoveFromVersionId=input.pending_version_id,
            )
        return StepResult(changed=changed, detail="" if changed else "already current")

    @activity.defn(name="rotate_credential.verify")
    @classified(classify)
    async def verify(self, input: RotationStepInput) -> VerifyRotationResult:
        """Observe the outcome: current version, new password accepted, old one refused."""
        spec = input.spec
        target = self._target(spec)
        current = version_with(CURRENT, stages_of(await self._describe(spec.secret_id)))
        new_password = (await self._credentials(spec.secret_id, input.pending_version_id))["password"]
        old_password = (await self._credentials(spec.secret_id, input.current_version_id))["password"]
        new_ok = await self._databases.can_login(target, spec.role, new_password)
        old_ok = await self._databases.can_login(target, spec.role, old_password)
        return VerifyRotationResult(
            checks=[
                Check(
                    name="secret current version",
                    passed=current == input.pending_version_id,
                    detail=f"{CURRENT} is {current}",
                ),
                Check(
                    name="new password accepted",
                    passed=new_ok,
                    detail="login succeeded" if new_ok else "login refused",
                ),
                Check(
                    name="old password refused",
                    passed=not old_ok,
                    detail="login refused" if not old_ok else "login still works",
                ),
            ]
        )

    @activity.defn(name="rotate_credential.diagnose")
    @classified(classify)
    async def diagnose(self, input: RotationStepInput) -> Diagnosis:
        """Read-only: which secret version's password the role accepts now, and which AWSCURRENT is —
        what a person needs to repair a rotation that could not finish or undo itself."""
        spec = input.spec
        target = self._target(spec)
        stages = stages_of(await self._describe(spec.secret_id))
        current = version_with(CURRENT, stages)
        candidates = dict.fromkeys(v for v in (current, input.pending_version_id, input.current_version_id) if v)
        accepted = []
        for version in candidates:
            password = (await self._credentials(spec.secret_id, version))["password"]
            if await self._databases.can_login(target, spec.role, password):
                accepted.append(version)
        if current in accepted:
            works = f"AWSCURRENT (version {current}) logs in as {spec.role}: consumers of {spec.secret_id} work"
            return Diagnosis(broken=False, statement=works)
        if accepted:
            return Diagnosis(
                statement=f"the database REFUSES AWSCURRENT (version {current}) for {spec.role}, which accepts "
                f"version {accepted[0]}'s password: every consumer of {spec.secret_id} is locked out until you set "
                f"the role's password to AWSCURRENT's, or move AWSCURRENT to version {accepted[0]}"
            )
        return Diagnosis(
            statement=f"the database refuses every known version of {spec.secret_id} for {spec.role} (AWSCURRENT "
            f"is {current}): set the role's password to AWSCURRENT's by hand"
        )

    @activity.defn(name="rotate_credential.compensate")
    @classified(classify)
    async def compensate(self, input: RotationStepInput) -> CompensateResult:
        """Undo an unfinished rotation: the role gets the current password back, pending is dropped."""
        spec = input.spec
        target = self._target(spec)
        stages = stages_of(await self._describe(spec.secret_id))
        if version_with(CURRENT, stages) == input.pending_version_id:
            return CompensateResult(undone=False, detail="already promoted: the new password stands")
        details = []
        current_password = (await self._credentials(spec.secret_id, input.current_version_id))["password"]
        if not await self._databases.can_login(target, spec.role, current_password):
            await self._set_role_password(target, spec.role, current_password)
            details.append("restored the role's current password")
        if input.pending_version_id and PENDING in stages.get(input.pending_version_id, []):
            await call(
                self._secrets.update_secret_version_stage,
                SecretId=spec.secret_id,
                VersionStage=PENDING,
                RemoveFromVersionId=input.pending_version_id,
            )
            details.append(f"removed {PENDING} from the new version")
        return CompensateResult(undone=True, detail="; ".join(details) or "nothing to undo")
