"""Every operation kind opsctl knows, with the versions of its spec. One row per kind.

A kind's name is also its workflow type name. Each spec lives in its own module. A kind's
versions are listed oldest first; the last is the latest, the only one its workflow and
activities read: an older spec is converted to it on the way in (`read_spec`), by the
converter each newer version names. A version may be deprecated: it is accepted, with a
warning naming the date, until that date (00:00 UTC), and refused from then on — by the
CLI and, where trust lives, by the worker.

The run id of a request does not depend on which version expresses it: its identity is the
spec in the oldest version that can say it exactly (`identity_spec`), so the run ids given
out before a newer version existed stay what they were, and a converted document names the
same run as the document it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from pydantic import ValidationError

from contracts.failures import ExitCode
from contracts.request import API_VERSIONS, DocumentError, StrictModel, _shown, describe_validation_error
from contracts.suggest import did_you_mean

V1, V2 = API_VERSIONS

# SweepStaleVolumes opsctl/v1 is refused from this day on (00:00 UTC); `opsctl convert` gives its v2 form.
SWEEP_V1_STOPS = date(2027, 6, 30)


def _load(reference: str) -> Any:
    """`module:name`, imported on first use: a document has one kind, and building every kind's
    models would cost each `opsctl validate` what it does not need. (`__import__`, not importlib:
    inside the workflow sandbox, the sandbox's import hook decides what is imported how.)"""
    module, _, name = reference.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)


@dataclass(frozen=True)
class Version:
    """One version of a kind's spec, and how it relates to the version before it.

    The models and converters are named as `module:name` and imported when first asked for."""

    api_version: str
    spec_ref: str
    # The previous version's spec → this version's exact equivalent (every older document has one).
    upgrade_ref: str = ""
    # This version's spec → the previous version's, or None when that cannot say it: keeps run ids stable.
    downgrade_ref: str = ""
    stops: date | None = None  # deprecated: refused from this date (00:00 UTC) on

    @property
    def spec(self) -> type[StrictModel]:
        return cast(type[StrictModel], _load(self.spec_ref))

    # The converters are typed per kind; the table holds them side by side.
    @property
    def upgrade(self) -> Callable[[Any], StrictModel] | None:
        return cast(Callable[[Any], StrictModel], _load(self.upgrade_ref)) if self.upgrade_ref else None

    @property
    def downgrade(self) -> Callable[[Any], StrictModel | None] | None:
        return cast(Callable[[Any], StrictModel | None], _load(self.downgrade_ref)) if self.downgrade_ref else None


VERSIONS: dict[str, tuple[Version, ...]] = {
    "RotateDbCredential": (Version(V1, "contracts.rotate_credential:RotateDbCredentialSpec"),),
    "CreateReadReplica": (Version(V1, "contracts.read_replica:CreateReadReplicaSpec"),),
    "MigrateSchema": (Version(V1, "contracts.migrate_schema:MigrateSchemaSpec"),),
    "SweepStaleVolumes": (
        Version(V1, "contracts.sweep_volumes:SweepStaleVolumesSpecV1", stops=SWEEP_V1_STOPS),
        Version(
            V2,
            "contracts.sweep_volumes:SweepStaleVolumesSpec",
            upgrade_ref="contracts.sweep_volumes:upgrade",
            downgrade_ref="contracts.sweep_volumes:downgrade",
        ),
    ),
    "BackfillTable": (Version(V1, "contracts.backfill_table:BackfillTableSpec"),),
}


class _LatestSpecs(Mapping[str, type[StrictModel]]):
    """Each kind's latest spec, imported when looked up (its names cost nothing)."""

    def __getitem__(self, kind: str) -> type[StrictModel]:
        return VERSIONS[kind][-1].spec

    def __iter__(self) -> Iterator[str]:
        return iter(VERSIONS)

    def __len__(self) -> int:
        return len(VERSIONS)


# Each kind's latest spec: what its workflow reads.
KINDS: Mapping[str, type[StrictModel]] = _LatestSpecs()


def spec_model(kind: str) -> type[StrictModel] | None:
    """The latest spec model of `kind` (None: no such kind)."""
    return KINDS.get(kind)


def versions(kind: str) -> list[str]:
    return [version.api_version for version in VERSIONS[kind]]


def latest(kind: str) -> str:
    return VERSIONS[kind][-1].api_version


def version(kind: str, api_version: object) -> Version | None:
    """The row of `kind` at `api_version`, or None if the kind has no such version."""
    return next((found for found in VERSIONS.get(kind, ()) if found.api_version == api_version), None)


def unknown_kind(kind: object) -> DocumentError:
    suggestion = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
    return DocumentError(
        f"unknown kind {_shown(kind)}{suggestion}; known kinds: {', '.join(sorted(KINDS))}", field="kind"
    )


def unknown_version(kind: str, api_version: object) -> DocumentError:
    known = versions(kind)
    have = f"its only version is {known[0]}" if len(known) == 1 else f"its versions are {', '.join(known)}"
    return DocumentError(f"{kind} has no version {_shown(api_version)}; {have}", field="apiVersion")


def _row(kind: str, api_version: str) -> tuple[int, Version]:
    rows = VERSIONS.get(kind)
    if rows is None:
        raise unknown_kind(kind)
    for index, row in enumerate(rows):
        if row.api_version == api_version:
            return index, row
    raise unknown_version(kind, api_version)


def validate_spec(kind: str, api_version: str, spec: Any) -> StrictModel:
    """`spec` checked against its own version's model; DocumentError (exit 3) naming the fields."""
    _, row = _row(kind, api_version)
    try:
        return row.spec.model_validate(spec)
    except ValidationError as exc:
        raise describe_validation_error(exc, prefix="spec", model=row.spec) from exc


def upgrade(kind: str, api_version: str, spec: StrictModel) -> StrictModel:
    """A valid spec of `api_version`, converted version by version to the kind's latest."""
    index, _ = _row(kind, api_version)
    for row in VERSIONS[kind][index + 1 :]:
        assert row.upgrade is not None, f"{kind} {row.api_version} names no converter from the version before"
        spec = row.upgrade(spec)
    return spec


def read_spec(kind: str, api_version: str, spec: Any) -> StrictModel:
    """What a workflow reads: the spec validated in its own version, then converted to the latest."""
    return upgrade(kind, api_version, validate_spec(kind, api_version, spec))


def identity_spec(kind: str, api_version: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec a request's run id is computed over: in the oldest version that says it exactly.

    A spec already in the kind's first version is taken as it is (the run ids given out
    before later versions existed do not move); one that is not valid is, too (it runs nowhere).
    """
    try:
        index, _ = _row(kind, api_version)
        if index == 0:
            return spec
        model = validate_spec(kind, api_version, spec)
    except DocumentError:
        return spec
    rows = VERSIONS[kind]
    while index > 0:
        down = rows[index].downgrade
        older = down(model) if down is not None else None
        if older is None:
            break
        model, index = older, index - 1
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


# ---- deprecation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Deprecation:
    kind: str
    api_version: str
    successor: str
    stops: date

    def in_force(self, at: date | datetime) -> bool:
        """Is the version refused at `at` (a UTC date or an aware datetime)?"""
        day = at.date() if isinstance(at, datetime) else at
        return day >= self.stops

    def warning(self) -> str:
        return (
            f"{self.kind} {self.api_version} is deprecated: it stops being accepted on {self.stops:%Y-%m-%d} (UTC); "
            f"`opsctl convert -f DOC` prints the same request as {self.successor}"
        )

    def refusal(self) -> str:
        return (
            f"{self.kind} {self.api_version} stopped being accepted on {self.stops:%Y-%m-%d} (UTC); "
            f"`opsctl convert -f DOC` prints the same request as {self.successor}"
        )


def deprecation(kind: str, api_version: str) -> Deprecation | None:
    """The deprecation of `kind` at `api_version`, if it has one."""
    found = version(kind, api_version)
    if found is None or found.stops is None:
        return None
    return Deprecation(kind, api_version, latest(kind), found.stops)


def check_accepted(kind: str, api_version: str, at: date | datetime) -> list[str]:
    """The warnings a request of this version carries at `at`; DocumentError (exit 3) once it is refused."""
    found = deprecation(kind, api_version)
    if found is None:
        return []
    if found.in_force(at):
        hint = f"submit what `opsctl convert -f DOC` prints: the same request as {found.successor}, the same run id"
        raise DocumentError(found.refusal(), field="apiVersion", exit_code=ExitCode.VALIDATION_FAILED, hint=hint)
    return [found.warning()]


# ---- schemas ------------------------------------------------------------------------------


def json_schema(kind: str, api_version: str | None = None) -> dict[str, Any]:
    """The JSON Schema of a whole request document of `kind` (envelope + spec) at a version (default: latest)."""
    from contracts.request import Request

    _, row = _row(kind, api_version or latest(kind))
    model = row.spec
    schema = Request.model_json_schema(by_alias=True)
    spec_schema = model.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    defs.update(spec_schema.pop("$defs", {}))
    defs[model.__name__] = spec_schema
    schema["title"] = kind
    schema["properties"]["apiVersion"] = {"const": row.api_version}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["spec"] = {"$ref": f"#/$defs/{model.__name__}"}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    deprecated = deprecation(kind, row.api_version)
    if deprecated is not None:
        schema["deprecated"] = True
        schema["description"] = deprecated.warning()
    return schema
