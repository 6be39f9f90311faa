"""A socket-free harness for ``HttpProtocol``: a fake transport, a tiny config, a reader.

Tests import it as ``fake`` (``import fake_transport as fake``).

``Connection`` wires one protocol (of the build under test) to a ``FakeTransport`` inside the
running event loop.  Tests feed request bytes with ``feed()`` and let the loop run with
``settle()`` or ``responses(n)``; they never wait on wall-clock time: deadlines are driven by
calling ``check_deadlines()`` with a made-up ``now``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from esg.state import ServerState

App = Callable[[Any, Any, Any], Awaitable[None]]

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
        self.reading = True
        self.read_pauses = 0
        self.read_resumes = 0
        self.dropped = 0
        self.write_blocked = False
        self.writes = 0  # calls to write(): pipelined answers should share one

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.aborted or self.lost:
            self.dropped += len(data)
            return
        self.writes += 1
        self.data += data

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        if not self.is_closing():
            self.closed = True
            if not self.write_blocked:  # asyncio flushes the write buffer before it lets go
                self._lose_connection_soon()

    def block_writes(self) -> None:
        """The peer stopped reading: the write buffer is over its high-water mark."""
        self.write_blocked = True
        assert self.protocol is not None
        self.protocol.pause_writing()

    def unblock_writes(self) -> None:
        self.write_blocked = False
        assert self.protocol is not None
        self.protocol.resume_writing()
        if self.closed:
            self._lose_connection_soon()

    def abort(self) -> None:
        if not self.aborted:
            first = not self.is_closing()
            self.aborted = True
            if first:
                self._lose_connection_soon()

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
        asyncio.get_running_loop().call_soon(self._lose_connection)

    def _lose_connection(self) -> None:
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(None)


@dataclass
class FakeConfig:
    """The attributes of ``esg.Config`` that ``HttpProtocol`` reads."""

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
    limit_request_body: int | None = None
    asgi_version: str = "3.0"


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

    def feed(self, data: bytes) -> None:
        self.protocol.data_received(data)

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
