"""BackfillTable: a batched, throttled UPDATE over a key range, resumable from its checkpoint."""

from __future__ import annotations

from pydantic import Field

from contracts.request import StrictModel
from contracts.rotate_credential import DATABASE_NAME, PG_IDENTIFIER


class BackfillTableSpec(StrictModel):
    database: str = Field(pattern=DATABASE_NAME)
    table: str = Field(pattern=PG_IDENTIFIER)
    key_column: str = Field(pattern=PG_IDENTIFIER)
    set_column: str = Field(pattern=PG_IDENTIFIER)
    expression: str = Field(min_length=1, description="SQL expression for the new value")
    predicate: str = Field(min_length=1, description="Rows still to backfill, e.g. 'email_lower IS NULL'")
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    max_rows_per_second: int = Field(default=5000, ge=1)
