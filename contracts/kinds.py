"""Every operation kind opsctl knows, with its spec model. One row per kind.

A kind's name is also its workflow type name. Each spec lives in its own module.
"""

from __future__ import annotations

from typing import Any

from contracts.backfill_table import BackfillTableSpec
from contracts.migrate_schema import MigrateSchemaSpec
from contracts.read_replica import CreateReadReplicaSpec
from contracts.request import StrictModel
from contracts.rotate_credential import RotateDbCredentialSpec
from contracts.sweep_volumes import SweepStaleVolumesSpec

KINDS: dict[str, type[StrictModel]] = {
    "RotateDbCredential": RotateDbCredentialSpec,
    "CreateReadReplica": CreateReadReplicaSpec,
    "MigrateSchema": MigrateSchemaSpec,
    "SweepStaleVolumes": SweepStaleVolumesSpec,
    "BackfillTable": BackfillTableSpec,
}


def spec_model(kind: str) -> type[StrictModel] | None:
    return KINDS.get(kind)


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a whole request document of `kind` (envelope + spec)."""
    from contracts.request import Request

    model = KINDS[kind]
    schema = Request.model_json_schema(by_alias=True)
    spec_schema = model.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    defs.update(spec_schema.pop("$defs", {}))
    defs[model.__name__] = spec_schema
    schema["title"] = kind
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["spec"] = {"$ref": f"#/$defs/{model.__name__}"}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return schema
