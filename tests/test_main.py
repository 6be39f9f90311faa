from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import esg
import esg.main
from esg import _compiled
from esg._types import Receive, Scope, Send
from esg.config import Config
from esg.logging import LOGGING_CONFIG
from esg.main import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("isolated_esg_loggers")

SEED_OPTIONS = """
--host --port --uds --fd --reload --reload-dir --reload-include --reload-exclude --reload-delay
--workers --loop --ws --ws-max-size --ws-ping-interval --ws-ping-timeout --lifespan --interface
--env-file --log-config --log-level --access-log --no-access-log --use-colors --no-use-colors
--proxy-headers --no-proxy-headers --server-header --no-server-header --date-header
--no-date-header --forwarded-allow-ips --root-path --limit-concurrency --backlog
--limit-max-requests --timeout-keep-alive --ssl-keyfile --ssl-certfile --ssl-keyfile-password
--ssl-version --ssl-cert-reqs --ssl-ca-certs --ssl-ciphers --header --version --app-dir
--factory --help
""".split()  # noqa: SIM905 (a word list reads better than 60 quoted strings)
EXTRA_OPTIONS = """
--timeout-graceful-shutdown --timeout-header --timeout-body --limit-request-line
--limit-request-fields --limit-request-field-size --limit-request-body --ws-max-queue
--ws-per-message-deflate --no-ws-per-message-deflate --timeout-worker-healthcheck
--limit-max-requests-jitter --uds-mode --access-log-format --log-format --metrics --no-metrics
--metrics-host --metrics-port --http2 --no-http2 --http2-max-concurrent-streams
--http2-initial-stream-window-size --http2-initial-connection-window-size --http2-max-frame-size
--http2-max-header-list-size --http2-keep-alive-interval
""".split()  # noqa: SIM905
# uvicorn's names, accepted but left out of --help (see esg/main.py).
COMPAT_OPTIONS = ["--http", "--h11-max-incomplete-event-size"]

DEFAULT_KWARGS: dict[str, Any] = {
    "app": "example:app",
    "host": "127.0.0.1",
    "port": 8000,
    "uds": None,
    "uds_mode": 0o666,
    "fd": None,
    "reload": False,
    "reload_dirs": None,
    "reload_includes": None,
    "reload_excludes": None,
    "reload_delay": 0.25,
    "workers": None,
    "timeout_worker_healthcheck": 5.0,
    "loop": "auto",
    "ws": "auto",
    "ws_max_size": 16777216,
    "ws_max_queue": 32,
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "ws_per_message_deflate": True,
    "lifespan": "auto",
    "interface": "auto",
    "env_file": None,
    "log_level": None,
    "access_log": True,
    "access_log_format": None,
    "log_format": "text",
    "use_colors": None,
    "proxy_headers": True,
    "server_header": True,
    "date_header": True,
    "forwarded_allow_ips": None,
    "root_path": "",
    "limit_concurrency": None,
    "backlog": 2048,
    "limit_max_requests": None,
    "limit_max_requests_jitter": 0,
    "timeout_keep_alive": 5,
    "timeout_graceful_shutdown": None,
    "timeout_header": 30.0,
    "timeout_body": 60.0,
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
    "limit_request_body": None,
    "http2": True,
    "http2_max_concurrent_streams": 100,
    "http2_initial_stream_window_size": 1048576,
    "http2_initial_connection_window_size": 16777216,
    "http2_max_frame_size": 16384,
    "http2_max_header_list_size": None,
    "http2_keep_alive_interval": None,
    "ssl_keyfile": None,
    "ssl_certfile": None,
    "ssl_keyfile_password": None,
    "ssl_version": 17,
    "ssl_cert_reqs": 0,
    "ssl_ca_certs": None,
    "ssl_ciphers": "TLSv1",
    "headers": None,
    "app_dir": ".",
    "factory": False,
    "metrics": False,
    "metrics_host": "127.0.0.1",
    "metrics_port": 9090,
    "http": "auto",
    "h11_max_incomplete_event_size": None,
}


@pytest.fixture(autouse=True)
def no_esg_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ESG_") and name != "ESG_NO_EXTENSIONS":
            monkeypatch.delenv(name)


@pytest.fixture
def captured_run(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(esg.main, "run", lambda **kwargs: calls.append(kwargs))
    return calls


def invoke(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, args, env=env, prog_name="esg")


async def asgi3_app(scope: Scope, receive: Receive, send: Send) -> None:
    pass


# -- parsing -------------------------------------------------------------------------------


def test_defaults_are_valid_config_kwargs(captured_run: list[dict[str, Any]]) -> None:
    result = invoke(["example:app"])
    assert result.exit_code == 0, result.output
    [kwargs] = captured_run
    assert kwargs == DEFAULT_KWARGS
    Config(**kwargs)  # every name is a Config keyword


EVERY_OPTION: list[tuple[list[str], str, Any]] = [
    (["--host", "0.0.0.0"], "host", "0.0.0.0"),
    (["--port", "9001"], "port", 9001),
    (["--uds", "/tmp/x.sock"], "uds", "/tmp/x.sock"),
    (["--fd", "3"], "fd", 3),
    (["--reload"], "reload", True),
    (["--reload-dir", ".", "--reload-dir", "esg"], "reload_dirs", [".", "esg"]),
    (["--reload-include", "*.html"], "reload_includes", ["*.html"]),
    (["--reload-exclude", "*.tmp"], "reload_excludes", ["*.tmp"]),
    (["--reload-delay", "1.5"], "reload_delay", 1.5),
    (["--workers", "4"], "workers", 4),
    (["--loop", "asyncio"], "loop", "asyncio"),
    (["--ws", "wsproto"], "ws", "wsproto"),
    (["--ws-max-size", "1024"], "ws_max_size", 1024),
    (["--ws-max-queue", "8"], "ws_max_queue", 8),
    (["--ws-ping-interval", "5"], "ws_ping_interval", 5.0),
    (["--ws-ping-timeout", "6.5"], "ws_ping_timeout", 6.5),
    (["--no-ws-per-message-deflate"], "ws_per_message_deflate", False),
    (["--lifespan", "off"], "lifespan", "off"),
    (["--interface", "wsgi"], "interface", "wsgi"),
    (["--log-level", "trace"], "log_level", "trace"),
    (["--no-access-log"], "access_log", False),
    (["--access-log-format", "{status} {req[host]}"], "access_log_format", "{status} {req[host]}"),
    (["--log-format", "json"], "log_format", "json"),
    (["--use-colors"], "use_colors", True),
    (["--no-use-colors"], "use_colors", False),
    (["--no-proxy-headers"], "proxy_headers", False),
    (["--no-server-header"], "server_header", False),
    (["--no-date-header"], "date_header", False),
    (["--forwarded-allow-ips", "*"], "forwarded_allow_ips", "*"),
    (["--root-path", "/api"], "root_path", "/api"),
    (["--limit-concurrency", "10"], "limit_concurrency", 10),
    (["--backlog", "16"], "backlog", 16),
    (["--limit-max-requests", "1000"], "limit_max_requests", 1000),
    (["--limit-max-requests-jitter", "10"], "limit_max_requests_jitter", 10),
    (["--timeout-worker-healthcheck", "2.5"], "timeout_worker_healthcheck", 2.5),
    (["--uds-mode", "0o660"], "uds_mode", 0o660),
    (["--uds-mode", "600"], "uds_mode", 0o600),
    (["--timeout-keep-alive", "7"], "timeout_keep_alive", 7),
    (["--timeout-graceful-shutdown", "9"], "timeout_graceful_shutdown", 9),
    (["--timeout-header", "2.5"], "timeout_header", 2.5),
    (["--timeout-body", "3"], "timeout_body", 3.0),
    (["--limit-request-line", "4096"], "limit_request_line", 4096),
    (["--limit-request-fields", "50"], "limit_request_fields", 50),
    (["--limit-request-field-size", "1000"], "limit_request_field_size", 1000),
    (["--limit-request-body", "1048576"], "limit_request_body", 1048576),
    (["--no-http2"], "http2", False),
    (["--http2-max-concurrent-streams", "10"], "http2_max_concurrent_streams", 10),
    (["--http2-initial-stream-window-size", "65535"], "http2_initial_stream_window_size", 65535),
    (
        ["--http2-initial-connection-window-size", "99999"],
        "http2_initial_connection_window_size",
        99999,
    ),
    (["--http2-max-frame-size", "32768"], "http2_max_frame_size", 32768),
    (["--http2-max-header-list-size", "8192"], "http2_max_header_list_size", 8192),
    (["--http2-keep-alive-interval", "30"], "http2_keep_alive_interval", 30.0),
    (["--ssl-keyfile", "k.pem"], "ssl_keyfile", "k.pem"),
    (["--ssl-certfile", "c.pem"], "ssl_certfile", "c.pem"),
    (["--ssl-keyfile-password", "pw"], "ssl_keyfile_password", "pw"),
    (["--ssl-version", "2"], "ssl_version", 2),
    (["--ssl-cert-reqs", "2"], "ssl_cert_reqs", 2),
    (["--ssl-ca-certs", "ca.pem"], "ssl_ca_certs", "ca.pem"),
    (["--ssl-ciphers", "ECDHE+AESGCM"], "ssl_ciphers", "ECDHE+AESGCM"),
    (
        ["--header", "X-A: 1", "--header", "X-B:two:parts"],
        "headers",
        [("X-A", "1"), ("X-B", "two:parts")],
    ),
    (["--app-dir", "src"], "app_dir", "src"),
    (["--factory"], "factory", True),
    (["--metrics"], "metrics", True),
    (["--metrics-host", "0.0.0.0"], "metrics_host", "0.0.0.0"),
    (["--metrics-port", "9100"], "metrics_port", 9100),
    (["--http", "httptools"], "http", "httptools"),
    (["--h11-max-incomplete-event-size", "16384"], "h11_max_incomplete_event_size", 16384),
]


@pytest.mark.parametrize(("args", "name", "expected"), EVERY_OPTION, ids=lambda v: str(v))
def test_every_option_reaches_config(
    captured_run: list[dict[str, Any]], args: list[str], name: str, expected: Any
) -> None:
    result = invoke([*args, "example:app"])
    assert result.exit_code == 0, result.output
    [kwargs] = captured_run
    assert kwargs[name] == expected
    changed = {key for key, value in kwargs.items() if DEFAULT_KWARGS.get(key) != value}
    assert changed == {name}


def test_file_options_reach_config(captured_run: list[dict[str, Any]], tmp_path: Path) -> None:
    env_file, log_config = tmp_path / ".env", tmp_path / "log.json"
    env_file.write_text("")
    log_config.write_text("{}")
    result = invoke(["--env-file", str(env_file), "--log-config", str(log_config), "example:app"])
    assert result.exit_code == 0, result.output
    [kwargs] = captured_run
    assert (kwargs["env_file"], kwargs["log_config"]) == (str(env_file), str(log_config))


def test_missing_log_config_file_is_a_usage_error(captured_run: list[dict[str, Any]]) -> None:
    result = invoke(["--log-config", "/nonexistent/log.yaml", "example:app"])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert captured_run == []


def test_every_option_is_tested() -> None:
    tested = {args[0] for args, _, _ in EVERY_OPTION}
    tested |= {"--env-file", "--log-config", "--help", "--version"}
    tested |= {f"--no-{name[2:]}" for name in tested} | {f"--{name[5:]}" for name in tested}
    assert set(SEED_OPTIONS + EXTRA_OPTIONS + COMPAT_OPTIONS) <= tested


def test_help_lists_every_option() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    assert result.output.startswith("Usage: esg [OPTIONS] APP")
    for option in SEED_OPTIONS + EXTRA_OPTIONS:
        assert option in result.output
    assert "ESG_PORT=9000" in " ".join(result.output.split())  # the env var epilog


def test_uvicorn_compat_options_are_hidden_but_named_in_the_epilog() -> None:
    output = " ".join(invoke(["--help"]).output.split())
    for option in COMPAT_OPTIONS:
        assert f"{option} " not in output.split("Every option can")[0]
    assert "uvicorn's --http and --h11-max-incomplete-event-size are accepted too" in output


@pytest.mark.parametrize("choice", ["auto", "h11", "httptools"])
def test_http_choices_of_uvicorn_are_accepted(
    captured_run: list[dict[str, Any]], choice: str
) -> None:
    result = invoke(["--http", choice, "example:app"])
    assert result.exit_code == 0, result.output
    assert captured_run[0]["http"] == choice


def test_uvicorn_compat_options_from_environment(captured_run: list[dict[str, Any]]) -> None:
    env = {"ESG_HTTP": "h11", "ESG_H11_MAX_INCOMPLETE_EVENT_SIZE": "2048"}
    result = invoke(["example:app"], env=env)
    assert result.exit_code == 0, result.output
    [kwargs] = captured_run
    assert (kwargs["http"], kwargs["h11_max_incomplete_event_size"]) == ("h11", 2048)


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    kind = "compiled" if _compiled.extensions_active() else "pure Python"
    assert result.output.startswith(f"esg {esg.__version__} ({kind}")
    assert result.output.endswith(
        f") on {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()}\n"
    )


def test_missing_app_argument() -> None:
    result = invoke([])
    assert result.exit_code == 2
    assert "Missing argument 'APP'" in result.output


# -- environment variables -----------------------------------------------------------------


def test_options_from_environment(captured_run: list[dict[str, Any]]) -> None:
    env = {
        "ESG_APP": "fromenv:app",
        "ESG_PORT": "9000",
        "ESG_ACCESS_LOG": "false",
        "ESG_LIMIT_REQUEST_BODY": "10",
        "ESG_RELOAD_EXCLUDE": "*.tmp *.log",
    }
    result = invoke([], env=env)
    assert result.exit_code == 0, result.output
    [kwargs] = captured_run
    assert kwargs["app"] == "fromenv:app"
    assert (kwargs["port"], kwargs["access_log"], kwargs["limit_request_body"]) == (9000, False, 10)
    assert kwargs["reload_excludes"] == ["*.tmp", "*.log"]


def test_header_variable_keeps_spaces_in_values(captured_run: list[dict[str, Any]]) -> None:
    env = {"ESG_HEADER": "X-A: some value\nX-B:two"}
    result = invoke(["example:app"], env=env)
    assert result.exit_code == 0, result.output
    assert captured_run[0]["headers"] == [("X-A", "some value"), ("X-B", "two")]


def test_command_line_wins_over_environment(captured_run: list[dict[str, Any]]) -> None:
    result = invoke(["--port", "7000", "example:app"], env={"ESG_PORT": "9000"})
    assert result.exit_code == 0, result.output
    assert captured_run[0]["port"] == 7000


def test_esg_version_variable_does_not_print_the_version(
    captured_run: list[dict[str, Any]],
) -> None:
    result = invoke(["example:app"], env={"ESG_VERSION": "1"})
    assert result.exit_code == 0
    assert "Running esg" not in result.output
    assert len(captured_run) == 1


# -- usage errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "problem"),
    [("X-No-Colon", "write it as Name:Value"), ("Bad Name: v", "not a valid header name")],
)
def test_bad_header_is_one_line_usage_error(
    captured_run: list[dict[str, Any]], header: str, problem: str
) -> None:
    result = invoke(["--header", header, "example:app"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: Invalid value for '--header'")
    assert problem in result.output
    assert captured_run == []


def test_reload_with_workers_is_one_line_usage_error(captured_run: list[dict[str, Any]]) -> None:
    result = invoke(["--reload", "--workers", "2", "example:app"])
    assert result.exit_code == 2
    assert result.output == "Error: --reload and --workers can't be combined; choose one.\n"
    assert captured_run == []


# -- run() ---------------------------------------------------------------------------------


class FakeServer:
    instances: list[FakeServer] = []
    fail_startup = False

    def __init__(self, config: Config) -> None:
        self.config = config
        self.startup_failed = False
        FakeServer.instances.append(self)

    def run(self, sockets: Any = None) -> None:
        self.startup_failed = self.fail_startup


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> type[FakeServer]:
    import esg.server

    monkeypatch.setattr(esg.server, "Server", FakeServer)
    monkeypatch.setattr(FakeServer, "instances", [])
    monkeypatch.setattr("asyncio.set_event_loop_policy", lambda policy: None)
    return FakeServer


def test_run_serves_a_loaded_config(fake_server: type[FakeServer]) -> None:
    esg.run(asgi3_app, port=0, log_config=None)
    [server] = fake_server.instances
    assert server.config.loaded and server.config.port == 0


def test_run_exits_3_when_startup_failed(
    fake_server: type[FakeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeServer, "fail_startup", True)
    with pytest.raises(SystemExit) as info:
        esg.run(asgi3_app, port=0, log_config=None)
    assert info.value.code == 3


class FakeSupervisor:
    """Stands in for Multiprocess / Reloader: records what it was given, exits with ``code``."""

    created: list[tuple[str, Any, list[socket.socket]]] = []
    code = 0

    def __init__(self, config: Any, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets

    def run(self) -> int:
        kind = "reload" if self.config.reload else "workers"
        FakeSupervisor.created.append((kind, self.config, self.sockets))
        return self.code


@pytest.mark.parametrize(
    ("settings", "kind"), [({"reload": True}, "reload"), ({"workers": 3}, "workers")]
)
def test_supervised_modes_get_a_bound_socket_and_an_unloaded_config(
    fake_server: type[FakeServer],
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, Any],
    kind: str,
) -> None:
    import esg.supervisors.multiprocess
    import esg.supervisors.reload

    monkeypatch.setattr(FakeSupervisor, "created", [])
    monkeypatch.setattr(esg.supervisors.multiprocess, "Multiprocess", FakeSupervisor)
    monkeypatch.setattr(esg.supervisors.reload, "Reloader", FakeSupervisor)
    esg.run("esg_main_app:app", port=0, log_config=None, **settings)
    [(created_kind, config, [sock])] = FakeSupervisor.created
    assert created_kind == kind
    assert not config.loaded  # each worker imports the app itself
    assert sock.fileno() == -1  # closed again once the supervisor is done
    assert fake_server.instances == []


def test_a_supervisor_exit_code_becomes_the_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    import esg.supervisors.multiprocess

    monkeypatch.setattr(FakeSupervisor, "created", [])
    monkeypatch.setattr(FakeSupervisor, "code", 3)
    monkeypatch.setattr(esg.supervisors.multiprocess, "Multiprocess", FakeSupervisor)
    with pytest.raises(SystemExit) as info:
        esg.run("esg_main_app:app", port=0, log_config=None, workers=2)
    assert info.value.code == 3


def test_supervised_modes_need_an_import_string(
    fake_server: type[FakeServer], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SystemExit) as info:
        esg.run(asgi3_app, log_config=None, workers=2)
    assert info.value.code == 1
    assert "import string" in caplog.records[-1].getMessage()
    assert fake_server.instances == []


def test_run_refuses_reload_with_workers(fake_server: type[FakeServer]) -> None:
    with pytest.raises(SystemExit):
        esg.run("mod:app", log_config=None, reload=True, workers=2)
    assert fake_server.instances == []


def test_package_exports() -> None:
    import esg.server

    assert esg.Config is Config
    assert esg.run is esg.main.run
    assert esg.Server is esg.server.Server
    assert esg.__version__ == "0.3.0"
    assert LOGGING_CONFIG is esg.config.LOGGING_CONFIG
    with pytest.raises(AttributeError):
        esg.no_such_thing  # noqa: B018


# -- the real command in a subprocess ------------------------------------------------------


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(
        textwrap.dedent(
            """\
            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"hello"})
            """
        )
    )
    (tmp_path / "needs_dep.py").write_text("import esg_missing_dependency_xyz\napp = None\n")
    return tmp_path


def run_esg(args: list[str], cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "esg", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["esg_no_such_module_xyz:app"], 'Could not import module "esg_no_such_module_xyz"'),
        (["needs_dep:app"], "No module named 'esg_missing_dependency_xyz'"),
        (["hello:nope"], 'Attribute "nope" not found in module "hello".'),
        (["hello"], 'Import string "hello" must be in format "<module>:<attribute>".'),
        (["--ssl-certfile", "absent.pem", "hello:app"], 'file (--ssl-certfile) "absent.pem"'),
    ],
)
def test_user_errors_are_one_line(app_dir: Path, args: list[str], expected: str) -> None:
    result = run_esg(args, app_dir)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("ERROR:")
    assert expected in result.stderr


def test_import_error_traceback_at_debug_level(app_dir: Path) -> None:
    result = run_esg(["--log-level", "debug", "esg_no_such_module_xyz:app"], app_dir)
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_port_in_use_exits_1_with_a_clear_line(app_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_esg(["--port", str(port), "--lifespan", "off", "hello:app"], app_dir)
    assert result.returncode == 1
    assert f"Could not bind to 127.0.0.1:{port}: address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_serves_requests_and_logs_access_lines(app_dir: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "ESG_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "esg", "--header", "X-Test: yes", "hello:app"],
        cwd=app_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = _get_when_ready(f"http://127.0.0.1:{port}/path?q=1", process)
        assert response.status_code == 200
        assert response.text == "hello"
        assert response.headers["x-test"] == "yes"
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert 'GET /path?q=1 HTTP/1.1" 200 OK' in stdout
    assert "Traceback" not in stderr


def _get_when_ready(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url)
        except httpx.ConnectError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
