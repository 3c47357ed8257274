"""PostgreSQL adapter: connections by logical name, safe sessions, SQLSTATE classification.

Passwords are passed to asyncpg as arguments, never inside a DSN string, and new role
passwords travel to the server as SCRAM verifiers, so the plaintext never reaches
PostgreSQL's logs either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict
from temporalio.exceptions import ApplicationError

from activities import call_spans
from activities.errors import failure
from contracts.failures import FailureKind

CONNECT_TIMEOUT_SECONDS = 10
# The client's own bound on one query, past the server's statement_timeout (at most 120 s in opsctl's
# read-only scans): a frozen or black-holed server fails the attempt, which retries, instead of
# hanging it (heartbeats go on meanwhile) until the step's start-to-close timeout.
COMMAND_TIMEOUT_SECONDS = 150.0
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "30s"


class DatabaseTarget(BaseModel):
    """Where a logical database lives and how opsctl's admin session authenticates."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    dbname: str
    admin_user: str
    admin_password_file: str = ""  # a file holding the password (mounted secret, dev stack)
    admin_password_env: str = ""  # or the name of an environment variable holding it

    def admin_password(self) -> str | None:
        if self.admin_password_file:
            return Path(self.admin_password_file).read_text().strip()
        if self.admin_password_env:
            return os.environ.get(self.admin_password_env)
        return None


class Databases:
    """Resolves the logical names used in request specs to targets from worker settings."""

    def __init__(self, targets: dict[str, DatabaseTarget]) -> None:
        self._targets = targets

    def target(self, name: str) -> DatabaseTarget:
        try:
            return self._targets[name]
        except KeyError:
            known = ", ".join(sorted(self._targets)) or "none"
            raise failure(
                FailureKind.VALIDATION,
                f"unknown database {name!r}: the worker knows {known}",
            ) from None

    async def connect(
        self,
        target: DatabaseTarget,
        *,
        user: str = "",
        password: str | None = None,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
    ) -> Any:
        """A connection as `user` (default: the admin) — passwords are never logged."""
        if not user:
            user, password = target.admin_user, target.admin_password()
        async with call_spans.postgres_connect(target.host, target.port, target.dbname, user) as tracer:
            conn = await asyncpg.connect(
                host=target.host,
                port=target.port,
                database=target.dbname,
                user=user,
                password=password,
                timeout=CONNECT_TIMEOUT_SECONDS,
                command_timeout=command_timeout,
                server_settings={"application_name": "opsctl"},
            )
        if tracer is not None:  # while the worker traces: a span per query, children of the activity's
            call_spans.trace_queries(conn, tracer, target.host, target.port, target.dbname)
        return conn

    @asynccontextmanager
    async def admin_transaction(self, target: DatabaseTarget, lock_key: str) -> AsyncIterator[Any]:
        """A short mutating transaction: lock_timeout, statement_timeout and an advisory lock.

        The advisory lock is per operation target; if another run holds it we fail with
        `conflict` rather than queue behind it.
        """
        conn = await self.connect(target)
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
                locked = await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", lock_key)
                if not locked:
                    raise failure(FailureKind.CONFLICT, f"another operation holds the lock on {lock_key}")
                yield conn
        finally:
            await conn.close()

    async def can_login(self, target: DatabaseTarget, user: str, password: str) -> bool:
        """True if `user` can log in with `password`; False if the server says the password is wrong."""
        try:
            conn = await self.connect(target, user=user, password=password)
        except asyncpg.InvalidPasswordError:
            return False
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
        return True


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, RFC 7677)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


# SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")  # connection, resources, operator intervention
# serialization, deadlock, lock not available; read-only transaction (a failover's old primary)
TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "25006"}
PERMANENT_SQLSTATE_CLASSES = {"22": FailureKind.VALIDATION, "23": FailureKind.VALIDATION, "42": FailureKind.VALIDATION}
AUTH_SQLSTATE_CLASSES = ("28",)  # invalid authorization specification


def classify_sqlstate(sqlstate: str) -> FailureKind | None:
    if sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES:
        return FailureKind.DEPENDENCY_UNAVAILABLE
    if sqlstate[:2] in AUTH_SQLSTATE_CLASSES:
        return FailureKind.AUTH
    return PERMANENT_SQLSTATE_CLASSES.get(sqlstate[:2])


def classify_postgres(exc: BaseException) -> ApplicationError | None:
    """Map asyncpg errors to the taxonomy by SQLSTATE; connection trouble is transient."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and sqlstate:
        kind = classify_sqlstate(sqlstate)
        if kind is None:
            return None
        return failure(kind, f"PostgreSQL {sqlstate}: {exc}")
    if isinstance(exc, OSError | asyncpg.ConnectionDoesNotExistError | TimeoutError) or connection_lost(exc):
        return failure(FailureKind.DEPENDENCY_UNAVAILABLE, f"PostgreSQL unreachable: {exc}")
    return None


def connection_lost(exc: BaseException) -> bool:
    """asyncpg's word for a session the server dropped (a restart) while it sat idle between queries."""
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)
