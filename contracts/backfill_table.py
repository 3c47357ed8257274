"""BackfillTable: a batched, throttled UPDATE over a key range, resumable from its checkpoint.

The spec is checked here for shape only (pure pydantic, no parser): the SQL fragments
are parsed with pglast by the plan activity, which refuses them before anything runs.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from contracts.request import StrictModel
from contracts.rotate_credential import DATABASE_NAME, PG_IDENTIFIER

# A table, optionally schema-qualified: each part a plain, unquoted identifier.
PG_TABLE = r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$"


class BackfillGuard(StrictModel):
    """Pause the backfill while a one-number query (e.g. replica lag) is above a threshold."""

    query: str = Field(
        min_length=1,
        max_length=4000,
        description="A read-only SELECT returning one number, e.g. the replicas' replay lag in seconds.",
    )
    max_value: float = Field(description="Batches run only while the query's value is at most this.")
    poll_seconds: int = Field(default=5, ge=1, le=300, description="How often a paused backfill looks again.")
    max_pause_seconds: int = Field(
        default=3600,
        ge=1,
        le=86_400,
        description="A longer pause fails the attempt as dependency_unavailable; the retry resumes.",
    )


class BackfillTableSpec(StrictModel):
    """Set one column to an expression, batch by batch over the key range of matching rows."""

    database: str = Field(pattern=DATABASE_NAME, description="Logical database name, resolved by the worker.")
    table: str = Field(pattern=PG_TABLE, description="The table to update, e.g. `users` or `app.users`.")
    key_column: str = Field(
        pattern=PG_IDENTIFIER,
        description="Batches walk this column in order; it must lead a btree index (e.g. the primary key).",
    )
    set_column: str = Field(pattern=PG_IDENTIFIER, description="The column the backfill sets.")
    expression: str = Field(
        min_length=1, max_length=4000, description="One SQL expression for the new value, e.g. `lower(email)`."
    )
    predicate: str = Field(
        min_length=1,
        max_length=4000,
        description="Rows still to backfill, e.g. `email_lower IS NULL`. The update must make it false.",
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000, description="Rows per batch (one short transaction).")
    max_rows_per_second: int = Field(default=5000, ge=1, description="Average rate limit; sleeps between batches.")
    guard: BackfillGuard | None = Field(default=None, description="Optional: pause while this guard is over.")

    @model_validator(mode="after")
    def _key_is_not_the_target(self) -> BackfillTableSpec:
        # Keyset batching walks the key; rewriting it under the walk would skip or repeat rows.
        if self.key_column == self.set_column:
            raise ValueError("keyColumn and setColumn must differ: the backfill cannot rewrite its own batch key")
        return self
