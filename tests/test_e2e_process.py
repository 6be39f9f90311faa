"""The esg process as a user runs it: options, signals, exit statuses and error messages."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from utils import (
    TESTS_DIR,
    ServerProcess,
    free_port,
    request_bytes,
    run_server,
    run_to_exit,
    wait_for,
)

pytestmark = pytest.mark.slow


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR")]


# -- shutdown ---------------------------------------------------------------------------------


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    marker, gate, started = tmp_path / "marker", tmp_path / "gate", tmp_path / "started"
    with run_server("apps.basic:app", env={"ESG_TEST_MARKER": str(marker)}) as server:
        with server.raw() as conn:
            conn.send(request_bytes("GET", f"/gated?gate={gate}&started={started}"))
            assert wait_for(started.exists)
            server.signal(signal.SIGTERM)
            assert wait_for(lambda: "Shutting down" in server.stderr())
            assert not marker.exists()  # lifespan shutdown waits for the request
            gate.touch()
            response = conn.read_response()
            closed = conn.is_closed()
        status = server.wait()
        stderr = server.stderr()
    assert (response.status, response.body) == (200, b"gate opened")
    assert closed
    assert status == 0, stderr
    assert marker.read_text() == "lifespan shutdown ran"
    assert "Traceback" not in stderr


def test_shutdown_still_cuts_a_client_stuck_mid_body() -> None:
    # Deadlines keep running during a graceful shutdown: a client that stops halfway through
    # its body can't keep the server alive past --timeout-body.
    options = ("--timeout-body", "1", "--log-level", "trace")
    with run_server("apps.basic:app", *options) as server, server.raw() as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabcde")
        # The app is running and waiting for the rest of the body (the trace log says so).
        assert wait_for(lambda: "Receive {'type': 'http.request'" in server.stderr())
        server.signal(signal.SIGTERM)
        status = server.wait(timeout=15)
    assert status == 0, server.stderr()


def test_response_during_shutdown_announces_close(tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    with run_server("apps.basic:app") as server, server.raw() as conn:
        conn.send(request_bytes("GET", f"/gated?gate={gate}&started={started}"))
        assert wait_for(started.exists)
        server.signal(signal.SIGTERM)
        assert wait_for(lambda: "Shutting down" in server.stderr())
        gate.touch()
        response = conn.read_response()
    assert response.status == 200
    assert (response.header("connection") or "").lower() == "close"


def test_new_connections_are_refused_after_sigterm(tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    with run_server("apps.basic:app") as server, server.raw() as conn:
        conn.send(request_bytes("GET", f"/gated?gate={gate}&started={started}"))
        assert wait_for(started.exists)
        server.signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                server.connect(timeout=1).close()
            except OSError:
                return True
            return False

        assert wait_for(refused)
        gate.touch()
        assert conn.read_response().status == 200
        assert server.wait() == 0


# -- signals handed back to a program that embeds esg ------------------------------------------


def run_embedded(mode: str, signum: int) -> tuple[int, list[str]]:
    """Serve ``tests/apps/signal_script.py`` in ``mode``, send ``signum`` once it answers a
    request; the exit status and the output lines."""
    port = free_port()
    command = [sys.executable, str(TESTS_DIR / "apps" / "signal_script.py"), str(port), mode]
    with run_server("", command=command, port=port) as server:
        assert httpx.get(f"{server.url}/", timeout=20).text == "embedded"
        server.signal(signum)
        status = server.wait()
        lines = server.stderr().splitlines()
    assert "Traceback" not in "\n".join(lines)
    return status, lines


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_programs_own_handlers_get_the_signal_back(signum: int) -> None:
    status, lines = run_embedded("handlers", signum)
    name = signal.Signals(signum).name
    handled = f"program handler: {name} (after the lifespan shutdown: True)"
    assert status == 0, lines
    assert handled in lines, lines
    # Re-delivered once, after the graceful shutdown (the lifespan shutdown already ran)...
    assert lines.count(handled) == 1
    finished = next(i for i, line in enumerate(lines) if "Finished server process" in line)
    assert finished < lines.index(handled) < lines.index("esg.run returned")
    # ... and the program's handlers are installed again.
    assert "program handlers restored: True" in lines


def test_default_sigint_handler_raises_keyboard_interrupt_out_of_server_run() -> None:
    status, lines = run_embedded("server", signal.SIGINT)
    assert status == 0, lines
    assert "KeyboardInterrupt out of Server.run" in lines, lines
    assert any("Finished server process" in line for line in lines)
    assert "default SIGINT handler back: True" in lines
    assert "default SIGTERM disposition back: True" in lines


def test_default_sigterm_disposition_lets_server_run_return() -> None:
    # SIG_DFL is not raised again: it would kill the process before its own cleanup ran.
    status, lines = run_embedded("server", signal.SIGTERM)
    assert status == 0, lines
    assert "Server.run returned" in lines, lines
    assert "default SIGINT handler back: True" in lines
    assert "default SIGTERM disposition back: True" in lines


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_cli_exits_0_on_sigint(loop: str) -> None:
    with run_server("apps.basic:app", "--loop", loop) as server:
        assert httpx.get(f"{server.url}/", timeout=20).status_code == 200
        server.signal(signal.SIGINT)
        status = server.wait()
        stderr = server.stderr()
    assert status == 0, stderr
    assert "Finished server process" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


# -- startup failures -------------------------------------------------------------------------


def test_lifespan_startup_failure_exits_3_with_the_apps_message() -> None:
    from apps.lifespan_fail import STARTUP_MESSAGE

    result = run_to_exit("apps.lifespan_fail:app", "--port", str(free_port()))
    assert result.returncode == 3
    assert STARTUP_MESSAGE in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_exits_1_with_one_error_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit("apps.basic:app", "--port", str(port))
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert str(port) in errors[0]
    assert "in use" in errors[0]
    assert "Traceback" not in result.stderr


def test_port_in_use_never_starts_the_app(tmp_path: Path) -> None:
    # esg binds before lifespan startup, so a taken port costs the app nothing: no startup
    # that would need a matching shutdown.
    marker = tmp_path / "marker"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_to_exit("apps.basic:app", "--port", port, env={"ESG_TEST_MARKER": str(marker)})
    assert result.returncode == 1
    assert "Waiting for application startup" not in result.stderr
    assert not marker.exists(), result.stderr


@pytest.mark.parametrize(
    ("app", "mentions"),
    [
        ("apps.broken_import:app", "esg_test_dependency_that_does_not_exist"),
        ("apps.basic:no_such_attribute", "no_such_attribute"),
        ("apps.no_such_module:app", "apps.no_such_module"),
    ],
)
def test_app_import_error_exits_1_with_a_short_message(app: str, mentions: str) -> None:
    result = run_to_exit(app, "--port", str(free_port()))
    assert result.returncode == 1
    assert mentions in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr


# -- options ----------------------------------------------------------------------------------

OPTIONS = (
    "--root-path",
    "/api",
    "--header",
    "X-Foo:bar",
    "--no-server-header",
    "--no-date-header",
    "--timeout-keep-alive",
    "1",
    "--forwarded-allow-ips",
    "10.0.0.1",
)


@pytest.fixture(scope="module")
def options_server() -> Iterator[ServerProcess]:
    with run_server("apps.basic:app", *OPTIONS) as process:
        yield process


@pytest.fixture(scope="module")
def default_server() -> Iterator[ServerProcess]:
    with run_server("apps.basic:app") as process:
        yield process


def test_root_path_is_in_scope(options_server: ServerProcess) -> None:
    scope = httpx.get(f"{options_server.url}/scope", timeout=20).json()
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope"


def test_extra_header_and_no_default_headers(options_server: ServerProcess) -> None:
    response = httpx.get(f"{options_server.url}/", timeout=20)
    assert response.headers["x-foo"] == "bar"
    assert "server" not in response.headers
    assert "date" not in response.headers
    error = httpx.get(f"{options_server.url}/error", timeout=20)
    assert error.status_code == 500
    assert error.headers["x-foo"] == "bar"
    assert "server" not in error.headers


def test_default_headers_are_present(default_server: ServerProcess) -> None:
    response = httpx.get(f"{default_server.url}/", timeout=20)
    assert response.headers["server"] == "esg"
    assert "date" in response.headers
    assert "x-foo" not in response.headers


def test_idle_keep_alive_connection_is_closed(options_server: ServerProcess) -> None:
    with options_server.raw() as conn:
        conn.send(request_bytes("GET", "/"))
        assert conn.read_response().status == 200
        # Well before the default 5 s: --timeout-keep-alive 1 was honoured.
        assert conn.is_closed(timeout=4.0)


FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def test_proxy_headers_from_trusted_loopback(default_server: ServerProcess) -> None:
    scope = httpx.get(f"{default_server.url}/scope", headers=FORWARDED, timeout=20).json()
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == "https"


def test_proxy_headers_ignored_from_untrusted_peer(options_server: ServerProcess) -> None:
    scope = httpx.get(f"{options_server.url}/scope", headers=FORWARDED, timeout=20).json()
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"


def test_limit_concurrency_answers_503(tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    with run_server("apps.basic:app", "--limit-concurrency", "1") as server:
        with server.raw() as busy:
            busy.send(request_bytes("GET", f"/gated?gate={gate}&started={started}"))
            assert wait_for(started.exists)
            refused = httpx.get(f"{server.url}/", timeout=20)
            gate.touch()
            finished = busy.read_response()
        afterwards = httpx.get(f"{server.url}/", timeout=20)
    assert refused.status_code == 503
    assert finished.status == 200
    assert afterwards.status_code == 200


def test_unix_socket_left_behind_is_reused(tmp_path: Path) -> None:
    path = str(tmp_path / "esg.sock")
    for _ in range(2):
        with run_server("apps.basic:app", uds=path) as server, server.raw() as conn:
            conn.send(request_bytes("GET", "/"))
            assert conn.read_response().status == 200


def test_limit_max_requests_stops_the_process() -> None:
    with run_server("apps.basic:app", "--limit-max-requests", "3") as server:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            statuses = [client.get("/").status_code for _ in range(3)]
        status = server.wait()
    assert statuses == [200, 200, 200]
    assert status == 0


# -- the client going away --------------------------------------------------------------------


@pytest.fixture
def short_grace_server() -> Iterator[ServerProcess]:
    # A request stuck on a vanished client must not hold up the fixture's SIGTERM for long.
    with run_server("apps.basic:app", "--timeout-graceful-shutdown", "1") as process:
        yield process


def test_reset_connection_is_reported_as_disconnect(
    short_grace_server: ServerProcess, tmp_path: Path
) -> None:
    marker, started = tmp_path / "marker", tmp_path / "started"
    with short_grace_server.raw() as conn:
        conn.send(request_bytes("GET", f"/wait-disconnect?marker={marker}&started={started}"))
        assert wait_for(started.exists)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Closed with linger 0: the server sees a reset.
    assert wait_for(marker.exists, timeout=10)


def test_closed_connection_is_reported_as_disconnect(
    short_grace_server: ServerProcess, tmp_path: Path
) -> None:
    marker, started = tmp_path / "marker", tmp_path / "started"
    with short_grace_server.raw() as conn:
        conn.send(request_bytes("GET", f"/wait-disconnect?marker={marker}&started={started}"))
        assert wait_for(started.exists)
    # An ordinary close: the server sees EOF.
    assert wait_for(marker.exists, timeout=3)


# -- other kinds of apps ----------------------------------------------------------------------


def test_asgi2_app() -> None:
    with run_server("apps.asgi2:app") as server:
        response = httpx.post(f"{server.url}/two", content=b"payload", timeout=20)
    assert response.text == "asgi2 POST /two payload version=2.0"


def test_wsgi_app_reads_post_body() -> None:
    body = b"w" * 70_000
    with run_server("apps.wsgi:app", "--interface", "wsgi") as server:
        post = httpx.post(f"{server.url}/submit?x=1", content=body, timeout=20)
        get = httpx.get(f"{server.url}/", timeout=20)
    assert post.status_code == 200
    assert post.content == b"wsgi POST /submit x=1 body=" + body
    assert post.headers["x-wsgi-multithread"] == "True"
    assert get.content == b"wsgi GET /  body="


def test_factory() -> None:
    with run_server("apps.factory:create_app", "--factory") as server:
        response = httpx.get(f"{server.url}/", timeout=20)
    assert response.text == "made by factory, calls=1"


def test_esg_run_from_a_script() -> None:
    port = free_port()
    script = str(TESTS_DIR / "apps" / "run_script.py")
    command = [sys.executable, script, str(port)]
    with run_server("", command=command, port=port) as server:
        response = httpx.get(f"{server.url}/", timeout=20)
        server.signal(signal.SIGINT)
        status = server.wait()
    assert response.text == "served by esg.run()"
    assert status == 0


def test_version_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "esg", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert "esg" in result.stdout
