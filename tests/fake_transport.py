"""A socket-free harness for ``HttpProtocol``: a fake transport, a tiny config, a reader.

Tests import it as ``fake`` (``import fake_transport as fake``).

``Connection`` wires one protocol (of the build under test) to a ``FakeTransport`` inside the
running event loop.  Tests feed request bytes with ``feed()`` and let the loop run with
``settle()`` or ``responses(n)``; they never wait on wall-clock time: deadlines are driven by
calling ``check_deadlines()`` with a made-up ``now``.

After a WebSocket upgrade the transport's protocol is the session (``set_protocol``), and
``feed()`` goes to whichever protocol the transport has.  ``upgrade_request()``,
``client_frame()`` and ``parse_frames()`` speak the WebSocket side: masked client frames in,
the server's frames read back from the written bytes.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from esg.state import ServerState

App = Callable[[Any, Any, Any], Awaitable[None]]

HIGH_WATER = 65536  # asyncio's default high-water mark for a transport's write buffer

# How many loop iterations a helper lets pass before it gives up: enough for any chain of
# callbacks and task steps in these tests, small enough to fail fast.
MAX_ROUNDS = 200


class FakeTransport(asyncio.Transport):
    """Collects written bytes; close()/abort() end the connection the way asyncio's transports do.

    Like a real transport, ``close()`` and ``abort()`` call ``connection_lost`` on the next loop
    iteration (``close()`` only once the write buffer could flush, see ``block_writes``), and
    writes after ``abort()`` are dropped.
    """

    def __init__(self, extra: dict[str, Any]) -> None:
        super().__init__()
        self.extra = extra
        self.data = bytearray()
        self.protocol: asyncio.Protocol | None = None
        self.closed = False
        self.aborted = False
        self.lost = False
        self.losing = False  # connection_lost is scheduled
        self.reading = True
        self.read_pauses = 0
        self.read_resumes = 0
        self.dropped = 0
        self.write_blocked = False
        self.unsent = 0  # bytes a real transport would still hold (get_write_buffer_size)
        self.writes = 0  # calls to write(): pipelined answers should share one

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol  # type: ignore[assignment]  # a session is duck-typed

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.aborted or self.lost:
            self.dropped += len(data)
            return
        self.writes += 1
        self.data += data

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def close(self) -> None:
        if not self.is_closing():
            self.closed = True
            if not self.write_blocked and not self.unsent:
                self._lose_connection_soon()  # asyncio flushes the write buffer before it lets go

    def block_writes(self) -> None:
        """The peer stopped reading: the write buffer is over its high-water mark."""
        self.write_blocked = True
        self.unsent = max(self.unsent, HIGH_WATER + 1)
        assert self.protocol is not None
        self.protocol.pause_writing()

    def unblock_writes(self) -> None:
        self.write_blocked = False
        self.unsent = 0
        assert self.protocol is not None
        self.protocol.resume_writing()
        if self.closed:
            self._lose_connection_soon()

    def set_unsent(self, size: int) -> None:
        """``size`` bytes still wait in the write buffer (below the high-water mark unless
        ``block_writes()``); the peer taking some is progress, all of them lets a close finish."""
        self.unsent = size
        if size == 0 and self.closed and not self.write_blocked and not self.aborted:
            self._lose_connection_soon()

    def abort(self) -> None:
        if not self.aborted:
            # Also after close(): asyncio drops the unflushed buffer and lets go at once.
            self.aborted = True
            self._lose_connection_soon()

    def peer_reset(self) -> None:
        """The peer vanished (a reset, a dead network): connection_lost without close/abort."""
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(ConnectionResetError("reset by peer"))

    def pause_reading(self) -> None:
        assert self.reading, "pause_reading() called twice"
        self.reading = False
        self.read_pauses += 1

    def resume_reading(self) -> None:
        assert not self.reading, "resume_reading() without pause_reading()"
        self.reading = True
        self.read_resumes += 1

    def is_reading(self) -> bool:
        return self.reading

    def _lose_connection_soon(self) -> None:
        if not self.losing:  # once, whether close() or abort() came first
            self.losing = True
            asyncio.get_running_loop().call_soon(self._lose_connection)

    def _lose_connection(self) -> None:
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(None)


@dataclass
class FakeConfig:
    """An ``esg.settings.ConnectionSettings``: what connections read of ``esg.Config``."""

    loaded_app: Any
    access_log: bool = False
    root_path: str = ""
    limit_concurrency: int | None = None
    timeout_keep_alive: float = 5.0
    timeout_header: float = 30.0
    timeout_body: float = 60.0
    limit_request_line: int = 8190
    limit_request_fields: int = 100
    limit_request_field_size: int = 8190
    limit_request_head: int = 65536
    limit_request_body: int | None = None
    asgi_version: str = "3.0"
    proxy_trust: Any = None  # an esg.middleware.proxy_headers.TrustedHosts
    ws: str = "auto"
    ws_max_size: int = 16 * 1024 * 1024
    ws_max_queue: int = 32
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True
    http2: bool = True
    http2_max_concurrent_streams: int = 100
    http2_initial_stream_window_size: int = 1 << 20
    http2_initial_connection_window_size: int = 1 << 24
    http2_max_frame_size: int = 16384
    http2_max_header_list_size: int | None = None
    http2_keep_alive_interval: float | None = None


@dataclass
class Response:
    """One response read back from the transport; header names lowercased, body de-chunked."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    chunked: bool = False
    raw_body: bytes = b""

    def values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]

    def header(self, name: bytes) -> bytes | None:
        values = self.values(name)
        assert len(values) <= 1, f"{name!r} sent {len(values)} times"
        return values[0] if values else None


def parse_responses(data: bytes, *, head: bool = False, eof: bool = False) -> list[Response]:
    """Every complete response in ``data``, in order.

    ``head``: the requests were HEAD, so final responses carry no body.  ``eof``: the connection
    has closed, so a response framed by neither length nor chunks ends with ``data``.
    """
    responses = []
    rest = bytes(data)
    while rest:
        parsed = _parse_one(rest, head, eof)
        if parsed is None:
            break
        response, rest = parsed
        responses.append(response)
    return responses


def _parse_one(data: bytes, head: bool, eof: bool) -> tuple[Response, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    version, status, _ = lines[0].split(b" ", 2)
    assert version == b"HTTP/1.1", lines[0]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.lower(), value.strip()))
    response = Response(int(status), headers, b"")
    rest = data[end + 4 :]
    code = response.status
    if head or code < 200 or code in (204, 304):
        return response, rest
    if b"chunked" in b",".join(response.values(b"transfer-encoding")).lower():
        return _read_chunked(response, rest)
    length = response.values(b"content-length")
    if length:
        size = int(length[0])
        if len(rest) < size:
            return None
        response.body = response.raw_body = rest[:size]
        return response, rest[size:]
    if not eof:
        return None
    response.body = response.raw_body = rest
    return response, b""


def _read_chunked(response: Response, data: bytes) -> tuple[Response, bytes] | None:
    response.chunked = True
    body = bytearray()
    position = 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(data[position:line_end], 16)
        start = line_end + 2
        if size == 0:
            if data[start : start + 2] != b"\r\n":
                return None
            response.body = bytes(body)
            response.raw_body = data[: start + 2]
            return response, data[start + 2 :]
        if len(data) < start + size + 2:
            return None
        assert data[start + size : start + size + 2] == b"\r\n", "chunk not followed by CRLF"
        body += data[start : start + size]
        position = start + size + 2


@dataclass
class Connection:
    """One ``HttpProtocol`` of the build under test on a ``FakeTransport``; use inside a loop."""

    protocol_module: Any
    app: App
    config: FakeConfig
    state: ServerState
    app_state: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        extra = {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}
        extra.update(self.extra)
        self.transport = FakeTransport(extra)
        self.protocol = self.protocol_module.HttpProtocol(
            config=self.config,
            server_state=self.state,
            app_state=self.app_state,
            _loop=asyncio.get_running_loop(),
        )
        self.transport.protocol = self.protocol
        self.protocol.connection_made(self.transport)

    @property
    def written(self) -> bytes:
        return bytes(self.transport.data)

    @property
    def session(self) -> Any:
        """The transport's protocol once the connection became a WebSocket."""
        current = self.transport.protocol
        assert current is not self.protocol, "the connection was not handed to a session"
        return current

    def feed(self, data: bytes) -> None:
        current = self.transport.protocol
        assert current is not None
        current.data_received(data)

    def split_upgrade(self) -> tuple[bytes, bytes]:
        """The written bytes as (response head up to its blank line, what followed)."""
        written = self.written
        end = written.find(b"\r\n\r\n")
        assert end >= 0, f"no response head written: {written!r}"
        return written[: end + 4], written[end + 4 :]

    def frames(self) -> list[Frame]:
        """The complete frames written after the 101 response head."""
        head, rest = self.split_upgrade()
        assert head.startswith(b"HTTP/1.1 101 "), head
        found, _ = parse_frames(rest)
        return found

    async def settle(self, rounds: int = 30) -> None:
        """Let every ready task and callback run."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def until(self, predicate: Callable[[], bool], what: str = "condition") -> None:
        for _ in range(MAX_ROUNDS):
            if predicate():
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{what} not reached; written so far: {self.written!r}")

    async def responses(self, count: int = 1, *, head: bool = False) -> list[Response]:
        """Run until ``count`` complete responses were written; return them (all of them)."""
        found: list[Response] = []

        def enough() -> bool:
            found[:] = parse_responses(self.written, head=head, eof=self.transport.is_closing())
            return len(found) >= count

        await self.until(enough, f"{count} response(s)")
        await self.settle(3)  # let callbacks queued by the last write run, then re-read
        return parse_responses(self.written, head=head, eof=self.transport.is_closing())

    async def response(self, *, head: bool = False) -> Response:
        found = await self.responses(1, head=head)
        assert len(found) == 1, found
        return found[0]

    async def closed(self) -> None:
        await self.until(lambda: self.transport.lost, "connection_lost")


def connect(
    build: Any,
    app: App,
    *,
    state: ServerState | None = None,
    app_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    **config: Any,
) -> Connection:
    """A ``Connection`` for ``app`` on the build under test; call from inside a running loop."""
    return Connection(
        build.module("esg.http.protocol"),
        app,
        FakeConfig(app, **config),
        state if state is not None else ServerState(),
        app_state if app_state is not None else {},
        extra or {},
    )


def run(scenario: Awaitable[Any]) -> Any:
    """Run one test scenario in a fresh event loop."""

    async def main() -> Any:
        return await scenario

    return asyncio.run(main())


async def respond(
    send: Any,
    body: bytes = b"",
    status: int = 200,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a whole response in two messages."""
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def make_app(
    body: bytes = b"hello", status: int = 200, headers: Iterable[tuple[bytes, bytes]] = ()
) -> App:
    """An app that answers every request alike, without reading the body."""
    pairs = list(headers)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await respond(send, body, status, pairs)

    return app


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message["body"]
        if not message["more_body"]:
            return body


def request(
    method: str = "GET",
    target: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    """Request bytes; a Host header is added for HTTP/1.1 unless one is given."""
    pairs = list(headers)
    if version == "1.1" and not any(name.lower() == "host" for name, _ in pairs):
        pairs.insert(0, ("Host", "example.com"))
    lines = [f"{method} {target} HTTP/{version}"] + [f"{name}: {value}" for name, value in pairs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- WebSocket -------------------------------------------------------------------------------

SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
SAMPLE_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
CLIENT_MASK = b"\x5a\x11\xc3\x07"

OP_CONTINUATION = 0
OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10


def upgrade_request(
    target: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    *,
    method: str = "GET",
    version: str = "1.1",
    key: str | None = SAMPLE_KEY,
    ws_version: str | None = "13",
) -> bytes:
    """A WebSocket upgrade request; ``key``/``ws_version`` None leave that header out."""
    pairs = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    if key is not None:
        pairs.append(("Sec-WebSocket-Key", key))
    if ws_version is not None:
        pairs.append(("Sec-WebSocket-Version", ws_version))
    pairs.extend(headers)
    return request(method, target, pairs, version=version)


def mask(payload: bytes, key: bytes = CLIENT_MASK) -> bytes:
    return bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    masked: bool = True,
) -> bytes:
    """One client frame, masked with ``CLIENT_MASK`` unless ``masked`` is False."""
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, bit | 127, n)
    if not masked:
        return head + payload
    return head + CLIENT_MASK + mask(payload)


def client_text(text: str) -> bytes:
    return client_frame(OP_TEXT, text.encode())


def client_close(code: int | None = None, reason: str = "") -> bytes:
    """A client close frame; code None sends an empty payload."""
    payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
    return client_frame(OP_CLOSE, payload)


@dataclass
class Frame:
    """One server frame read back from the transport."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv1: bool = False

    @property
    def close_code(self) -> int | None:
        assert self.opcode == OP_CLOSE, self
        if not self.payload:
            return None
        code: int = struct.unpack("!H", self.payload[:2])[0]
        return code

    @property
    def close_reason(self) -> str:
        assert self.opcode == OP_CLOSE, self
        return self.payload[2:].decode()


def parse_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """The complete server frames at the start of ``data``, and the bytes after them."""
    found = []
    rest = bytes(data)
    while len(rest) >= 2:
        b0, b1 = rest[0], rest[1]
        assert not b1 & 0x80, "a server frame is masked"
        assert not b0 & 0x30, "RSV2/RSV3 set on a server frame"
        n = b1 & 0x7F
        start = 2
        if n == 126:
            if len(rest) < 4:
                break
            n = struct.unpack("!H", rest[2:4])[0]
            start = 4
        elif n == 127:
            if len(rest) < 10:
                break
            n = struct.unpack("!Q", rest[2:10])[0]
            start = 10
        if len(rest) < start + n:
            break
        found.append(Frame(b0 & 0x0F, rest[start : start + n], bool(b0 & 0x80), bool(b0 & 0x40)))
        rest = rest[start + n :]
    return found, rest
