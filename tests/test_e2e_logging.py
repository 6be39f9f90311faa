"""End to end: ``python -m esg`` with --access-log-format and --log-format json, real requests
(httpx and raw sockets) with hostile paths and headers, and the log lines read back field by field.

The server runs the build the suite runs (``ESG_NO_EXTENSIONS`` reaches the subprocess).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

import httpx
import pytest
from utils import ServerProcess, run_server, run_to_exit
from websockets.asyncio.client import connect

APP = "apps.logging_app:app"
HOSTILE_UA = b'a\x85\x9b"q\tb'  # C1 controls, a quote, a tab: all allowed in a header value
TEMPLATE = (
    '{client} "{method} {path}{query}" {status} {status_phrase} {bytes} {duration_ms}ms '
    'pid={pid} ua="{req[user-agent]}" note="{res[x-note]}" {http_version} {time}'
)
TEXT_LINE = re.compile(
    r'(?P<client>\S+) "(?P<method>\S+) (?P<target>(?:[^"\\ ]|\\.)*)" (?P<status>\d{3}) '
    r"(?P<phrase>.+?) (?P<bytes>\d+|-) (?P<duration>\d+\.\d\d|-)ms pid=(?P<pid>\d+) "
    r'ua="(?P<ua>(?:[^"\\]|\\.)*)" note="(?P<note>(?:[^"\\]|\\.)*)" (?P<version>1\.[01]) '
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\Z"
)


def log_lines(server: ServerProcess, count: int, keep: Callable[[str], bool]) -> list[str]:
    """The first ``count`` output lines that ``keep`` accepts, waiting for them to be written."""
    deadline = time.monotonic() + 10.0
    while True:
        lines = [line for line in server.stderr().splitlines() if keep(line)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def raw_request(server: ServerProcess, request: bytes) -> bytes:
    """Send ``request`` on a new connection; the response's status line and headers."""
    with server.raw() as connection:
        connection.send(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.partition(b"\r\n\r\n")[0]


def upgrade(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def test_custom_access_log_format() -> None:
    with run_server(
        APP,
        "--access-log-format",
        TEMPLATE,
        "--forwarded-allow-ips",
        "*",
        "--no-use-colors",
    ) as server:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/plain?x=1", headers={"user-agent": HOSTILE_UA}).status_code == 200
            assert client.get("/sized").status_code == 201
            assert client.get("/stream").text == "abcdefghi"
            assert client.head("/plain").status_code == 200
            assert client.get("/error").status_code == 500
            assert client.get("/%1b[2J").status_code == 200
            forwarded = {"x-forwarded-for": b"evil\x9bhost"}
            assert client.get("/plain", headers=forwarded).status_code == 200
        assert raw_request(server, b'GET /q?a="b" HTTP/1.0\r\n\r\n').startswith(b"HTTP/1.1 200")
        assert raw_request(server, upgrade("/ws")).startswith(b"HTTP/1.1 101")
        assert raw_request(server, upgrade("/ws-refused")).startswith(b"HTTP/1.1 403")
        lines = log_lines(server, 10, lambda line: "pid=" in line)
    assert len(lines) == 10, lines
    for line in lines:
        assert line.isprintable(), line
    fields = []
    for line in lines:
        match = TEXT_LINE.match(line)
        assert match is not None, line
        fields.append(match.groupdict())
    pid = str(server.proc.pid)
    assert {f["pid"] for f in fields} == {pid}
    assert all(f["client"].startswith("127.0.0.1:") for f in fields[:6] + fields[7:])
    summary = [
        (f["method"], f["target"], f["status"], f["phrase"], f["bytes"], f["note"]) for f in fields
    ]
    note = 'say \\"hi\\"\\x09é'
    assert summary == [
        ("GET", "/plain?x=1", "200", "OK", "5", note),
        ("GET", "/sized", "201", "Created", "7", note),
        ("GET", "/stream", "200", "OK", "9", note),
        ("HEAD", "/plain", "200", "OK", "0", note),
        ("GET", "/error", "500", "Internal Server Error", "21", "-"),
        ("GET", "/%1b[2J", "200", "OK", "5", note),
        ("GET", "/plain", "200", "OK", "5", note),
        ("GET", '/q?a=\\"b\\"', "200", "OK", "5", note),
        ("WebSocket", "/ws", "101", "Switching Protocols", "0", "-"),
        ("WebSocket", "/ws-refused", "403", "Forbidden", "0", "-"),
    ]
    assert fields[0]["ua"] == 'a\\x85\\x9b\\"q\\x09b'
    assert fields[1]["ua"].startswith("python-httpx/")
    assert fields[6]["client"] == "evil\\x9bhost:0"  # from X-Forwarded-For, escaped
    assert [f["version"] for f in fields][6:8] == ["1.1", "1.0"]
    # Every line has one; a WebSocket's is the time to its handshake answer.
    assert all(f["duration"] != "-" and float(f["duration"]) >= 0 for f in fields)


def test_json_log_format() -> None:
    with run_server(
        APP,
        "--log-format",
        "json",
        "--access-log-format",
        '{status} ua="{req[user-agent]}" {res[x-note]}',
    ) as server:
        with httpx.Client(base_url=server.url) as client:
            client.get("/plain?x=%22y", headers={"user-agent": HOSTILE_UA})
            client.get("/stream")
            client.get("/error")
            client.get("/%1b[2J")
        assert raw_request(server, upgrade("/ws")).startswith(b"HTTP/1.1 101")
        server.stop()
        output = server.stderr()
    lines = output.splitlines()
    assert lines, output
    records = []
    for line in lines:
        assert line.isascii() and line.isprintable(), line
        records.append(json.loads(line))  # every line of both logs is one JSON object
    for record in records:
        assert {"time", "level", "logger", "pid", "message"} <= record.keys()
        assert record["pid"] == server.proc.pid
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
    messages = [r["message"] for r in records if r["logger"] == "esg.error"]
    assert f"Started server process [{server.proc.pid}]" in messages
    [failure] = [r for r in records if "exc_info" in r]
    assert failure["level"] == "ERROR"
    assert failure["exc_info"].endswith("RuntimeError: boom \x1b[2J")
    access = [r for r in records if r["logger"] == "esg.access"]
    common = {"time", "level", "logger", "pid", "message"}
    summary = [
        {key: value for key, value in r.items() if key not in common and key != "duration_ms"}
        for r in access
    ]
    note = 'say "hi"\t\xe9'
    assert summary == [
        {
            "client": summary[0]["client"],
            "method": "GET",
            "path": "/plain",
            "query": "?x=%22y",
            "http_version": "1.1",
            "status": 200,
            "bytes": 5,
            "request_headers": {"user-agent": HOSTILE_UA.decode("latin-1")},
            "response_headers": {"x-note": note},
        },
        {
            "client": summary[1]["client"],
            "method": "GET",
            "path": "/stream",
            "query": "",
            "http_version": "1.1",
            "status": 200,
            "bytes": 9,
            "request_headers": {"user-agent": summary[1]["request_headers"]["user-agent"]},
            "response_headers": {"x-note": note},
        },
        {
            "client": summary[2]["client"],
            "method": "GET",
            "path": "/error",
            "query": "",
            "http_version": "1.1",
            "status": 500,
            "bytes": 21,
            "request_headers": {"user-agent": summary[2]["request_headers"]["user-agent"]},
            "response_headers": {"x-note": None},
        },
        {
            "client": summary[3]["client"],
            "method": "GET",
            "path": "/%1b[2J",
            "query": "",
            "http_version": "1.1",
            "status": 200,
            "bytes": 5,
            "request_headers": {"user-agent": summary[3]["request_headers"]["user-agent"]},
            "response_headers": {"x-note": note},
        },
        {
            "client": summary[4]["client"],
            "method": "WebSocket",
            "path": "/ws",
            "query": "",
            "http_version": "1.1",
            "status": 101,
            "bytes": 0,
            "request_headers": {"user-agent": None},
            "response_headers": {"x-note": None},
        },
    ]
    assert all(r["client"].startswith("127.0.0.1:") for r in summary)
    assert access[0]["message"] == '200 ua="a\\x85\\x9b\\"q\\x09b" say \\"hi\\"\\x09é'
    assert all(isinstance(r["duration_ms"], float) for r in access)  # WebSocket: its handshake


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--access-log-format", "{client} {nope}"], "unknown field {nope}"),
        (["--access-log-format", "{status:q}"], "{status:q}: Unknown format code 'q'"),
        (["--access-log-format", "{req}"], "{req} needs a header name"),
        (["--log-format", "xml"], "'xml' is not one of 'text', 'json'"),
    ],
)
def test_invalid_settings_stop_the_command_line(args: list[str], error: str) -> None:

    result = run_to_exit(APP, *args)
    assert result.returncode == 2
    assert error in result.stderr
    assert "Traceback" not in result.stderr


def test_trace_logs_the_connection_lifecycle() -> None:
    # What operators grep for at --log-level trace: each connection made and lost (with the
    # peer), the upgrade, and the WebSocket made, closed (with its code) and lost.
    with run_server("apps.ws_apps:app", "--log-level", "trace", "--no-use-colors") as server:
        with server.raw() as connection:
            connection.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert connection.read_response().status == 200
            assert connection.is_closed()
            host, port = connection.sock.getsockname()[:2]
            http_peer = f"{host}:{port}"

        async def talk() -> str:
            url = f"ws://127.0.0.1:{server.port}/echo?id=trace"
            async with connect(url) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                host, port = ws.local_address[:2]
            return f"{host}:{port}"

        ws_peer = asyncio.run(talk())

        def lifecycle(peer: str) -> Callable[[str], bool]:
            # The message logger's "ASGI [n]" lines carry the peer too: not these.
            return lambda line: line.startswith(f"TRACE:    {peer} - ") and "ASGI [" not in line

        http_lines = log_lines(server, 2, lifecycle(http_peer))
        ws_lines = log_lines(server, 5, lifecycle(ws_peer))
    assert http_lines == [
        f"TRACE:    {http_peer} - HTTP connection made",
        f"TRACE:    {http_peer} - HTTP connection lost",
    ]
    assert ws_lines == [
        f"TRACE:    {ws_peer} - HTTP connection made",
        f"TRACE:    {ws_peer} - Upgrading to WebSocket",
        f"TRACE:    {ws_peer} - WebSocket connection made",
        f"TRACE:    {ws_peer} - WebSocket closed with code 1000",
        f"TRACE:    {ws_peer} - WebSocket connection lost",
    ]


def test_no_connection_lines_without_trace() -> None:
    with run_server("apps.ws_apps:app", "--log-level", "debug", "--no-use-colors") as server:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/").status_code == 200
        stderr = server.stderr()
    assert "connection made" not in stderr and "TRACE" not in stderr
