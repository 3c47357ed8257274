"""MigrateSchema: ordered SQL migrations with checksums, linted before they may run."""

from __future__ import annotations

from pydantic import Field

from contracts.request import StrictModel
from contracts.rotate_credential import DATABASE_NAME


class Migration(StrictModel):
    version: str = Field(pattern=r"^[0-9]{1,20}[a-z0-9_]*$", description="Orders migrations, e.g. 0001_users")
    sql: str = Field(min_length=1)


class MigrateSchemaSpec(StrictModel):
    database: str = Field(pattern=DATABASE_NAME)
    migrations: list[Migration] = Field(default_factory=list, description="Inline migrations, in order.")
    directory: str | None = Field(default=None, description="Or: a directory of NNNN_name.sql files.")
