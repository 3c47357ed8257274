"""The steps of SweepStaleVolumes: discover candidates, delete them in bounded batches, verify.

EC2 has no idempotency token for DeleteVolume or CreateSnapshot, so both are made
idempotent by observation: a volume that is already gone counts as done, and a snapshot
is tagged with the run and the volume, so a retried step finds and adopts it.

Counting is by observation too. The workflow looks at a batch before its step starts
(`remaining`, recorded in history), so a volume seen then and gone now was deleted by
this step, whichever attempt deleted it; one gone already was gone before the run came.
Snapshots are counted by their tags (or, those an attempt made or found itself, at once). So a
killed, retried or cancelled batch counts each deletion and each snapshot exactly once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, model_validator
from temporalio import activity

from activities import heartbeats
from activities.aws import AwsSettings, call, classify_aws, make_client
from activities.errors import classified
from contracts.plan import Action, Plan, PlannedAction, Rollback
from contracts.run import Check
from contracts.sweep_volumes import SweepStaleVolumesSpec, SweepStaleVolumesSpecV1, VolumeSelector, upgrade

RUN_TAG, VOLUME_TAG = "opsctl:run", "opsctl:volume"
GONE = {"InvalidVolume.NotFound"}
IN_USE = {"VolumeInUse", "IncorrectState"}
FILTER_VALUES = 200


class PlanSweepInput(BaseModel):
    spec: SweepStaleVolumesSpec

    @model_validator(mode="before")
    @classmethod
    def _from_v1(cls, data: Any) -> Any:
        # A plan step scheduled before opsctl/v2 (a run in flight across the upgrade) carries the
        # v1 spec: it is read as its exact v2 equivalent, so it plans what it always planned.
        spec = data.get("spec") if isinstance(data, dict) else None
        if isinstance(spec, dict) and "selector" not in spec:
            return {**data, "spec": upgrade(SweepStaleVolumesSpecV1.model_validate(spec))}
        return data


class DeleteBatchInput(BaseModel):
    workflow_id: str
    volume_ids: list[str]
    snapshot_first: bool
    concurrency: int
    # Re-checked just before deleting: a batch may run hours after approval. `keep_tag` is the
    # first of `exclude_tags` (all of it for steps scheduled before opsctl/v2, which carry no list).
    keep_tag: str = "keep"
    exclude_tags: list[str] | None = None
    # The batch's volumes that existed when the workflow looked, before the step began (None:
    # histories from before that look): one of them gone now was deleted by an attempt of this step.
    present: list[str] | None = None

    @property
    def protected_by(self) -> list[str]:
        return self.exclude_tags or [self.keep_tag]


class DeleteBatchResult(BaseModel):
    deleted: list[str] = []
    already_gone: list[str] = []
    skipped: dict[str, str] = {}  # volume id → why it was not deleted
    snapshots: int = 0


class VerifySweepInput(BaseModel):
    workflow_id: str
    volume_ids: list[str]  # the volumes that must be gone
    expected_snapshots: int  # snapshots this run made before deleting


def classify_volume(volume: dict[str, Any], selector: VolumeSelector, now: datetime) -> str:
    """Why a volume is skipped, or "" if it is a candidate. Reasons are stable texts: they group."""
    tags = {tag["Key"]: tag["Value"] for tag in volume.get("Tags", [])}
    kept = [key for key in selector.exclude_tags if key in tags]
    if kept:
        return f"has the '{kept[0]}' tag"
    if volume["State"] != "available":
        return f"state is {volume['State']} (attached or changing)"
    if volume["CreateTime"] > now - timedelta(days=selector.older_than_days):
        return f"created less than {selector.older_than_days} days ago"
    return ""


def snapshot_filters(workflow_id: str, volume_ids: list[str]) -> list[dict[str, Any]]:
    """This run's snapshots of these volumes: tagged with the run and the volume.

    `volume-id` (a snapshot keeps the id of its volume, also once the volume is deleted) comes
    first and selects the same snapshots as the volume tag: moto applies filters in order and
    reads the tags of every snapshot a tag filter looks at, which, asked per volume among
    thousands of snapshots, made each batch slower than the one before it.
    """
    return [
        {"Name": "volume-id", "Values": volume_ids},
        {"Name": f"tag:{RUN_TAG}", "Values": [workflow_id]},
        {"Name": f"tag:{VOLUME_TAG}", "Values": volume_ids},
    ]


def either(words: list[str]) -> str:
    """'keep' · 'keep' or 'retain' · 'a', 'b' or 'c': one tag reads exactly as opsctl/v1's plans did."""
    quoted = [f"'{word}'" for word in words]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class SweepVolumesActivities:
    def __init__(self, aws: AwsSettings) -> None:
        self._ec2 = make_client(aws, "ec2")

    async def _volumes(self, selector: VolumeSelector) -> list[dict[str, Any]]:
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in sorted(selector.tags.items())]

        def every_page() -> list[dict[str, Any]]:
            pages = self._ec2.get_paginator("describe_volumes").paginate(
                Filters=filters, PaginationConfig={"PageSize": 500}
            )
            return [volume for page in pages for volume in page["Volumes"]]

        return await asyncio.to_thread(every_page)

    @activity.defn(name="sweep_volumes.plan")
    @classified(classify_aws)
    async def plan(self, input: PlanSweepInput) -> Plan:
        """Every volume in scope is either a candidate or skipped with its reason, in id order."""
        spec, selector = input.spec, input.spec.selector
        now = datetime.now(UTC)
        groups: dict[str, list[str]] = {}
        for volume in sorted(await self._volumes(selector), key=lambda v: str(v["VolumeId"])):
            groups.setdefault(classify_volume(volume, selector, now), []).append(volume["VolumeId"])
        candidates = groups.pop("", [])
        scope = ", ".join(f"{k}={v}" for k, v in sorted(selector.tags.items())) or "all volumes"
        # The plan's texts are hashed: a v1 request plans, word for word, what it planned before v2.
        protected = f"no {either(selector.exclude_tags)} tag"
        actions = []
        if candidates:
            actions.append(
                PlannedAction(
                    action=Action.DELETE,
                    resource_type="ec2:volume",
                    resource_id=f"{len(candidates)} volumes",  # hashed: its wording never changes
                    reason=f"available, created more than {selector.older_than_days} days ago, {protected}",
                    reversible=spec.snapshot_first,
                    rollback=Rollback.RESTORE_FROM_SNAPSHOT if spec.snapshot_first else Rollback.NONE,
                    observed={"scope": scope, "snapshot_first": str(spec.snapshot_first).lower()},
                    resource_ids=candidates,
                )
            )
        for reason, ids in sorted(groups.items()):
            actions.append(
                PlannedAction(
                    action=Action.NOOP,
                    resource_type="ec2:volume",
                    resource_id=f"{len(ids)} volumes",
                    reason=f"skipped: {reason}",
                    reversible=True,
                    rollback=Rollback.NONE,
                    resource_ids=ids,
                )
            )
        return Plan(kind="SweepStaleVolumes", target=f"EBS volumes in {scope}", actions=actions)

    @activity.defn(name="sweep_volumes.delete_batch")
    @classified(classify_aws)
    async def delete_batch(self, input: DeleteBatchInput) -> DeleteBatchResult:
        """Delete one batch with at most `concurrency` calls in flight; heartbeat as they finish."""
        result = DeleteBatchResult()
        limit = asyncio.Semaphore(input.concurrency)
        now = {volume["VolumeId"]: volume for volume in await self._describe(input.volume_ids)}

        seen = set(input.present or ())
        snapshotted: set[str] = set()  # volumes whose snapshot this attempt made or found
        in_flight: set[asyncio.Future[str]] = set()

        async def sweep(volume_id: str) -> None:
            volume = now.get(volume_id)
            tags = {tag["Key"] for tag in (volume or {}).get("Tags", [])}
            kept = [key for key in input.protected_by if key in tags]
            if volume is None:
                outcome = "gone"
            elif kept:
                outcome = f"not deleted: tagged '{kept[0]}' since the plan was made"
            elif volume["State"] != "available":
                outcome = f"not deleted: {volume['State']} since the plan was made"
            else:
                async with limit:
                    one = asyncio.ensure_future(
                        self._sweep_one(input.workflow_id, volume_id, input.snapshot_first, snapshotted)
                    )
                    in_flight.add(one)
                    one.add_done_callback(in_flight.discard)
                    outcome = await asyncio.shield(one)
            if outcome == "gone" and volume_id in seen:
                # Seen before this step began, gone now: this step deleted it — an earlier attempt, or
                # this one's own DeleteVolume whose answer was lost and whose retry found it gone.
                outcome = "deleted"
            if outcome == "deleted":
                result.deleted.append(volume_id)
            elif outcome == "gone":
                result.already_gone.append(volume_id)
            else:
                result.skipped[volume_id] = outcome
            done = len(result.deleted) + len(result.already_gone) + len(result.skipped)
            heartbeats.report({"done": done, "total": len(input.volume_ids), "unit": "volumes"})

        try:
            await asyncio.gather(*(sweep(volume_id) for volume_id in input.volume_ids))
        except asyncio.CancelledError:
            # A cancel cannot stop a boto3 call in its thread: the volumes in flight finish (snapshot,
            # then delete) before the step says it stopped, so what is counted after a cancel is final.
            if in_flight:
                await asyncio.wait(in_flight)
            raise
        if input.snapshot_first and result.deleted:
            # Those this attempt snapshotted count at once; those an earlier attempt deleted are found by tags.
            earlier = [volume for volume in result.deleted if volume not in snapshotted]
            result.snapshots = len(result.deleted) - len(earlier)
            if earlier:
                result.snapshots += await self._snapshots_of(input.workflow_id, earlier)
        return result

    async def _snapshots_of(self, workflow_id: str, volume_ids: list[str]) -> int:
        """How many of these volumes this run snapshotted (found by tags, whichever attempt made them)."""
        found: set[str] = set()
        for start in range(0, len(volume_ids), FILTER_VALUES):
            chunk = volume_ids[start : start + FILTER_VALUES]
            page = await call(
                self._ec2.describe_snapshots, OwnerIds=["self"], Filters=snapshot_filters(workflow_id, chunk)
            )
            found.update(tag["Value"] for snap in page["Snapshots"] for tag in snap["Tags"] if tag["Key"] == VOLUME_TAG)
        return len(found)

    async def _sweep_one(self, workflow_id: str, volume_id: str, snapshot_first: bool, snapshotted: set[str]) -> str:
        from botocore.exceptions import ClientError

        try:
            if snapshot_first:
                await self._snapshot(workflow_id, volume_id)
                snapshotted.add(volume_id)
            await call(self._ec2.delete_volume, VolumeId=volume_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in GONE:
                return "gone"
            if code in IN_USE:
                return f"not deleted: {code} (attached since the plan was made)"
            raise
        return "deleted"

    async def _snapshot(self, workflow_id: str, volume_id: str) -> str:
        """One snapshot per volume and run, found again by its tags after a retry."""
        existing = await call(
            self._ec2.describe_snapshots, OwnerIds=["self"], Filters=snapshot_filters(workflow_id, [volume_id])
        )
        if existing["Snapshots"]:
            return str(existing["Snapshots"][0]["SnapshotId"])
        created = await call(
            self._ec2.create_snapshot,
            VolumeId=volume_id,
            Description=f"opsctl sweep {workflow_id}: {volume_id} before deletion",
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": RUN_TAG, "Value": workflow_id}, {"Key": VOLUME_TAG, "Value": volume_id}],
                }
            ],
        )
        return str(created["SnapshotId"])

    @activity.defn(name="sweep_volumes.remaining")
    @classified(classify_aws)
    async def remaining(self, input: VerifySweepInput) -> list[str]:
        """Which of these volumes still exist (read-only): what a cancelled sweep counts itself by."""
        return sorted(await self._remaining(input.volume_ids))

    @activity.defn(name="sweep_volumes.snapshots")
    @classified(classify_aws)
    async def snapshots(self, input: VerifySweepInput) -> int:
        """Read-only: how many of these volumes this run snapshotted (what a cancelled sweep reports)."""
        return await self._snapshots_of(input.workflow_id, input.volume_ids) if input.volume_ids else 0

    async def _remaining(self, volume_ids: list[str]) -> set[str]:
        return {volume["VolumeId"] for volume in await self._describe(volume_ids)}

    async def _describe(self, volume_ids: list[str]) -> list[dict[str, Any]]:
        """Those of these volumes that exist, as DescribeVolumes sees them now.

        By id first: EC2 then looks the ids up, where a `volume-id` filter has moto match every volume it
        holds against every id (seconds per batch at 10,000 volumes). An id that is gone fails that form
        (InvalidVolume.NotFound), so such a chunk is asked again with the filter, which skips the missing.
        """
        from botocore.exceptions import ClientError

        found: list[dict[str, Any]] = []
        for start in range(0, len(volume_ids), FILTER_VALUES):  # EC2 caps ids and values per call
            chunk = volume_ids[start : start + FILTER_VALUES]
            try:
                page = await call(self._ec2.describe_volumes, VolumeIds=chunk)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code", "") not in GONE:
                    raise
                page = await call(self._ec2.describe_volumes, Filters=[{"Name": "volume-id", "Values": chunk}])
            found += page["Volumes"]
        return found

    @activity.defn(name="sweep_volumes.verify")
    @classified(classify_aws)
    async def verify(self, input: VerifySweepInput) -> list[Check]:
        wanted = set(input.volume_ids)
        remaining = await self._remaining(input.volume_ids)
        checks = [
            Check(
                name="candidates deleted",
                passed=not remaining,
                detail=f"{len(wanted) - len(remaining)}/{len(wanted)} gone"
                + (f"; still present: {', '.join(sorted(remaining)[:5])}" if remaining else ""),
            )
        ]
        if input.expected_snapshots:
            pages = self._ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [input.workflow_id]}]
            )
            # A failed snapshot protects nothing: count the ones pending or completed.
            found = await asyncio.to_thread(
                lambda: sum(1 for page in pages for snapshot in page["Snapshots"] if snapshot["State"] != "error")
            )
            checks.append(
                Check(
                    name="a snapshot of every deleted volume",
                    passed=found >= input.expected_snapshots,
                    detail=f"{found}/{input.expected_snapshots} snapshots tagged {RUN_TAG}={input.workflow_id}",
                )
            )
        return checks
