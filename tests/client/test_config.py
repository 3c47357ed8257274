"""Layered configuration: defaults → stack record → repository file → user file → environment → flags."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from client.config import KEYS, load_config
from client.main import run
from contracts.failures import OpsctlError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean slate: no OPSCTL_* variable, no user file unless a test writes one, cwd in a fresh tree."""
    for key in [*KEYS, "config"]:
        monkeypatch.delenv(f"OPSCTL_{key.upper()}", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "repo" / "deep" / "folder"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def show(*argv: str) -> tuple[int, dict[str, object], str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["config", "show", "-o", "json", *argv], stdout=stdout, stderr=stderr)
    return code, json.loads(stdout.getvalue()), stderr.getvalue()


def test_defaults_say_they_are_defaults(home: Path) -> None:
    config = load_config()
    assert ("127.0.0.1:7233", "default") == (config.temporal_address, config.origins["temporal_address"])
    assert ("default", "opsctl") == (config.namespace, config.task_queue)
    assert Path(".opsctl") == config.state_dir
    assert config.origins["state_dir"].startswith("default (no .opsctl/ with a stack")


def test_each_layer_overrides_the_one_before(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repository = write(
        home / "repo" / ".opsctl.toml", 'namespace = "repo"\ntask_queue = "repo-q"\nui_url = "http://r"\n'
    )
    user = write(home / "home" / ".config" / "opsctl" / "config.toml", 'namespace = "user"\ntask_queue = "user-q"\n')
    monkeypatch.setenv("OPSCTL_NAMESPACE", "env")

    config = load_config(namespace=None)
    assert ("http://r", f"repository {repository}") == (config.ui_url, config.origins["ui_url"])
    assert ("user-q", f"user {user}") == (config.task_queue, config.origins["task_queue"])
    assert ("env", "environment OPSCTL_NAMESPACE") == (config.namespace, config.origins["namespace"])

    flagged = load_config(namespace="flag")
    assert ("flag", "flag --namespace") == (flagged.namespace, flagged.origins["namespace"])
    assert {"repository": str(repository), "user": str(user)} == dict(flagged.files)


def test_opsctl_config_replaces_the_user_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home / "home" / ".config" / "opsctl" / "config.toml", 'task_queue = "home"\n')
    named = write(home / "elsewhere.toml", 'task_queue = "named"\n')
    monkeypatch.setenv("OPSCTL_CONFIG", str(named))
    assert "named" == load_config().task_queue
    monkeypatch.setenv("OPSCTL_CONFIG", "")  # empty: no user file at all
    assert ("opsctl", "default") == (load_config().task_queue, load_config().origins["task_queue"])


def test_relative_paths_in_a_file_are_next_to_that_file(home: Path) -> None:
    write(home / "repo" / ".opsctl.toml", 'state_dir = "state"\npolicy_file = "ops/policy.yaml"\n')
    config = load_config()
    assert home / "repo" / "state" == config.state_dir
    assert str(home / "repo" / "ops" / "policy.yaml") == config.policy_file


def test_the_running_stack_is_found_upward_and_tells_its_ports(home: Path) -> None:
    write(home / "repo" / ".opsctl" / "stack.json", json.dumps({"ports": {"temporal": 7999, "ui": 8999}}))
    write(home / "repo" / ".opsctl" / "policy.yaml", "environments: {}\n")
    config = load_config()
    assert home / "repo" / ".opsctl" == config.state_dir
    assert config.origins["state_dir"].startswith("found upward from")
    assert "127.0.0.1:7999" == config.temporal_address
    assert f"stack {home / 'repo' / '.opsctl' / 'stack.json'}" == config.origins["temporal_address"]
    assert str(home / "repo" / ".opsctl" / "policy.yaml") == config.policy_file
    assert "127.0.0.1:1" == load_config(address="127.0.0.1:1").temporal_address  # a flag still wins


def test_opsctl_variables_that_are_not_keys_are_not_configuration(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_DEBUG", "1")
    monkeypatch.setenv("OPSCTL_USER", "")  # empty: as if unset
    assert "default" == load_config().origins["user"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            'temporal_adress = "x"\n',
            "unknown key 'temporal_adress' in config file {path} (did you mean 'temporal_address'?)",
        ),
        ("namespace = 3\n", "namespace in config file {path} must be a string, not an integer"),
        ("[temporal]\naddress = 'x'\n", "unknown key 'temporal' in config file {path}"),
        ("namespace = [\n", "config file {path} is unreadable"),
    ],
    ids=["unknown key", "wrong type", "table", "syntax"],
)
def test_a_bad_file_is_exit_2_naming_key_and_file(home: Path, content: str, message: str) -> None:
    path = write(home / "repo" / ".opsctl.toml", content)
    with pytest.raises(OpsctlError) as raised:
        load_config()
    assert message.format(path=path) in raised.value.message
    code, data, stderr = show()
    assert 2 == code
    assert message.format(path=path) in str(data["error"])
    assert "Traceback" not in stderr


def test_opsctl_config_naming_a_missing_file_is_exit_2(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_CONFIG", str(home / "missing.toml"))
    code, data, _ = show()
    assert 2 == code
    assert f"$OPSCTL_CONFIG names {home / 'missing.toml'}, which does not exist" == data["error"]["message"]  # type: ignore[index]


def test_config_show_lists_every_key_with_its_layer(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_TASK_QUEUE", "q")
    code, data, _ = show("--address", "10.0.0.1:7233", "--as", "bob")
    assert 0 == code
    config = data["config"]
    assert isinstance(config, dict)
    assert list(KEYS) == list(config)
    assert {"value": "10.0.0.1:7233", "from": "flag --address"} == config["temporal_address"]
    assert {"value": "bob", "from": "flag --as"} == config["user"]
    assert {"value": "q", "from": "environment OPSCTL_TASK_QUEUE"} == config["task_queue"]
    assert {"repository": None, "user": None} == data["files"]


def test_a_stack_folder_writable_by_everyone_is_not_believed(home: Path) -> None:
    shared = home / "repo" / ".opsctl"
    write(shared / "stack.json", json.dumps({"ports": {"temporal": 7999}}))
    write(shared / "codec-keys", "k1:AAAA\n")
    shared.chmod(0o777)
    config = load_config()
    assert "127.0.0.1:7233" == config.temporal_address  # not the shared folder's
    assert "" == config.codec_keys_file
    assert f"{shared} (not yours, or writable by everyone)" in config.files["ignored"]


def test_a_repository_file_writable_by_everyone_is_not_read(home: Path) -> None:
    path = write(home / "repo" / ".opsctl.toml", 'temporal_address = "evil:7233"\n')
    path.chmod(0o666)
    config = load_config()
    assert "127.0.0.1:7233" == config.temporal_address
    assert str(path) in config.files["ignored"]
    _, data, _ = show()
    assert str(path) in str(data["files"]["ignored"])  # type: ignore[index]


@pytest.mark.parametrize("kind", ["fifo", "huge", "folder"])
def test_a_config_that_is_no_regular_small_file_is_exit_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    import os

    path = home / "odd.toml"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would wait forever
    elif kind == "huge":
        path.write_bytes(b"# " + b"x" * (2 * 1024 * 1024))
    else:
        path.mkdir()
    monkeypatch.setenv("OPSCTL_CONFIG", str(path))
    code, data, _ = show()
    assert 2 == code
    assert f"config file {path} is unreadable" in data["error"]["message"]  # type: ignore[index]


def test_a_home_relative_path_in_a_file_is_expanded(home: Path) -> None:
    write(home / "repo" / ".opsctl.toml", 'policy_file = "~/policy.yaml"\n')
    assert str(home / "home" / "policy.yaml") == load_config().policy_file


def test_an_empty_optional_variable_turns_the_stack_s_file_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home / "repo" / ".opsctl" / "stack.json", json.dumps({"ports": {"temporal": 7999}}))
    write(home / "repo" / ".opsctl" / "codec-keys", "k1:AAAA\n")
    assert load_config().codec_keys_file.endswith("codec-keys")
    monkeypatch.setenv("OPSCTL_CODEC_KEYS_FILE", "")
    assert ("", "environment OPSCTL_CODEC_KEYS_FILE") == (
        load_config().codec_keys_file,
        load_config().origins["codec_keys_file"],
    )


@pytest.mark.parametrize("address", [":::", ":7233", "127.0.0.1:99999", "a b:1", "host"])
def test_an_address_that_is_not_host_port_is_exit_2(home: Path, address: str) -> None:
    code, data, stderr = show("--address", address)
    assert 2 == code
    assert f"temporal_address {address!r} from flag --address is not HOST:PORT" == data["error"]["message"]  # type: ignore[index]
    assert "Traceback" not in stderr


# ---- tracing keys ----


def test_trace_headers_are_shown_redacted_in_text_and_json(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_TRACE_EXPORTER", "otlp-http")
    monkeypatch.setenv("OPSCTL_TRACE_HEADERS", "authorization=Bearer%20sup3r-secret,x-team=ops")
    code, data, _ = show()
    stdout, stderr = io.StringIO(), io.StringIO()
    text_code = run(["config", "show"], stdout=stdout, stderr=stderr)

    assert (0, 0) == (code, text_code)
    assert {
        "value": "authorization=<redacted>,x-team=<redacted>",
        "from": "environment OPSCTL_TRACE_HEADERS",
    } == data["config"]["trace_headers"]  # type: ignore[index]
    assert "authorization=<redacted>,x-team=<redacted>" in stdout.getvalue()
    assert "sup3r-secret" not in json.dumps(data) + stdout.getvalue() + stderr.getvalue()


def test_the_repository_file_can_turn_tracing_on(home: Path) -> None:
    write(home / "repo" / ".opsctl.toml", 'trace_exporter = "otlp-grpc"\ntrace_endpoint = "collector:4317"\n')
    config = load_config()
    assert ("otlp-grpc", "collector:4317") == (config.trace_exporter, config.trace_endpoint)
    assert config.origins["trace_exporter"].startswith("repository ")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"OPSCTL_TRACE_EXPORTER": "zipkin"},
            "trace_exporter from environment OPSCTL_TRACE_EXPORTER: unknown trace exporter 'zipkin'",
        ),
        (
            {"OPSCTL_TRACE_EXPORTER": "otlp-http", "OPSCTL_TRACE_ENDPOINT": "collector:4318"},
            "trace_endpoint from environment OPSCTL_TRACE_ENDPOINT: 'collector:4318' is not an otlp-http endpoint",
        ),
        (
            {"OPSCTL_TRACE_EXPORTER": "otlp-http", "OPSCTL_TRACE_HEADERS": "sup3r-secret"},
            "trace_headers from environment OPSCTL_TRACE_HEADERS: header 1 is not key=value",
        ),
    ],
)
def test_a_tracing_configuration_that_cannot_work_is_exit_2_naming_the_key(
    home: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    code, data, _ = show()
    assert 2 == code
    assert message == data["error"]["message"]  # type: ignore[index]
    assert "sup3r-secret" not in json.dumps(data)


def test_a_password_in_the_trace_endpoint_is_shown_redacted(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_TRACE_EXPORTER", "otlp-http")
    monkeypatch.setenv("OPSCTL_TRACE_ENDPOINT", "https://ops:t0ken@collector.example:4318")
    code, data, _ = show()
    assert 0 == code
    assert "https://ops:<redacted>@collector.example:4318" == data["config"]["trace_endpoint"]["value"]  # type: ignore[index]


def stack_with_http(home: Path, http: object = "127.0.0.1:7999") -> Path:
    """A stack record as `opsctl dev up` writes it: the HTTP API is recorded with the Temporal piece."""
    pieces = {"temporal": {"name": "temporal", "address": "127.0.0.1:7998", "extra": {"http": http}}}
    return write(home / "repo" / ".opsctl" / "stack.json", json.dumps({"ports": {"temporal": 7998}, "pieces": pieces}))


def test_the_stack_tells_its_http_api_and_a_stack_from_before_tells_none(home: Path) -> None:
    record = stack_with_http(home)
    config = load_config()
    assert ("127.0.0.1:7999", f"stack {record}") == (
        config.temporal_http_address,
        config.origins["temporal_http_address"],
    )
    stack_with_http(home, http=None)  # a Temporal an older opsctl started, without an HTTP port
    assert ("", "default") == (load_config().temporal_http_address, load_config().origins["temporal_http_address"])


def test_an_http_address_is_only_used_with_the_grpc_address_of_its_layer(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--address elsewhere` must not read the local stack's HTTP API: that is another server."""
    stack_with_http(home)
    moved = load_config(address="10.0.0.1:7233")
    assert "" == moved.temporal_http_address
    assert moved.origins["temporal_http_address"].startswith("none: temporal_address from flag --address is above")
    monkeypatch.setenv("OPSCTL_TEMPORAL_HTTP_ADDRESS", "10.0.0.1:7243")
    assert "" == load_config(address="10.0.0.1:7233").temporal_http_address  # the flag is above the variable
    monkeypatch.setenv("OPSCTL_TEMPORAL_ADDRESS", "10.0.0.1:7233")
    assert "10.0.0.1:7243" == load_config().temporal_http_address  # both from one layer: one server
    monkeypatch.setenv("OPSCTL_TEMPORAL_HTTP_ADDRESS", "")  # empty: none, whatever the stack says
    assert ("", "environment OPSCTL_TEMPORAL_HTTP_ADDRESS") == (
        load_config().temporal_http_address,
        load_config().origins["temporal_http_address"],
    )


@pytest.mark.parametrize("address", ["http://127.0.0.1:7243", "127.0.0.1", "a b:1", "host/x:7243", "h?x:1"])
def test_an_http_address_that_is_not_host_port_is_exit_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("OPSCTL_TEMPORAL_HTTP_ADDRESS", address)
    code, data, _ = show()
    assert 2 == code
    expected = f"temporal_http_address {address!r} from environment OPSCTL_TEMPORAL_HTTP_ADDRESS is not HOST:PORT"
    assert expected == data["error"]["message"]  # type: ignore[index]
