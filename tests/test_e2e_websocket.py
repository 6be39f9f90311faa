"""End-to-end WebSockets: a real esg process and real clients over loopback.

Clients: the ``websockets`` library's asyncio client, ``wsproto`` driving a raw socket, raw
bytes for a client that never answers pings, and a headless Chromium page.  The app
(``tests/apps/ws_apps.py``) echoes messages and reports what it saw (subprotocols, offered
extensions, disconnect codes) over plain HTTP on the same server (``GET /seen?id=...``).

Unless a test is about one mode, it runs for every ``--ws`` engine (``auto`` is esg's own
codec; ``websockets`` and ``wsproto`` are the library adapters) with the same expectations.
Servers are started on first use and shared by the whole module (``servers.get(mode, *args)``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import string
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from utils import ServerProcess, run_server, wait_for
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

pytestmark = pytest.mark.slow

APP = "apps.ws_apps:app"
MODES = ["auto", "websockets", "wsproto"]
MAX_SIZE = 2 * 1024 * 1024  # --ws-max-size of the shared servers: room for the 1 MiB echo
DEFAULT_ARGS = ("--ws-max-size", str(MAX_SIZE))
KEEPALIVE_ARGS = ("--ws-ping-interval", "1", "--ws-ping-timeout", "1")
SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024]  # around the frame-length encodings
TIMEOUT = 30.0  # upper bound for any one client conversation

T = TypeVar("T")


# -- servers and helpers ----------------------------------------------------------------------


class Servers:
    """esg processes started on first use, one per (mode, extra args), stopped at module end."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self.running: dict[tuple[str, ...], ServerProcess] = {}

    def get(self, mode: str, *args: str) -> ServerProcess:
        key = (mode, *args)
        if key not in self.running:
            self.running[key] = self.stack.enter_context(
                run_server(APP, "--ws", mode, "--log-level", "warning", *args)
            )
        server = self.running[key]
        assert server.proc.poll() is None, f"esg exited early:\n{server.stderr()}"
        return server


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        started = Servers(stack)
        yield started
        # No test here should make esg log an error (they run with --log-level warning).
        logs = {key: server.stderr() for key, server in started.running.items()}
    for key, log in logs.items():
        assert "Traceback" not in log and "ERROR" not in log, f"esg {key} logged:\n{log}"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def server(servers: Servers, mode: str) -> ServerProcess:
    return servers.get(mode, *DEFAULT_ARGS)


def run(coro: Awaitable[T], timeout: float = TIMEOUT) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def new_id() -> str:
    return uuid.uuid4().hex


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def ws_connect(server: ServerProcess, path: str, **kwargs: Any) -> connect:
    """The websockets client with test-friendly defaults (no own pings, no size limit)."""
    options: dict[str, Any] = {
        "proxy": None,
        "open_timeout": 10,
        "close_timeout": 5,
        "ping_interval": None,
        "max_size": None,
    }
    options.update(kwargs)
    return connect(ws_url(server, path), **options)


def response_header(ws: ClientConnection, name: str) -> str | None:
    """A header of the server's handshake response."""
    assert ws.response is not None
    value: str | None = ws.response.headers.get(name)
    return value


def http_get(server: ServerProcess, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10, trust_env=False) as client:
        return client.get(path, **kwargs)


def seen(
    server: ServerProcess,
    key: str,
    until: Callable[[dict[str, Any]], bool] = lambda record: record["disconnect"] is not None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """What the app recorded for WebSocket ``key``, once ``until(record)`` holds."""
    deadline = time.monotonic() + timeout
    record: dict[str, Any] | None = None
    while True:
        response = http_get(server, "/seen", params={"id": key})
        if response.status_code == 200:
            record = response.json()
            assert record is not None
            if until(record):
                return record
        if time.monotonic() > deadline:
            raise AssertionError(f"the app never got there for {key}: {record}")
        time.sleep(0.05)


def random_text(size: int) -> str:
    rng = random.Random(size)
    return "".join(rng.choices(string.ascii_letters + string.digits + " éü€", k=size))


def upgrade_request(path: str, extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


# -- the websockets client -------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_echo_sizes(server: ServerProcess, kind: str, compression: str | None) -> None:
    async def main() -> list[int]:
        failures = []
        async with ws_connect(server, f"/echo?id={new_id()}", compression=compression) as ws:
            for size in SIZES:
                message: str | bytes = random_text(size) if kind == "text" else os.urandom(size)
                await ws.send(message)
                if await ws.recv() != message:
                    failures.append(size)
        return failures

    assert run(main()) == []


def test_subprotocol_negotiation(server: ServerProcess) -> None:
    key, plain = new_id(), new_id()

    async def main() -> tuple[str | None, str | None, str | None]:
        offered = ["unknown.v9", "chat", "superchat"]
        async with ws_connect(server, f"/echo?id={key}", subprotocols=offered) as ws:
            header = response_header(ws, "Sec-WebSocket-Protocol")
            chosen = ws.subprotocol
        async with ws_connect(server, f"/echo?id={plain}") as ws:
            absent = response_header(ws, "Sec-WebSocket-Protocol")
        return chosen, header, absent

    chosen, header, absent = run(main())
    assert (chosen, header, absent) == ("chat", "chat", None)
    assert seen(server, key)["subprotocols"] == ["unknown.v9", "chat", "superchat"]
    assert seen(server, plain)["subprotocols"] == []


def test_permessage_deflate_is_negotiated_by_default(server: ServerProcess) -> None:
    key = new_id()
    text = "esg speaks permessage-deflate. " * 40_000  # 1.2 MB that compresses very well

    async def main() -> tuple[str | None, bool]:
        async with ws_connect(server, f"/echo?id={key}") as ws:
            extensions = response_header(ws, "Sec-WebSocket-Extensions")
            await ws.send(text)
            echoed = await ws.recv()
        return extensions, echoed == text

    extensions, echoed = run(main())
    assert extensions is not None and extensions.startswith("permessage-deflate"), extensions
    assert echoed
    assert "permessage-deflate" in (seen(server, key)["extensions_offer"] or "")


def test_no_permessage_deflate_when_switched_off(servers: Servers, mode: str) -> None:
    server = servers.get(mode, *DEFAULT_ARGS, "--no-ws-per-message-deflate")
    key = new_id()
    text = "uncompressed " * 10_000

    async def main() -> tuple[str | None, bool]:
        async with ws_connect(server, f"/echo?id={key}") as ws:
            extensions = response_header(ws, "Sec-WebSocket-Extensions")
            await ws.send(text)
            echoed = await ws.recv()
        return extensions, echoed == text

    assert run(main()) == (None, True)
    # The client did offer it; the server declined.
    assert "permessage-deflate" in (seen(server, key)["extensions_offer"] or "")


def test_client_close_code_and_reason_reach_the_app(server: ServerProcess) -> None:
    key = new_id()

    async def main() -> None:
        async with ws_connect(server, f"/echo?id={key}") as ws:
            await ws.send("one message first")
            await ws.recv()
            await ws.close(4321, "client says bye")

    run(main())
    record = seen(server, key)
    assert record["disconnect"] == {"code": 4321, "reason": "client says bye"}
    assert record["messages"] == 1


def test_server_close_code_and_reason_reach_the_client(server: ServerProcess) -> None:
    key = new_id()

    async def main() -> tuple[int | None, str | None]:
        path = f"/close?id={key}&code=4001&reason=server%20says%20bye"
        async with ws_connect(server, path) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    assert run(main()) == (4001, "server says bye")
    assert seen(server, key)["disconnect"]["code"] == 4001  # the client echoed the code


@pytest.mark.parametrize("payload", ["random", "compressible"])
def test_message_over_max_size_closes_with_1009(server: ServerProcess, payload: str) -> None:
    """Random bytes are too big on the wire; the compressible ones only once inflated."""
    key = new_id()
    message = os.urandom(MAX_SIZE + 1) if payload == "random" else b"a" * (MAX_SIZE + 1)

    async def main() -> int | None:
        async with ws_connect(server, f"/echo?id={key}") as ws:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(message)
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            return ws.close_code

    assert run(main()) == 1009
    assert seen(server, key)["disconnect"]["code"] == 1009


def test_ping_from_the_client_gets_a_pong(server: ServerProcess) -> None:
    async def main() -> list[float]:
        async with ws_connect(server, f"/echo?id={new_id()}") as ws:
            latencies = []
            for payload in (b"are you there?", b"", os.urandom(125)):
                pong = await ws.ping(payload)
                latencies.append(await asyncio.wait_for(pong, 10))
            await ws.send("still open")
            assert await ws.recv() == "still open"
            return latencies

    assert len(run(main())) == 3


def test_an_app_returning_a_value_after_accept_closes_with_1011(mode: str) -> None:
    with run_server(APP, "--ws", mode, "--no-access-log") as server:

        async def main() -> int | None:
            async with ws_connect(server, f"/return-value?id={new_id()}") as ws:
                assert await ws.recv() == "accepted"
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                return ws.close_code

        assert run(main()) == 1011
        logged = server.stderr()
    assert [line for line in logged.splitlines() if line.startswith("ERROR")] == [
        "ERROR:    ASGI callable should return None, but returned 'not None'."
    ]


def test_app_denies_with_an_http_response(server: ServerProcess) -> None:
    key = new_id()

    async def main() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(server, f"/deny?id={key}"):
                pass
        return info.value

    error = run(main())
    assert error.response.status_code == 401
    assert error.response.body == b"denied: no token"
    assert error.response.headers["WWW-Authenticate"] == "Bearer"
    assert seen(server, key, until=lambda record: True)["path"] == "/deny"


def test_an_invalid_denial_status_is_a_500_with_one_error_line() -> None:
    # The websocket.http.response extension takes final statuses only (200-599): a 101 would
    # pass for an accepted handshake, a 103 for a note before the answer, a 700 is no status.
    statuses = [101, 103, 700]
    with run_server(APP, "--no-access-log") as server:
        for status in statuses:

            async def main(status: int = status) -> int:
                with pytest.raises(InvalidStatus) as info:
                    async with ws_connect(server, f"/deny-status?status={status}&id={new_id()}"):
                        pass
                return info.value.response.status_code

            assert run(main()) == 500
        logged = server.stderr()
    assert [line for line in logged.splitlines() if line.startswith("ERROR")] == [
        f"ERROR:    Invalid HTTP status code {status} in 'websocket.http.response.start': a "
        "response needs an int from 200 to 599. Answered 500."
        for status in statuses
    ]
    assert "Traceback" not in logged


def test_app_closing_before_accept_is_a_403(server: ServerProcess) -> None:
    async def main() -> int:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(server, f"/reject?id={new_id()}"):
                pass
        return info.value.response.status_code

    assert run(main()) == 403


# -- wsproto over a raw socket -----------------------------------------------------------------


class WsprotoClient:
    """A wsproto client connection over a blocking socket; counts the bytes it receives."""

    def __init__(self, server: ServerProcess) -> None:
        self.sock = server.connect(timeout=10)
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.events: list[Event] = []
        self.wire_bytes = 0

    def __enter__(self) -> WsprotoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, event: Event) -> None:
        self.sock.sendall(self.conn.send(event))

    def fill(self) -> bool:
        """Read once from the socket; False at EOF."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.wire_bytes += len(data)
        self.conn.receive_data(data or None)
        self.events.extend(self.conn.events())
        return bool(data)

    def next_event(self) -> Event:
        while not self.events:
            if not self.fill() and not self.events:
                raise AssertionError("connection closed while waiting for an event")
        return self.events.pop(0)

    def handshake(self, path: str, **request: Any) -> AcceptConnection:
        self.send(Request(host="127.0.0.1", target=path, **request))
        event = self.next_event()
        assert isinstance(event, AcceptConnection), event
        return event

    def message(self) -> str | bytes:
        """The next whole message (wsproto may hand it over in pieces); answers pings."""
        parts: list[Any] = []
        while True:
            event = self.next_event()
            if isinstance(event, Ping):
                self.send(event.response())
                continue
            assert isinstance(event, Message), event
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)


def test_wsproto_handshake_and_echo(server: ServerProcess) -> None:
    key = new_id()
    with WsprotoClient(server) as client:
        accepted = client.handshake(f"/echo?id={key}", subprotocols=["chat"])
        assert accepted.subprotocol == "chat"
        assert accepted.extensions == []  # none offered, none accepted
        client.send(TextMessage(data="héllo wsproto"))
        assert client.message() == "héllo wsproto"
        payload = os.urandom(70_000)
        client.send(BytesMessage(data=payload))
        assert client.message() == payload
    record = seen(server, key)
    assert record["subprotocols"] == ["chat"]
    assert record["extensions_offer"] is None
    assert record["messages"] == 2
    assert record["disconnect"]["code"] == 1006  # the socket closed without a close frame


def test_wsproto_fragmented_messages(server: ServerProcess) -> None:
    with WsprotoClient(server) as client:
        client.handshake(f"/echo?id={new_id()}")
        client.send(TextMessage(data="frag-1 ", message_finished=False))
        client.send(Ping(payload=b"between fragments"))  # control frames may interleave
        client.send(TextMessage(data="frag-2 ", message_finished=False))
        client.send(TextMessage(data="end", message_finished=True))
        pong = client.next_event()
        assert isinstance(pong, Pong) and pong.payload == b"between fragments"
        assert client.message() == "frag-1 frag-2 end"
        chunks = [os.urandom(size) for size in (1, 125, 126, 65536, 3)]
        for index, chunk in enumerate(chunks):
            client.send(BytesMessage(data=chunk, message_finished=index == len(chunks) - 1))
        assert client.message() == b"".join(chunks)


def test_wsproto_clean_close_handshake(server: ServerProcess) -> None:
    key = new_id()
    with WsprotoClient(server) as client:
        client.handshake(f"/echo?id={key}")
        client.send(CloseConnection(code=1000, reason="done here"))
        reply = client.next_event()
        assert isinstance(reply, CloseConnection) and reply.code == 1000
        assert client.conn.state == ConnectionState.CLOSED
        # The server closes the TCP connection first (RFC 6455 section 7.1.1).
        client.sock.settimeout(10)
        assert not client.fill()
    assert seen(server, key)["disconnect"] == {"code": 1000, "reason": "done here"}


def test_wsproto_permessage_deflate_compresses_on_the_wire(server: ServerProcess) -> None:
    text = "compress me, esg! " * 20_000  # 360 kB
    with WsprotoClient(server) as client:
        accepted = client.handshake(f"/echo?id={new_id()}", extensions=[PerMessageDeflate()])
        assert [ext.name for ext in accepted.extensions] == ["permessage-deflate"]
        before = client.wire_bytes
        client.send(TextMessage(data=text))
        assert client.message() == text
        assert client.wire_bytes - before < len(text) // 20


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame (payload under 126 bytes)."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def test_frames_sent_with_the_upgrade_request_are_not_lost(server: ServerProcess) -> None:
    """Bytes that arrive before the app accepts wait for the 101, then are read as frames."""
    frames = masked_frame(b"early bird") + masked_frame(b"\x00\xff", opcode=0x2)
    with server.raw() as conn:
        conn.send(upgrade_request(f"/echo?id={new_id()}") + frames)
        assert conn.read_head().status == 101
        assert conn.read_exact(12) == b"\x81\x0aearly bird"
        assert conn.read_exact(4) == b"\x82\x02\x00\xff"


# -- --ws none -------------------------------------------------------------------------------


def test_ws_none_serves_upgrade_requests_as_plain_http(servers: Servers) -> None:
    server = servers.get("none")
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    response = http_get(server, "/echo", headers=headers)
    assert (response.status_code, response.text) == (200, "plain http")

    async def main() -> int:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(server, "/echo"):
                pass
        return info.value.response.status_code

    assert run(main()) == 200


# -- keepalive -----------------------------------------------------------------------------


def test_client_that_never_answers_pings_is_disconnected(servers: Servers, mode: str) -> None:
    server = servers.get(mode, *KEEPALIVE_ARGS)
    key = new_id()
    with server.raw() as conn:
        conn.send(upgrade_request(f"/echo?id={key}"))
        assert conn.read_head().status == 101
        received = conn.buffer
        deadline = time.monotonic() + 10
        closed = False
        while not closed and time.monotonic() < deadline:
            conn.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = conn.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                data = b""
            received += data
            closed = not data
    assert closed, "still connected 10 s after pings went unanswered"
    assert received[:1] == b"\x89", received[:20]  # it was pinged first
    assert seen(server, key)["disconnect"]["code"] == 1006


def test_client_answering_pings_stays_connected(servers: Servers, mode: str) -> None:
    server = servers.get(mode, *KEEPALIVE_ARGS)
    frames: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            frames.append(record.getMessage())

    client_logger = logging.getLogger(f"esg.tests.ws-client.{new_id()}")
    client_logger.setLevel(logging.DEBUG)
    client_logger.propagate = False
    client_logger.addHandler(Collect())

    async def main() -> str | bytes:
        async with ws_connect(server, f"/echo?id={new_id()}", logger=client_logger) as ws:
            await asyncio.sleep(3)
            await ws.send("still here")
            return await ws.recv()

    assert run(main()) == "still here"
    assert any(line.startswith("< PING") for line in frames), frames


# -- shutdown --------------------------------------------------------------------------------


def test_sigterm_closes_websockets_with_1012(mode: str) -> None:
    with run_server(APP, "--ws", mode) as server:
        key = new_id()

        async def main() -> int | None:
            async with ws_connect(server, f"/echo?id={key}") as ws:
                await ws.send("before shutdown")
                assert await ws.recv() == "before shutdown"
                server.signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                return ws.close_code

        assert run(main()) == 1012
        assert server.wait() == 0, server.stderr()


def test_sigterm_tells_an_app_still_deciding_that_the_client_is_gone(tmp_path: Path) -> None:
    started, marker = tmp_path / "started", tmp_path / "marker"
    with run_server(APP) as server, server.raw() as conn:
        conn.send(upgrade_request(f"/undecided?started={started}&marker={marker}"))
        assert wait_for(started.exists)
        server.signal(signal.SIGTERM)
        assert conn.read_to_close() == b""  # no handshake answer: the connection just ends
        status = server.wait()
        stderr = server.stderr()
    assert status == 0, stderr
    # The app was not cancelled: receive() said the client is gone, and it ended by itself.
    assert json.loads(marker.read_text()) == {
        "type": "websocket.disconnect",
        "code": 1006,
        "reason": "",
    }
    assert "Cancelling" not in stderr and "ERROR" not in stderr and "Traceback" not in stderr


# -- a real browser --------------------------------------------------------------------------


@pytest.fixture
def chromium() -> str:
    """The browser binary; skips (or fails with ESG_REQUIRE_BROWSER=1) when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    if os.environ.get("ESG_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail("ESG_REQUIRE_BROWSER=1 but no chromium binary is installed")
    pytest.skip("no chromium binary (apt-get install chromium); set ESG_REQUIRE_BROWSER=1 to fail")


@contextlib.contextmanager
def headless_chromium(binary: str, url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Chromium showing ``url`` until the block ends; then its whole process group is killed."""
    with tempfile.TemporaryDirectory(prefix="esg-chromium-") as profile:
        command = [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--no-proxy-server",
            f"--user-data-dir={profile}",
            url,
        ]
        with open(os.path.join(profile, "chromium.log"), "wb") as log:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_chromium_page_talks_to_esg(chromium: str, server: ServerProcess) -> None:
    key = new_id()
    report: dict[str, Any] | None = None
    with headless_chromium(chromium, f"{server.url}/page?id={key}") as browser:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            response = http_get(server, "/report", params={"id": key})
            if response.status_code == 200:
                report = response.json()
                break
            assert browser.poll() is None, f"chromium exited with status {browser.returncode}"
            time.sleep(0.1)
    assert report is not None, "the page never reported back"
    assert report["errors"] == []
    assert report["opened"] is True
    assert report["protocol"] == "chat"
    assert report["extensions"].startswith("permessage-deflate"), report["extensions"]
    assert report["texts"] == ["hello from chromium \u00e9\u2603"]
    assert report["binaries"] == [[0, 1, 2, 127, 128, 254, 255]]
    assert report["bigEchoed"] is True
    assert report["close"] == {"code": 1000, "reason": "", "wasClean": True}
    record = seen(server, key)
    assert record["disconnect"] == {"code": 1000, "reason": "done"}
    assert record["messages"] == 3
    assert record["subprotocols"] == ["chat"]
    offer = record["extensions_offer"]
    assert offer is not None and "permessage-deflate" in offer and "client_max_window_bits" in offer
    assert "Chrome/" in (record["user_agent"] or "")
