"""RotateDbCredential: rotate a PostgreSQL role's password through a Secrets Manager secret."""

from __future__ import annotations

from pydantic import Field

from contracts.request import StrictModel

# A PostgreSQL role or other identifier we are willing to handle: plain, unquoted names only.
PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
# A logical database name; the worker's settings resolve it to a DSN and admin credentials.
DATABASE_NAME = r"^[a-z][a-z0-9_-]{0,62}$"


class RotateDbCredentialSpec(StrictModel):
    """Rotate a PostgreSQL role's password through an AWS Secrets Manager secret."""

    database: str = Field(
        pattern=DATABASE_NAME,
        description="Logical database name; the worker's settings resolve it to a DSN and admin credentials.",
    )
    role: str = Field(pattern=PG_IDENTIFIER, description="The PostgreSQL role whose password rotates.")
    secret_id: str = Field(
        min_length=1,
        max_length=2048,
        description="Secrets Manager secret (name or ARN) holding the role's credentials.",
    )
