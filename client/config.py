"""Who is calling and where Temporal is, resolved in layers, each overriding the one before:

    built-in defaults → the embedded stack's record (`<state_dir>/stack.json`, written by `opsctl dev up`)
    → repository file (`.opsctl.toml`, the nearest one upward from the current folder)
    → user file (`$OPSCTL_CONFIG`, else `~/.config/opsctl/config.toml`)
    → environment (`OPSCTL_<KEY>`) → flags (`--as`, `--address`, `--namespace`, `--state-dir`).

The highest layer that holds a key gives its value; `Config.origins` says which layer that was
(`opsctl config show`). A relative path in a file is relative to that file's folder. Keys files and
token files are referenced by path: keys and tokens themselves never go into a config file.
"""

from __future__ import annotations

import getpass
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.failures import ExitCode, OpsctlError

if TYPE_CHECKING:
    from client.keys import Keyring
    from encryption.keys import EncryptionKeys
    from telemetry.export import TraceExport

# What `opsctl dev up` writes into its state folder (mode 0600) and the CLI then finds there.
STACK_CODEC_KEYS = "codec-keys"
STACK_CODEC_TOKEN = "codec-token"  # noqa: S105 - a file name in the state folder, not a token

REPOSITORY_FILE = ".opsctl.toml"
USER_FILE = "~/.config/opsctl/config.toml"
STATE_FOLDER = ".opsctl"

# key → what it is; the keys a file may hold and `OPSCTL_<KEY>` may set.
KEYS: dict[str, str] = {
    "user": "who you act as: your identity in the policy (default: your login name)",
    "temporal_address": "the Temporal frontend, host:port",
    "temporal_http_address": "the same frontend's HTTP API, host:port, for status and list ('': none, use gRPC)",
    "namespace": "the Temporal namespace",
    "task_queue": "the task queue opsctl's workers poll",
    "state_dir": "the embedded stack's state folder (default: the nearest .opsctl/ upward holding a stack)",
    "ui_url": "the Temporal Web UI, for links to runs",
    "policy_file": "the policy file the workers use, when this machine has a copy ('': built-in)",
    "codec_keys_file": "payload encryption keys ('': none)",
    "codec_key_id": "the key id that encrypts ('': the last key of the file)",
    "codec_token_file": "the codec server's bearer token file",
    "trace_exporter": "where this command's spans go: none, console (stderr), otlp-http or otlp-grpc",
    "trace_endpoint": "the OTLP collector ('': the exporter's default, or $OTEL_EXPORTER_OTLP_ENDPOINT)",
    "trace_headers": "OTLP headers key=value,… (a token: shown redacted; prefer $OPSCTL_TRACE_HEADERS)",
}
PATH_KEYS = ("state_dir", "policy_file", "codec_keys_file", "codec_token_file")
# The global options that are configuration (client.main.GLOBAL_OPTIONS): dest → (key, flag).
FLAGS = {
    "as_user": ("user", "--as"),
    "address": ("temporal_address", "--address"),
    "namespace": ("namespace", "--namespace"),
    "state_dir": ("state_dir", "--state-dir"),
}
FLAG_NAMES = {key: flag for key, flag in FLAGS.values()}


@dataclass(frozen=True)
class Config:
    user: str
    state_dir: Path
    temporal_address: str
    namespace: str
    task_queue: str
    ui_url: str
    temporal_http_address: str = ""  # the frontend's HTTP API ('': none): status and list read through it
    policy_file: str = ""  # the policy file the workers use, when this machine has it ('' : built-in)
    codec_keys_file: str = ""  # payload encryption keys ('': none, unless $OPSCTL_CODEC_KEYS has them)
    codec_key_id: str = ""  # the id that encrypts ('': the last key of the file)
    codec_token_file: str = ""  # the codec server's bearer token
    trace_exporter: str = "none"  # none: no tracing, nothing of OpenTelemetry imported
    trace_endpoint: str = ""
    trace_headers: str = field(default="", repr=False)  # secret: never rendered as it is
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)  # key → the layer it came from
    files: Mapping[str, str] = field(default_factory=dict, compare=False)  # layer → the file it read ('' none)

    def web_ui(self, workflow_id: str) -> str:
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows/{workflow_id}"

    def keyring(self) -> Keyring:
        """Your keys first (`opsctl keys init`), then the embedded stack's demo identities."""
        from client.keys import Keyring, user_keys_dir  # signing imports cryptography: only when signing

        return Keyring([user_keys_dir(), self.state_dir / "keys"])

    def encryption_keys(self) -> EncryptionKeys | None:
        """The payload encryption keyring, or None: encryption off (raises `KeysError` if malformed)."""
        from encryption.keys import load_keys  # cryptography: only for commands that talk to Temporal

        return load_keys(self.codec_keys_file, self.codec_key_id)

    def trace_export(self) -> TraceExport:
        """Where this command's spans go (checked when the configuration was loaded)."""
        values = {key: getattr(self, key) for key in ("trace_exporter", "trace_endpoint", "trace_headers")}
        return trace_config(values, self.origins)

    def values(self) -> dict[str, str]:
        """Every key's value as `config show` prints it: secrets redacted."""
        shown = {key: str(getattr(self, key)) for key in KEYS}
        if self.trace_headers or any(mark in self.trace_endpoint for mark in "@?#"):
            from telemetry.export import redacted_endpoint, redacted_headers

            shown["trace_headers"] = redacted_headers(self.trace_headers)
            shown["trace_endpoint"] = redacted_endpoint(self.trace_endpoint)
        return shown


@dataclass(frozen=True)
class Layer:
    """One layer's values, and where they came from."""

    name: str  # default, stack, repository, user, environment, flag
    values: dict[str, Any]
    source: str = ""  # the file or the variable prefix

    def origin(self, key: str) -> str:
        if self.name == "environment":
            return f"environment OPSCTL_{key.upper()}"
        if self.name == "flag":
            return f"flag {FLAG_NAMES[key]}"
        return f"{self.name} {self.source}" if self.source else self.name


def load_config(
    as_user: str | None = None,
    state_dir: str | None = None,
    *,
    address: str | None = None,
    namespace: str | None = None,
    cwd: Path | None = None,
) -> Config:
    """Resolve every layer; an unknown key, a wrong type or a missing $OPSCTL_CONFIG is exit 2."""
    here = (cwd or Path.cwd()).absolute()
    ignored: list[str] = []  # found upward but not believed (`config show` names them)
    given = {"as_user": as_user, "state_dir": state_dir, "address": address, "namespace": namespace}
    flags = Layer("flag", {FLAGS[dest][0]: value for dest, value in given.items() if value})
    files = [_repository_layer(here, ignored), _user_layer()]
    environment = Layer("environment", _environment(), "OPSCTL_")
    above = [layer for layer in (flags, environment, *reversed(files)) if layer is not None]
    state, state_origin = _state_dir(above, here, ignored)
    layers = [*above, _stack_layer(state), Layer("default", _defaults())]  # highest first
    values = _merge(layers)
    origins = {key: next(layer.origin(key) for layer in layers if key in layer.values) for key in values}
    origins["state_dir"] = state_origin
    _check_address("temporal_address", values["temporal_address"], origins["temporal_address"])
    if values["temporal_http_address"]:
        _check_address("temporal_http_address", values["temporal_http_address"], origins["temporal_http_address"])
    _pair_http_address(values, origins, layers)
    _check_tracing(values, origins)
    return Config(
        **{key: value for key, value in values.items() if key != "state_dir"},
        state_dir=state,
        origins=origins,
        files={layer.name: layer.source for layer in files if layer is not None}
        | ({"ignored": "; ".join(ignored)} if ignored else {}),
    )


def _check_address(key: str, address: str, origin: str) -> None:
    """host:port with a port from 1 to 65535: anything else fails here (exit 2), not inside a client."""
    host, _, port = address.rpartition(":")
    valid = host.strip("[]") and " " not in host and port.isdigit() and 1 <= int(port) <= 65535
    if key == "temporal_http_address":  # it goes into a URL: a host name or an address, nothing else
        valid = valid and all(c.isascii() and (c.isalnum() or c in ".-[]:") for c in host)
    if not valid:
        example = "127.0.0.1:7243" if key == "temporal_http_address" else "127.0.0.1:7233 or temporal.internal:7233"
        raise OpsctlError(
            ExitCode.INVALID_INPUT, f"{key} {address!r} from {origin} is not HOST:PORT", hint=f"e.g. {example}"
        )


_PAIRED = ("temporal_http_address", "temporal_address")


def _pair_http_address(values: dict[str, str], origins: dict[str, str], layers: list[Layer]) -> None:
    """The HTTP API read is the same server's only if no higher layer moved `temporal_address` away from
    the one that named it: `--address other:7233` with the stack's HTTP port would read the wrong server."""
    if not values["temporal_http_address"]:
        return
    http, grpc = (next(n for n, layer in enumerate(layers) if key in layer.values) for key in _PAIRED)  # highest first
    if grpc < http:
        values["temporal_http_address"] = ""
        origins["temporal_http_address"] = (
            f"none: temporal_address from {origins['temporal_address']} is above {origins['temporal_http_address']}"
        )


def _check_tracing(values: dict[str, str], origins: dict[str, str]) -> None:
    """An exporter that cannot work fails here (exit 2), naming the key and its layer, never a header value."""
    if values["trace_exporter"] in ("", "none") and not (values["trace_endpoint"] or values["trace_headers"]):
        return  # the default: nothing to check, nothing imported
    from telemetry.export import ExportError

    try:
        trace_config(values, origins)
    except ExportError as exc:
        raise OpsctlError(ExitCode.INVALID_INPUT, exc.message, hint=exc.hint) from None


def trace_config(values: Mapping[str, str], origins: Mapping[str, str]) -> TraceExport:
    """The trace exporter these values name (raises `ExportError` naming the key and its layer)."""
    from telemetry.export import trace_export

    def source(key: str) -> str:
        return f"{key} from {origins.get(key, 'default')}"

    return trace_export(
        values["trace_exporter"],
        values["trace_endpoint"],
        values["trace_headers"],
        sources=(source("trace_exporter"), source("trace_endpoint"), source("trace_headers")),
    )


def config_for(args: Any) -> Config:
    """The configuration for a parsed command line (its global options are the flag layer)."""
    return load_config(**{dest: getattr(args, dest, None) for dest in FLAGS})


# ---- the layers ----


def _defaults() -> dict[str, str]:
    return {
        "user": _login_name(),
        "temporal_address": "127.0.0.1:7233",
        "temporal_http_address": "",
        "namespace": "default",
        "task_queue": "opsctl",
        "state_dir": STATE_FOLDER,  # resolved on its own first: see _state_dir
        "ui_url": "http://127.0.0.1:8233",
        "policy_file": "",
        "codec_keys_file": "",
        "codec_key_id": "",
        "codec_token_file": "",
        "trace_exporter": "none",
        "trace_endpoint": "",
        "trace_headers": "",
    }


# Keys that may be empty on purpose ('': none): `OPSCTL_CODEC_KEYS_FILE=` turns the stack's keys off.
OPTIONAL_KEYS = (
    "temporal_http_address",
    "policy_file",
    "codec_keys_file",
    "codec_key_id",
    "codec_token_file",
    "trace_endpoint",
    "trace_headers",
)


def _environment() -> dict[str, str]:
    """OPSCTL_<KEY> for the keys only: other OPSCTL_ variables (OPSCTL_DEBUG, …) are not configuration.
    An empty value counts as unset, except for the optional keys, where it means none."""
    values = {key: os.environ.get(f"OPSCTL_{key.upper()}") for key in KEYS}
    return {key: value for key, value in values.items() if value or (value == "" and key in OPTIONAL_KEYS)}


MAX_CONFIG_BYTES = 1024 * 1024


def _is_file(path: Path) -> bool:
    """A regular file we may look at (a folder we may not enter counts as nothing there)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _trusted(path: Path, *, shared_ok: bool = False) -> bool:
    """Found upward, a file or folder is only believed if it is yours (or root's) and not writable by
    everyone (as git's safe.directory): a shared /tmp must not hand you its Temporal address or keys.
    `shared_ok`: a folder like /tmp itself (root's, sticky) may hold your file."""
    try:
        status = path.stat()
    except OSError:
        return False
    return status.st_uid in (os.getuid(), 0) and (shared_ok or not status.st_mode & 0o002)


def _repository_layer(here: Path, ignored: list[str]) -> Layer | None:
    for folder in (here, *here.parents):
        path = folder / REPOSITORY_FILE
        if _is_file(path):
            if not (_trusted(path) and _trusted(folder, shared_ok=True)):
                ignored.append(f"{path} (not yours, or writable by everyone)")
                continue
            return Layer("repository", _read_file(path), str(path))
    return None


def _user_layer() -> Layer | None:
    named = os.environ.get("OPSCTL_CONFIG")
    if named == "":  # set and empty: no user file, on purpose
        return None
    path = Path(named or USER_FILE).expanduser()
    try:
        exists = path.exists()
    except OSError:  # a folder on the way we may not enter: as if it were not there
        exists = False
    if not exists:
        if named is None:
            return None
        raise OpsctlError(
            ExitCode.INVALID_INPUT,
            f"$OPSCTL_CONFIG names {path}, which does not exist",
            hint="point it at your config file, or set OPSCTL_CONFIG= (empty) for none",
        )
    return Layer("user", _read_file(path), str(path))


def _read_file(path: Path) -> dict[str, Any]:
    """A config file's keys, checked one by one so an error names the key and the file."""
    try:
        if not path.is_file():  # a folder, a FIFO, a device: never read (a FIFO would wait forever)
            raise OSError(0, "not a regular file")
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise OSError(0, f"larger than {MAX_CONFIG_BYTES // 1024} KiB")
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise OpsctlError(ExitCode.INVALID_INPUT, f"config file {path} is unreadable: {reason}") from exc
    for key, value in data.items():
        if key not in KEYS:
            from contracts.suggest import closest  # pydantic: only when a key is wrong

            close = closest(key, KEYS)
            guess = f" (did you mean {close!r}?)" if close else ""
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"unknown key {key!r} in config file {path}{guess}",
                hint=f"known keys: {', '.join(KEYS)} (`opsctl config show` lists them with their values)",
            )
        if not isinstance(value, str):
            raise OpsctlError(
                ExitCode.INVALID_INPUT,
                f"{key} in config file {path} must be a string, not {_toml_type(value)}",
                hint=f'write it quoted: {key} = "…"',
            )
    # A relative path in a file means next to that file, wherever opsctl runs from.
    return {
        key: str(path.parent / Path(value).expanduser()) if key in PATH_KEYS and value else value
        for key, value in data.items()
    }


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", list: "an array", dict: "a table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), "a date or time")


def _state_dir(layers: list[Layer], here: Path, ignored: list[str]) -> tuple[Path, str]:
    """The state folder: a layer that names it, else the nearest `.opsctl/` upward with a stack, else ./.opsctl."""
    for layer in layers:
        if layer.values.get("state_dir"):
            return Path(layer.values["state_dir"]), layer.origin("state_dir")
    for folder in (here, *here.parents):
        found = folder / STATE_FOLDER
        if _is_file(found / "stack.json") and folder != here and not _trusted(found):
            ignored.append(f"{found} (not yours, or writable by everyone)")
            continue
        if _is_file(found / "stack.json"):
            return (Path(STATE_FOLDER) if folder == here else found), f"found upward from {here}"
    return Path(STATE_FOLDER), f"default (no {STATE_FOLDER}/ with a stack in {here} or above)"


def _stack_layer(state_dir: Path) -> Layer:
    """What the running embedded stack tells: its ports, and the policy and codec files it wrote."""
    record = state_dir / "stack.json"
    try:
        stack = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return Layer("stack", {})
    if not isinstance(stack, dict):
        return Layer("stack", {})
    recorded = stack.get("ports")
    ports: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    values: dict[str, str] = {}
    temporal, ui = _port(ports.get("temporal")), _port(ports.get("ui"))  # a garbled record tells nothing
    if temporal:
        values["temporal_address"] = f"127.0.0.1:{temporal}"
    if ui:
        values["ui_url"] = f"http://127.0.0.1:{ui}"
    http = _recorded_port(_temporal_extra(stack).get("http"))  # only a Temporal started with its HTTP port has it
    if temporal and http:
        values["temporal_http_address"] = f"127.0.0.1:{http}"
    written = (
        ("policy_file", "policy.yaml"),
        ("codec_keys_file", STACK_CODEC_KEYS),
        ("codec_token_file", STACK_CODEC_TOKEN),
    )
    for key, name in written:
        if (state_dir / name).exists():
            values[key] = str(state_dir / name)
    return Layer("stack", values, str(record))


def _temporal_extra(stack: dict[str, Any]) -> dict[str, Any]:
    pieces = stack.get("pieces")
    temporal = pieces.get("temporal") if isinstance(pieces, dict) else None
    extra = temporal.get("extra") if isinstance(temporal, dict) else None
    return extra if isinstance(extra, dict) else {}


def _recorded_port(address: Any) -> int | None:
    """The port of a recorded "127.0.0.1:PORT"."""
    port = address.rpartition(":")[2] if isinstance(address, str) else ""
    return _port(int(port)) if port.isdigit() and len(port) <= 5 else None


def _port(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535 else None


# ---- merging: the first layer (highest first) that holds a key gives its value ----


def _merge(layers: list[Layer]) -> dict[str, str]:
    """Every layer holds strings of known keys only (files are checked key by key as they are read,
    the other layers are built from the key table), and the defaults hold every key: no model is
    needed to merge them, and none is built (a command's startup pays for none)."""
    return {key: next(str(layer.values[key]) for layer in layers if key in layer.values) for key in KEYS}


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
