"""MigrateSchema: ordered SQL migrations with checksums, linted before they may run.

The worker only ever sees inline migrations: a document naming a `directory` is inlined
by the client (`client.migrations.inline_directory`) before it is submitted. The lint
rules and their severities are part of the contract, because a request acknowledges
unsafe findings by rule name.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from contracts.request import StrictModel
from contracts.rotate_credential import DATABASE_NAME, PG_IDENTIFIER

VERSION_PATTERN = r"^[0-9]{1,20}[a-z0-9_]*$"
LEDGER_TABLE = "opsctl_schema_migrations"


class Severity(StrEnum):
    UNSAFE = "unsafe"  # blocks apply unless the request acknowledges it
    WARNING = "warning"
    INFO = "info"


class LintRule(StrEnum):
    """What the migration linter looks for; each rule has one severity (see activities.sql_lint)."""

    CREATE_INDEX_NOT_CONCURRENTLY = "create_index_not_concurrently"
    ADD_COLUMN_VOLATILE_DEFAULT = "add_column_volatile_default"
    SET_NOT_NULL = "set_not_null"
    CONSTRAINT_WITHOUT_NOT_VALID = "constraint_without_not_valid"
    UNIQUE_WITHOUT_INDEX = "unique_without_index"
    COLUMN_TYPE_CHANGE = "column_type_change"
    CONCURRENTLY_WITH_OTHER_STATEMENTS = "concurrently_with_other_statements"
    UNNAMED_CONCURRENT_INDEX = "unnamed_concurrent_index"
    DROP_WITHOUT_IF_EXISTS = "drop_without_if_exists"
    DROPS_DATA = "drops_data"
    UNKNOWN_DEFAULT_VOLATILITY = "unknown_default_volatility"
    MISSING_LOCK_TIMEOUT = "missing_lock_timeout"


def checksum_of(sql: str) -> str:
    """The checksum of a migration: sha256 of its SQL text exactly as submitted."""
    return hashlib.sha256(sql.encode()).hexdigest()


def split_statements(sql: str) -> list[str]:
    """A migration's statements as written, by PostgreSQL's own parser (pglast).

    Statement numbers in lint findings count these. Raises ValueError if the SQL does not parse.
    """
    from pglast import split  # imported here: only commands that show SQL pay for the parser
    from pglast.parser import ParseError

    try:
        return list(split(sql))
    except ParseError as exc:
        raise ValueError(f"does not parse: {exc}") from None


def sql_by_version(spec: dict[str, Any]) -> dict[str, str]:
    """Version → SQL of a MigrateSchema spec's inline migrations, as a request carries them (document form)."""
    migrations = spec.get("migrations")
    if not isinstance(migrations, list):
        return {}
    return {str(m.get("version")): str(m.get("sql", "")) for m in migrations if isinstance(m, dict)}


def version_key(version: str) -> tuple[int, str]:
    """Order versions by their number first, so 10_x comes after 9_x."""
    digits = re.match(r"[0-9]+", version)
    assert digits is not None, "the pattern guarantees a leading number"
    return int(digits.group()), version[digits.end() :]


class Migration(StrictModel):
    version: str = Field(pattern=VERSION_PATTERN, description="Orders migrations, e.g. 0001_users")
    sql: str = Field(min_length=1)
    checksum: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Optional sha256 of `sql`; if given it must match (the directory loader fills it in).",
    )

    @model_validator(mode="after")
    def _checksum_matches(self) -> Migration:
        if self.checksum is not None and self.checksum != checksum_of(self.sql):
            raise ValueError(f"checksum of migration {self.version} does not match its sql")
        return self

    @property
    def sha256(self) -> str:
        return checksum_of(self.sql)


class Acknowledgement(StrictModel):
    """Accept one unsafe lint finding of one migration, knowingly (e.g. the table is tiny)."""

    version: str = Field(pattern=VERSION_PATTERN)
    rule: LintRule
    reason: str = Field(default="", max_length=500, description="Why it is acceptable; shown in the plan.")


class MigrateSchemaSpec(StrictModel):
    """Apply ordered SQL migrations to one schema, recording each in a ledger table there."""

    database: str = Field(
        pattern=DATABASE_NAME,
        description="Logical database name; the worker's settings resolve it to a DSN and admin credentials.",
    )
    schema_name: str = Field(
        default="public",
        pattern=PG_IDENTIFIER,
        description=f"Schema the migrations run in (search_path); its `{LEDGER_TABLE}` table is the ledger.",
    )
    migrations: list[Migration] = Field(
        default_factory=list, description="Inline migrations, in version order (what the worker sees)."
    )
    directory: str | None = Field(
        default=None,
        description="Or: a directory of NNNN_name.sql files, relative to the document; the client inlines it.",
    )
    acknowledge: list[Acknowledgement] = Field(
        default_factory=list, description="Unsafe lint findings accepted on purpose, by version and rule."
    )
    lock_timeout_seconds: int = Field(default=5, ge=1, le=300, description="lock_timeout of every migration.")
    statement_timeout_seconds: int = Field(
        default=60, ge=1, le=86_400, description="statement_timeout of every migration statement."
    )

    @model_validator(mode="after")
    def _one_source_in_order(self) -> MigrateSchemaSpec:
        if self.directory is not None and self.migrations:
            raise ValueError("give either migrations or directory, not both")
        if self.directory is None and not self.migrations:
            raise ValueError("give migrations (inline) or a directory of .sql files")
        versions = [m.version for m in self.migrations]
        if len(set(versions)) != len(versions):
            raise ValueError("migration versions must be unique")
        if versions != sorted(versions, key=version_key):
            raise ValueError("migrations must be listed in version order")
        unknown = sorted({a.version for a in self.acknowledge} - set(versions)) if self.migrations else []
        if unknown:
            raise ValueError(f"acknowledge names versions that are not in migrations: {', '.join(unknown)}")
        return self
