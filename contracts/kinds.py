"""Every operation kind opsctl knows, with its spec model. One row per kind."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from contracts.request import StrictModel

# A PostgreSQL role or other identifier we are willing to handle: plain, unquoted names only.
PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


class RotateDbCredentialSpec(StrictModel):
    """Rotate a PostgreSQL role's password through an AWS Secrets Manager secret."""

    database: str = Field(
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="Logical database name; the worker's settings resolve it to a DSN and admin credentials.",
    )
    role: str = Field(pattern=PG_IDENTIFIER, description="The PostgreSQL role whose password rotates.")
    secret_id: str = Field(
        min_length=1,
        max_length=2048,
        description="Secrets Manager secret (name or ARN) holding the role's credentials.",
    )


KINDS: dict[str, type[StrictModel]] = {
    "RotateDbCredential": RotateDbCredentialSpec,
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
