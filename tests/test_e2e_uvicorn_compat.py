"""Drop-in for uvicorn users: settings, log configs and scopes as code written for uvicorn has them.

Each test runs a real esg process (the ``esg`` command, or a script calling ``esg.run()`` with
uvicorn's keyword arguments) on loopback and talks to it with httpx, raw sockets or the
``websockets`` client.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from utils import TESTS_DIR, ServerProcess, free_port, request_bytes, run_server, wait_for
from websockets.asyncio.client import connect

pytestmark = pytest.mark.slow

KWARGS_SCRIPT = str(TESTS_DIR / "apps" / "uvicorn_kwargs.py")


def run_with_kwargs(settings: dict[str, Any]) -> Any:
    """esg.run(app, **settings) in a script, as a program written for uvicorn would call it."""
    port = free_port()
    command = [sys.executable, KWARGS_SCRIPT, str(port), json.dumps(settings)]
    return run_server("", command=command, port=port)


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING")]


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


# -- host=None: every interface, as asyncio's create_server(host=None) ---------------------------


def test_host_none_serves_every_interface() -> None:
    with run_with_kwargs({"host": None, "log_level": "info"}) as server:
        over_ipv4 = httpx.get(f"http://127.0.0.1:{server.port}/", timeout=20).json()
        over_ipv6 = None
        if ipv6_loopback_works():
            over_ipv6 = httpx.get(f"http://[::1]:{server.port}/", timeout=20).json()
        stderr = server.stderr()
    assert over_ipv4["client"][0] == "127.0.0.1"  # a plain IPv4 address, not ::ffff:127.0.0.1
    assert f"esg running on http://0.0.0.0:{server.port} (Press CTRL+C to quit)" in stderr
    if over_ipv6 is not None:
        assert over_ipv6["client"][0] == "::1"
        assert f"esg running on http://[::]:{server.port} (Press CTRL+C to quit)" in stderr
    assert "Traceback" not in stderr


def test_host_none_with_workers() -> None:
    # The supervisor binds the sockets and the workers inherit every one of them.
    port = free_port()
    script = textwrap.dedent(
        f"""
        import esg
        esg.run("apps.basic:app", host=None, port={port}, workers=2, app_dir={str(TESTS_DIR)!r})
        """
    )
    with run_server("", command=[sys.executable, "-c", script], port=port) as server:
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=20)
        if ipv6_loopback_works():
            assert httpx.get(f"http://[::1]:{port}/", timeout=20).status_code == 200
        stderr = server.stderr()
    assert response.status_code == 200
    assert "Traceback" not in stderr


# -- X-Forwarded-* that carry nothing usable ---------------------------------------------------


@pytest.fixture(scope="module")
def proxied_server() -> Any:
    # The test client is the trusted proxy (127.0.0.1, the default --forwarded-allow-ips).
    with run_server("apps.basic:app") as process:
        yield process


def scope_through_raw_socket(server: ServerProcess, headers: dict[str, str]) -> Any:
    with server.raw() as conn:
        conn.send(request_bytes("GET", "/scope", headers=headers))
        response = conn.read_response()
        peer = conn.sock.getsockname()
    assert response.status == 200
    return json.loads(response.body), peer


@pytest.mark.parametrize("value", ["", " ", ", ,", " ,\t, "])
def test_empty_forwarded_for_keeps_the_peer_address(
    proxied_server: ServerProcess, value: str
) -> None:
    scope, peer = scope_through_raw_socket(proxied_server, {"X-Forwarded-For": value})
    assert scope["client"] == [peer[0], peer[1]]


def test_empty_hops_around_an_address_are_skipped(proxied_server: ServerProcess) -> None:
    scope, _ = scope_through_raw_socket(proxied_server, {"X-Forwarded-For": ", 203.0.113.7, "})
    assert scope["client"] == ["203.0.113.7", 0]


def test_empty_forwarded_proto_and_port_keep_scheme_and_server(
    proxied_server: ServerProcess,
) -> None:
    headers = {"X-Forwarded-Proto": "", "X-Forwarded-Port": " ", "X-Forwarded-For": ""}
    scope, peer = scope_through_raw_socket(proxied_server, headers)
    assert scope["scheme"] == "http"
    assert scope["server"] == ["127.0.0.1", proxied_server.port]
    assert scope["client"] == [peer[0], peer[1]]


def test_access_log_shows_the_peer_for_an_empty_forwarded_for() -> None:
    with run_server("apps.basic:app", "--no-use-colors") as server:
        _, peer = scope_through_raw_socket(server, {"X-Forwarded-For": ", ,"})
        assert wait_for(lambda: '"GET /scope HTTP/1.1" 200' in server.stderr())
        stderr = server.stderr()
    assert f'{peer[0]}:{peer[1]} - "GET /scope HTTP/1.1" 200' in stderr
    assert ':0 - "GET /scope' not in stderr


# -- uvicorn's option names ----------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["httptools", "h11"])
def test_http_option_is_accepted_with_one_warning(choice: str) -> None:
    with run_server("apps.basic:app", "--http", choice) as server:
        response = httpx.get(f"{server.url}/", timeout=20)
        stderr = server.stderr()
    assert response.status_code == 200
    assert warnings_in(stderr) == [
        f"WARNING:  --http {choice} is ignored: esg has a single HTTP/1.1 implementation, "
        "its own parser."
    ]


def test_http_auto_and_esg_http_variable() -> None:
    with run_server("apps.basic:app", "--http", "auto") as server:
        assert httpx.get(f"{server.url}/", timeout=20).status_code == 200
        quiet = server.stderr()
    with run_server("apps.basic:app", env={"ESG_HTTP": "httptools"}) as server:
        assert httpx.get(f"{server.url}/", timeout=20).status_code == 200
        from_variable = server.stderr()
    assert warnings_in(quiet) == []
    assert len(warnings_in(from_variable)) == 1
    assert "--http httptools is ignored" in from_variable


def head_of(size: int) -> bytes:
    """A GET whose head (request line, fields and the blank line) is exactly ``size`` bytes."""
    base = request_bytes("GET", "/", headers={"X-Pad": ""})
    return request_bytes("GET", "/", headers={"X-Pad": "p" * (size - len(base))})


def status_of(server: ServerProcess, request: bytes) -> int:
    with server.raw() as conn:
        conn.send(request)
        return conn.read_response().status


def test_h11_max_incomplete_event_size_is_the_head_limit() -> None:
    assert len(head_of(1024)) == 1024
    with run_server("apps.basic:app", "--h11-max-incomplete-event-size", "1024") as server:
        fits, too_big = status_of(server, head_of(1024)), status_of(server, head_of(1025))
    assert (fits, too_big) == (200, 431)


def test_h11_max_incomplete_event_size_above_64_kib_keeps_esg_limit() -> None:
    # Ten fields of 7,000 bytes: each within --limit-request-field-size, together over 64 KiB.
    fields = {f"X-Pad-{n}": "p" * 7000 for n in range(10)}
    request = request_bytes("GET", "/", headers=fields)
    env = {"ESG_H11_MAX_INCOMPLETE_EVENT_SIZE": "100000"}
    with run_server("apps.basic:app", env=env) as server:
        status = status_of(server, request)
        stderr = server.stderr()
    assert status == 431
    assert (
        "WARNING:  --h11-max-incomplete-event-size 100000 is above esg's request head limit; "
        "heads stay limited to 65536 bytes." in stderr.splitlines()
    )


def test_uvicorn_keyword_arguments_are_accepted(tmp_path: Path) -> None:
    marker = tmp_path / "notified"
    settings = {
        "host": "127.0.0.1",
        "http": "h11",
        "h11_max_incomplete_event_size": 1024,
        "timeout_notify": 1,
        "notify_marker": str(marker),
        "log_level": "info",
    }
    with run_with_kwargs(settings) as server:
        assert httpx.get(f"{server.url}/", timeout=20).status_code == 200
        assert status_of(server, head_of(1025)) == 431
        # callback_notify is awaited on the first tick and then every timeout_notify seconds.
        assert wait_for(lambda: marker.exists() and len(marker.read_text().splitlines()) >= 2)
        stderr = server.stderr()
    assert [line for line in warnings_in(stderr) if "--http" in line] == [
        "WARNING:  --http h11 is ignored: esg has a single HTTP/1.1 implementation, its own parser."
    ]
    assert "Traceback" not in stderr


# -- logging configurations written for uvicorn -------------------------------------------------

UVICORN_DICT_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "UV-ERR %(levelprefix)s %(message)s",
            "use_colors": False,
        },
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": 'UV-ACC %(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            "use_colors": False,
        },
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

UVICORN_INI_CONFIG = """\
[loggers]
keys=root,uvicorn,uvicorn_error,uvicorn_access

[handlers]
keys=default,access

[formatters]
keys=default,access

[logger_root]
level=WARNING
handlers=

[logger_uvicorn]
level=INFO
handlers=default
propagate=0
qualname=uvicorn

[logger_uvicorn_error]
level=INFO
handlers=
qualname=uvicorn.error

[logger_uvicorn_access]
level=INFO
handlers=access
propagate=0
qualname=uvicorn.access

[handler_default]
class=StreamHandler
formatter=default
args=(sys.stderr,)

[handler_access]
class=StreamHandler
formatter=access
args=(sys.stdout,)

[formatter_default]
class=uvicorn.logging.DefaultFormatter
format=UV-ERR %(levelprefix)s %(message)s

[formatter_access]
class=uvicorn.logging.AccessFormatter
format=UV-ACC %(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s
"""


def write_uvicorn_log_config(directory: Path, suffix: str) -> Path:
    path = directory / f"uvicorn-logging{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(UVICORN_DICT_CONFIG))
    elif suffix == ".yaml":
        yaml = pytest.importorskip("yaml")
        path.write_text(yaml.safe_dump(UVICORN_DICT_CONFIG))
    else:
        path.write_text(UVICORN_INI_CONFIG)
    return path


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".ini"])
def test_uvicorn_log_config_configures_esg_loggers(tmp_path: Path, suffix: str) -> None:
    log_config = write_uvicorn_log_config(tmp_path, suffix)
    with run_server("apps.basic:app", "--log-config", str(log_config)) as server:
        assert httpx.get(f"{server.url}/", timeout=20).status_code == 200
        assert wait_for(lambda: "UV-ACC" in server.stderr())
        lines = server.stderr().splitlines()
    assert f"UV-ERR INFO:     esg running on {server.url} (Press CTRL+C to quit)" in lines
    [access] = [line for line in lines if line.startswith("UV-ACC")]
    assert access.startswith("UV-ACC INFO:     127.0.0.1:")
    assert ' - "GET / HTTP/1.1" 200 OK' in access
    # Nothing went out in esg's default format next to the configured one.
    assert not [line for line in lines if line.startswith("INFO:")], lines


def test_esg_loggers_in_the_same_config_win(tmp_path: Path) -> None:
    config = json.loads(json.dumps(UVICORN_DICT_CONFIG))
    config["formatters"]["esg"] = {"format": "ESG-OWN %(message)s"}
    config["handlers"]["esg"] = {
        "formatter": "esg",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["esg.error"] = {"handlers": ["esg"], "level": "INFO", "propagate": False}
    path = tmp_path / "both.json"
    path.write_text(json.dumps(config))
    with run_server("apps.basic:app", "--log-config", str(path)) as server:
        assert httpx.get(f"{server.url}/", timeout=20).status_code == 200
        assert wait_for(lambda: "UV-ACC" in server.stderr())
        stderr = server.stderr()
    assert f"ESG-OWN esg running on {server.url} (Press CTRL+C to quit)" in stderr
    assert "UV-ERR" not in stderr


# -- ASGI 2 apps see asgi.version "2.0" in every scope --------------------------------------------


def test_asgi2_app_scopes_report_version_2() -> None:
    async def websocket_asgi(url: str) -> Any:
        async with connect(url, open_timeout=20) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 20))

    with run_server("apps.asgi2_scopes:app", "--lifespan", "on") as server:
        versions = httpx.get(f"{server.url}/versions", timeout=20).json()
        websocket = asyncio.run(websocket_asgi(f"ws://127.0.0.1:{server.port}/ws"))
    assert versions["lifespan"] == {"version": "2.0", "spec_version": "2.0"}
    assert versions["http"]["version"] == "2.0"
    assert websocket["version"] == "2.0"
