"""WebSocket sessions through a real ``HttpProtocol`` (both builds) on a fake transport.

Every test sends an upgrade request to the HTTP protocol of the build under test, which hands
the transport over to a ``WebSocketSession`` (``transport.set_protocol``); the test then plays
the client with masked frames and reads back the exact bytes the server wrote.  Deadlines are
driven by calling ``check_deadlines`` with a made-up clock: nothing waits on wall-clock time.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import fake_transport as fake
import pytest

from esg.http.errors import ClientDisconnected
from esg.middleware.proxy_headers import TrustedHosts
from esg.state import ServerState
from esg.websocket.session import CLOSE_TIMEOUT, PENDING_LIMIT, WebSocketSession

run = fake.run
upgrade = fake.upgrade_request
Frame = fake.Frame

ACCEPT = {"type": "websocket.accept"}
APP_EXCEPTION = "Exception in ASGI application"


def disconnect(code: int, reason: str = "") -> dict[str, Any]:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


def text(data: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": data}


def binary(data: bytes) -> dict[str, Any]:
    return {"type": "websocket.receive", "bytes": data}


def close_frame(code: int, reason: str = "") -> fake.Frame:
    return Frame(fake.OP_CLOSE, struct.pack("!H", code) + reason.encode())


@pytest.fixture
def error_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Records of ``esg.error``, whatever another test did to esg's logging configuration."""
    logger = logging.getLogger("esg.error")
    saved = (logger.propagate, logger.disabled)
    logger.addHandler(caplog.handler)
    logger.propagate, logger.disabled = False, False
    caplog.set_level(logging.DEBUG, logger="esg.error")
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate, logger.disabled = saved


def logged(log: pytest.LogCaptureFixture, fragment: str) -> list[logging.LogRecord]:
    return [record for record in log.records if fragment in record.getMessage()]


def recorder(
    received: list[dict[str, Any]], *, echo: bool = False, accept: dict[str, Any] | None = None
) -> Any:
    """Accepts (with ``accept``'s fields), then records every message until the disconnect;
    with ``echo`` each data message is sent back."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await receive())
        await send({"type": "websocket.accept", **(accept or {})})
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return
            if echo:
                data = {key: message[key] for key in ("text", "bytes") if key in message}
                await send({"type": "websocket.send", **data})

    return app


async def opened(build: Any, app: Any, data: bytes | None = None, **config: Any) -> Any:
    """A connection whose upgrade the app has accepted (the 101 head is written)."""
    conn = fake.connect(build, app, **config)
    conn.feed(upgrade() if data is None else data)
    await conn.until(lambda: b"\r\n\r\n" in conn.written, "the 101 response")
    head, _ = conn.split_upgrade()
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head
    await conn.settle()
    return conn


async def refused(build: Any, app: Any, data: bytes | None = None, **config: Any) -> Any:
    """A connection the app answered with HTTP instead of accepting; waits until it is lost."""
    conn = fake.connect(build, app, **config)
    conn.feed(upgrade() if data is None else data)
    await conn.closed()
    await conn.settle()
    return conn


def http_answer(state: ServerState, status_line: bytes, lines: bytes, body: bytes = b"") -> bytes:
    """A whole response as esg writes it: status line, default lines, ``lines``, body."""
    return status_line + state.common_lines + lines + b"\r\n" + body


# -- the handshake reaches the app -----------------------------------------------------------


def test_upgrade_request_reaches_the_app_as_a_websocket_scope(build: Any) -> None:
    scopes: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        messages.append(await receive())
        await send({"type": "websocket.close"})

    data = upgrade(
        "/chat/caf%C3%A9?room=1&x=%20",
        [
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Protocol", "v2.json"),
            ("X-Custom", "Some Value"),
        ],
    )

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(data)
        await conn.closed()

    run(scenario())
    assert messages == [{"type": "websocket.connect"}]
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert "method" not in scope
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["path"] == "/chat/café"
    assert scope["raw_path"] == b"/chat/caf%C3%A9"
    assert scope["query_string"] == b"room=1&x=%20"
    assert scope["root_path"] == ""
    assert scope["headers"] == [
        (b"host", b"example.com"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", fake.SAMPLE_KEY.encode()),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-protocol", b"chat, superchat"),
        (b"sec-websocket-protocol", b"v2.json"),
        (b"x-custom", b"Some Value"),
    ]
    assert scope["subprotocols"] == ["chat", "superchat", "v2.json"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["client"] == ("127.0.0.1", 50000)
    assert scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {}


def test_scope_without_subprotocols_over_tls_with_a_root_path(build: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "websocket.close"})

    async def scenario() -> None:
        await refused(build, app, extra={"sslcontext": object()}, root_path="/api")

    run(scenario())
    (scope,) = scopes
    assert scope["scheme"] == "wss"
    assert scope["subprotocols"] == []
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/"
    assert scope["raw_path"] == b"/api/"


@pytest.mark.parametrize(
    ("proto", "tls", "scheme"),
    [("https", False, "wss"), ("wss", False, "wss"), ("http", True, "ws"), (None, True, "wss")],
)
def test_scope_scheme_behind_a_trusted_proxy(
    build: Any, proto: str | None, tls: bool, scheme: str
) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "websocket.close"})

    headers = [("X-Forwarded-For", "203.0.113.7")]
    if proto is not None:
        headers.append(("X-Forwarded-Proto", proto))
    extra = {"sslcontext": object()} if tls else {}

    async def scenario() -> None:
        trust = TrustedHosts("127.0.0.1")
        await refused(build, app, upgrade(headers=headers), extra=extra, proxy_trust=trust)

    run(scenario())
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["scheme"] == scheme
    assert scope["client"] == ("203.0.113.7", 0)


def test_nothing_is_written_until_the_app_answers(build: Any) -> None:
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await go.wait()
        await send(ACCEPT)
        await send({"type": "websocket.close"})

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(upgrade())
        await conn.settle()
        assert conn.written == b""
        assert not conn.transport.is_closing()
        go.set()
        await conn.until(lambda: b"\r\n\r\n" in conn.written, "the 101 response")
        await conn.settle()
        assert conn.frames() == [close_frame(1000)]
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_accept_writes_the_exact_101_response(build: Any) -> None:
    accept: dict[str, Any] = {
        "subprotocol": "chat",
        "headers": [(b"X-Custom", b"1"), (b"set-cookie", b"a=b")],
    }

    async def scenario() -> None:
        conn = await opened(build, recorder([], accept=accept))
        head, rest = conn.split_upgrade()
        date = conn.state.date_line
        assert date.startswith(b"date: ") and date.endswith(b" GMT\r\n")
        assert head == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            + date
            + b"server: esg\r\n"
            + b"upgrade: websocket\r\n"
            + b"connection: Upgrade\r\n"
            + b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            + b"sec-websocket-protocol: chat\r\n"
            + b"X-Custom: 1\r\n"
            + b"set-cookie: a=b\r\n"
            + b"\r\n"
        )
        assert rest == b""
        assert not conn.transport.is_closing()
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_the_apps_server_and_date_headers_replace_esgs_in_the_101(build: Any) -> None:
    accept: dict[str, Any] = {
        "headers": [(b"server", b"mine"), (b"date", b"Thu, 01 Jan 1970 00:00:00 GMT")]
    }

    async def scenario() -> None:
        conn = await opened(build, recorder([], accept=accept))
        head, _ = conn.split_upgrade()
        assert head == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"upgrade: websocket\r\n"
            b"connection: Upgrade\r\n"
            b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"server: mine\r\n"
            b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
            b"\r\n"
        )
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


@pytest.mark.parametrize(
    ("offer", "enabled", "answered"),
    [
        ("permessage-deflate; client_max_window_bits", True, True),
        ("permessage-deflate; client_max_window_bits", False, False),
        (None, True, False),
        ("x-webkit-deflate-frame", True, False),
    ],
)
def test_permessage_deflate_only_when_offered_and_enabled(
    build: Any, offer: str | None, enabled: bool, answered: bool
) -> None:
    headers = [("Sec-WebSocket-Extensions", offer)] if offer else []

    async def scenario() -> None:
        conn = await opened(
            build, recorder([]), upgrade(headers=headers), ws_per_message_deflate=enabled
        )
        head, _ = conn.split_upgrade()
        expected = (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            + conn.state.common_lines
            + b"upgrade: websocket\r\n"
            + b"connection: Upgrade\r\n"
            + b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            + (b"sec-websocket-extensions: permessage-deflate\r\n" if answered else b"")
            + b"\r\n"
        )
        assert head == expected
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


# -- the app refuses, fails or answers with HTTP ---------------------------------------------


def test_close_before_accept_is_a_403(build: Any) -> None:
    after: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 4003})
        after.append(await receive())

    async def scenario() -> None:
        conn = await refused(build, app)
        assert conn.written == http_answer(
            conn.state,
            b"HTTP/1.1 403 Forbidden\r\n",
            b"content-length: 0\r\nconnection: close\r\n",
        )
        assert conn.transport.closed and not conn.transport.aborted
        assert conn.state.connections == set()
        assert conn.state.tasks == set()

    run(scenario())
    assert after == [disconnect(1006)]


SERVER_ERROR_LINES = (
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\nconnection: close\r\n"
)


def expect_500(build: Any, app: Any) -> None:
    async def scenario() -> None:
        conn = await refused(build, app)
        assert conn.written == http_answer(
            conn.state,
            b"HTTP/1.1 500 Internal Server Error\r\n",
            SERVER_ERROR_LINES,
            b"Internal Server Error",
        )
        assert conn.transport.closed and not conn.transport.aborted
        assert conn.state.tasks == set()

    run(scenario())


def test_exception_before_accept_is_a_500(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise ValueError("boom")

    expect_500(build, app)
    (record,) = logged(error_log, APP_EXCEPTION)
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


def test_returning_before_accept_is_a_500(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    expect_500(build, app)
    assert logged(error_log, "returned without accepting or closing the WebSocket")


@pytest.mark.parametrize(
    ("message", "error_type"),
    [
        ({"type": "websocket.send", "text": "too early"}, "RuntimeError"),
        ({"type": "websocket.accept", "subprotocol": b"chat"}, "RuntimeError"),
        ({"type": "websocket.accept", "headers": [(b"bad name", b"x")]}, "InvalidResponse"),
        (
            {"type": "websocket.accept", "headers": [(b"x-header", b"line\r\nbreak")]},
            "InvalidResponse",
        ),
        ({"type": "websocket.http.response.body", "body": b"no start"}, "RuntimeError"),
        ({"type": "http.response.start", "status": 200}, "RuntimeError"),
    ],
    ids=["send", "subprotocol", "name", "value", "body-first", "http"],
)
def test_an_invalid_first_message_is_a_500(
    build: Any, error_log: pytest.LogCaptureFixture, message: dict[str, Any], error_type: str
) -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send(message)
        except Exception as exc:
            errors.append(exc)
            raise

    expect_500(build, app)
    (error,) = errors
    assert type(error).__name__ == error_type
    assert logged(error_log, APP_EXCEPTION)


@pytest.mark.parametrize("swallowed", [False, True], ids=["raised", "swallowed"])
@pytest.mark.parametrize(
    "status", ["401", 401.0, True, None, 0, 99, 100, 101, 103, 199, 600, 700, 1000]
)
def test_an_invalid_http_response_status_is_a_500_with_one_error_line(
    build: Any, error_log: pytest.LogCaptureFixture, status: Any, swallowed: bool
) -> None:
    # The websocket.http.response extension: the status must be a final one, from 200 to 599.
    # A 101 would pass for an accepted handshake, a 700 is no status at all.
    errors: list[BaseException] = []
    after: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "websocket.http.response.start", "status": status})
        except Exception as exc:
            errors.append(exc)
            if not swallowed:
                raise
        after.append(await receive())

    expect_500(build, app)
    (error,) = errors
    assert type(error).__name__ == "InvalidStatus"
    (record,) = [r for r in error_log.records if r.levelno >= logging.ERROR]
    assert record.exc_info is None
    assert record.getMessage() == (
        f"Invalid HTTP status code {status!r} in 'websocket.http.response.start': a response "
        "needs an int from 200 to 599. Answered 500."
    )
    assert after == ([disconnect(1006)] if swallowed else [])


@pytest.mark.parametrize("status", [200, 403, 599])
def test_http_response_statuses_at_the_edges_are_sent(build: Any, status: int) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": status})
        await send({"type": "websocket.http.response.body", "body": b""})

    async def scenario() -> None:
        conn = await refused(build, app)
        assert conn.written.startswith(b"HTTP/1.1 %d " % status)

    run(scenario())


def test_http_response_extension_sends_that_response(build: Any) -> None:
    after: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Basic")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})
        after.append(await receive())
        with pytest.raises(ClientDisconnected):
            await send({"type": "websocket.http.response.body", "body": b"more"})

    async def scenario() -> None:
        conn = await refused(build, app)
        assert conn.written == http_answer(
            conn.state,
            b"HTTP/1.1 401 Unauthorized\r\n",
            b"content-type: text/plain\r\nwww-authenticate: Basic\r\n"
            b"content-length: 8\r\nconnection: close\r\n",
            b"no entry",
        )
        assert conn.transport.closed and not conn.transport.aborted

    run(scenario())
    assert after == [disconnect(1006)]


def test_http_response_extension_keeps_the_apps_content_length(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [(b"content-length", b"4"), (b"connection", b"close")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"gone"})

    async def scenario() -> None:
        conn = await refused(build, app)
        assert conn.written == http_answer(
            conn.state,
            b"HTTP/1.1 404 Not Found\r\n",
            b"content-length: 4\r\nconnection: close\r\n",
            b"gone",
        )

    run(scenario())


def test_http_response_with_a_wrong_content_length_is_aborted(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [(b"content-length", b"10")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"short"})

    async def scenario() -> None:
        conn = await refused(build, app)
        assert conn.written == b""
        assert conn.transport.aborted

    run(scenario())
    assert logged(error_log, "body length differs from content-length")


# -- invalid handshakes never reach the app --------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status_line", "extra", "reason"),
    [
        (
            upgrade(ws_version="12"),
            b"HTTP/1.1 426 Upgrade Required\r\n",
            b"sec-websocket-version: 13\r\n",
            b"Unsupported WebSocket version",
        ),
        (
            upgrade(ws_version=None),
            b"HTTP/1.1 426 Upgrade Required\r\n",
            b"sec-websocket-version: 13\r\n",
            b"Unsupported WebSocket version",
        ),
        (
            upgrade(key="dGhlIHNhbXBsZQ=="),  # 11 bytes, not 16
            b"HTTP/1.1 400 Bad Request\r\n",
            b"",
            b"Invalid Sec-WebSocket-Key",
        ),
        (
            upgrade(key="not base64!"),
            b"HTTP/1.1 400 Bad Request\r\n",
            b"",
            b"Invalid Sec-WebSocket-Key",
        ),
        (
            upgrade(key=None),
            b"HTTP/1.1 400 Bad Request\r\n",
            b"",
            b"WebSocket handshake needs exactly one Sec-WebSocket-Key",
        ),
        (
            upgrade(method="POST"),
            b"HTTP/1.1 400 Bad Request\r\n",
            b"",
            b"WebSocket handshake must use GET",
        ),
        (
            upgrade(version="1.0"),
            b"HTTP/1.1 400 Bad Request\r\n",
            b"",
            b"WebSocket handshake needs HTTP/1.1",
        ),
        (
            upgrade(headers=[("Content-Length", "2")]) + b"hi",
            b"HTTP/1.1 400 Bad Request\r\n",
            b"",
            b"WebSocket handshake must not carry a body",
        ),
        (
            upgrade(headers=[("Sec-WebSocket-Protocol", "chat, two words")]),
            b"HTTP/1.1 400 Bad Request\r\n",
            b"",
            b"Invalid Sec-WebSocket-Protocol",
        ),
    ],
    ids=["v12", "no-version", "short-key", "bad-key", "no-key", "post", "http10", "body", "proto"],
)
def test_invalid_handshake_is_answered_without_the_app(
    build: Any, data: bytes, status_line: bytes, extra: bytes, reason: bytes
) -> None:
    calls: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(data)
        await conn.closed()
        await conn.settle()
        assert conn.written == http_answer(
            conn.state,
            status_line,
            extra
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n" % len(reason),
            reason,
        )
        assert conn.transport.protocol is conn.protocol  # never handed to a session
        assert conn.state.connections == set()

    run(scenario())
    assert calls == []


def test_ws_none_makes_an_upgrade_a_plain_http_request(build: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await fake.respond(send, b"plain")

    async def scenario() -> None:
        conn = fake.connect(build, app, ws="none")
        conn.feed(upgrade("/chat"))
        response = await conn.response()
        assert response.status == 200
        assert response.body == b"plain"
        assert conn.transport.protocol is conn.protocol
        assert not conn.transport.is_closing()

    run(scenario())
    (scope,) = scopes
    assert scope["type"] == "http"
    assert scope["method"] == "GET"
    assert scope["path"] == "/chat"


@pytest.mark.parametrize(
    "headers",
    [
        [("Upgrade", "h2c"), ("Connection", "Upgrade")],
        [("Upgrade", "websocket")],  # no "upgrade" token in Connection
        [("Upgrade", "websocket"), ("Connection", "keep-alive")],
    ],
    ids=["h2c", "no-connection", "keep-alive"],
)
def test_other_upgrades_are_plain_http(build: Any, headers: list[tuple[str, str]]) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await fake.respond(send, b"plain")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        headers_with_key = [*headers, ("Sec-WebSocket-Key", fake.SAMPLE_KEY)]
        conn.feed(fake.request(headers=headers_with_key))
        assert (await conn.response()).body == b"plain"

    run(scenario())
    assert [scope["type"] for scope in scopes] == ["http"]


# -- messages --------------------------------------------------------------------------------


def test_text_and_binary_messages_both_ways(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received, echo=True))
        conn.feed(fake.client_text("héllo"))
        conn.feed(fake.client_frame(fake.OP_BINARY, b"\x00\xff\x10"))
        conn.feed(fake.client_text(""))
        big = bytes(range(256)) * 300  # a 64-bit length on the wire
        conn.feed(fake.client_frame(fake.OP_BINARY, big))
        await conn.settle()
        _, rest = conn.split_upgrade()
        assert rest[:13] == b"\x81\x06h\xc3\xa9llo" + b"\x82\x03\x00\xff\x10"
        assert conn.frames() == [
            Frame(fake.OP_TEXT, "héllo".encode()),
            Frame(fake.OP_BINARY, b"\x00\xff\x10"),
            Frame(fake.OP_TEXT, b""),
            Frame(fake.OP_BINARY, big),
        ]
        conn.feed(fake.client_close(1000))
        await conn.closed()
        await conn.settle()
        assert received[1:] == [
            text("héllo"),
            binary(b"\x00\xff\x10"),
            text(""),
            binary(big),
            disconnect(1000),
        ]

    run(scenario())
    assert received[0] == {"type": "websocket.connect"}


def test_a_fragmented_message_arrives_whole_and_a_ping_between_is_answered(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received))
        conn.feed(fake.client_frame(fake.OP_TEXT, b"one ", fin=False))
        conn.feed(fake.client_frame(fake.OP_PING, b"mid"))
        conn.feed(fake.client_frame(fake.OP_CONTINUATION, b"two \xe2\x82", fin=False))
        conn.feed(fake.client_frame(fake.OP_CONTINUATION, b"\xac"))
        await conn.settle()
        assert conn.frames() == [Frame(fake.OP_PONG, b"mid")]
        assert received[1:] == [text("one two €")]
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_messages_sent_in_one_loop_turn_leave_in_one_write(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        for n in range(3):
            await send({"type": "websocket.send", "text": str(n)})
        await receive()

    async def scenario() -> None:
        conn = await opened(build, app)
        assert conn.frames() == [Frame(fake.OP_TEXT, str(n).encode()) for n in range(3)]
        assert conn.transport.writes == 2  # the 101, then the three frames together
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_compressed_messages_both_ways(build: Any) -> None:
    received: list[dict[str, Any]] = []
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate")]
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    decompressor = zlib.decompressobj(-15)

    def compress(payload: bytes) -> bytes:
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        return data[:-4]

    long_text = "compress me, " * 20
    long_bytes = bytes(range(64)) * 8

    async def scenario() -> None:
        conn = await opened(build, recorder(received, echo=True), upgrade(headers=offer))
        head, _ = conn.split_upgrade()
        assert b"\r\nsec-websocket-extensions: permessage-deflate\r\n" in head
        conn.feed(fake.client_frame(fake.OP_TEXT, compress(long_text.encode()), rsv1=True))
        conn.feed(fake.client_frame(fake.OP_BINARY, compress(long_bytes), rsv1=True))
        conn.feed(fake.client_text("short"))  # a client may send any message uncompressed
        await conn.settle()
        frames = conn.frames()
        assert [(f.opcode, f.rsv1) for f in frames] == [
            (fake.OP_TEXT, True),
            (fake.OP_BINARY, True),
            (fake.OP_TEXT, False),  # too short to be worth compressing
        ]
        assert len(frames[0].payload) < len(long_text)
        tail = b"\x00\x00\xff\xff"
        assert decompressor.decompress(frames[0].payload + tail) == long_text.encode()
        assert decompressor.decompress(frames[1].payload + tail) == long_bytes
        assert frames[2].payload == b"short"
        conn.feed(fake.client_close(1000))
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert received[1:] == [text(long_text), binary(long_bytes), text("short"), disconnect(1000)]


def test_compressed_frame_without_negotiation_is_a_protocol_error(build: Any) -> None:
    received: list[dict[str, Any]] = []
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate")]

    async def scenario() -> None:
        conn = await opened(
            build, recorder(received), upgrade(headers=offer), ws_per_message_deflate=False
        )
        conn.feed(fake.client_frame(fake.OP_TEXT, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv1=True))
        await conn.closed()
        (frame,) = conn.frames()
        assert frame.close_code == 1002

    run(scenario())
    assert received[-1]["code"] == 1002


def test_ping_is_answered_with_a_pong_carrying_its_payload(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received))
        conn.feed(fake.client_frame(fake.OP_PING, b"are you there?"))
        conn.feed(fake.client_frame(fake.OP_PING))
        conn.feed(fake.client_frame(fake.OP_PONG, b"unsolicited"))  # ignored
        await conn.settle()
        _, rest = conn.split_upgrade()
        assert rest == b"\x8a\x0eare you there?" + b"\x8a\x00"
        assert received == [{"type": "websocket.connect"}]  # control frames stay with esg
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_frames_pipelined_with_the_upgrade_request_are_processed_after_accept(
    build: Any,
) -> None:
    received: list[dict[str, Any]] = []
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await receive())
        await go.wait()
        await send(ACCEPT)
        while (message := await receive())["type"] != "websocket.disconnect":
            received.append(message)
        received.append(message)

    early = (
        fake.client_text("early")
        + fake.client_frame(fake.OP_PING, b"p")
        + fake.client_frame(fake.OP_BINARY, b"\x01\x02")
    )

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(upgrade() + early[:9])  # the rest arrives before the app accepts
        await conn.settle()
        conn.feed(early[9:])
        await conn.settle()
        assert conn.written == b""
        assert received == [{"type": "websocket.connect"}]
        go.set()
        await conn.settle()
        head, rest = conn.split_upgrade()
        assert head.startswith(b"HTTP/1.1 101 ")
        assert rest == b"\x8a\x01p"
        conn.feed(fake.client_close(1000))
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert received[1:] == [text("early"), binary(b"\x01\x02"), disconnect(1000)]


def test_a_close_pipelined_with_the_upgrade_request_ends_it_right_after_accept(
    build: Any,
) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = fake.connect(build, recorder(received))
        conn.feed(upgrade() + fake.client_text("hi") + fake.client_close(1001, "bye"))
        await conn.closed()
        assert conn.frames() == [close_frame(1001)]
        await conn.settle()

    run(scenario())
    assert received[1:] == [text("hi"), disconnect(1001, "bye")]


def test_too_much_data_before_accept_is_aborted(build: Any) -> None:
    after: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        after.append(await receive())  # nothing is delivered before accept: waits for the end

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(upgrade() + b"\x00" * PENDING_LIMIT)
        await conn.settle()
        assert not conn.transport.is_closing()
        conn.feed(b"\x00")
        assert conn.transport.aborted
        await conn.closed()
        await conn.settle()
        assert conn.written == b""

    run(scenario())
    assert after == [disconnect(1006)]


# -- the closing handshake -------------------------------------------------------------------


def test_client_close_is_echoed_and_ends_the_connection(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received))
        session = conn.session
        assert session in conn.state.connections
        conn.feed(fake.client_close(1001, "going away"))
        await conn.closed()
        _, rest = conn.split_upgrade()
        assert rest == b"\x88\x02\x03\xe9"
        assert conn.transport.closed and not conn.transport.aborted
        assert session not in conn.state.connections
        await conn.settle()
        assert conn.state.tasks == set()

    run(scenario())
    assert received[1:] == [disconnect(1001, "going away")]


def test_client_close_without_a_code_gets_an_empty_close(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received))
        conn.feed(fake.client_close())
        await conn.closed()
        _, rest = conn.split_upgrade()
        assert rest == b"\x88\x00"
        await conn.settle()

    run(scenario())
    assert received[1:] == [disconnect(1005)]


def test_frames_after_the_clients_close_are_ignored(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received))
        conn.feed(
            fake.client_close(1000)
            + fake.client_text("late")
            + fake.client_frame(fake.OP_PING, b"late")
        )
        await conn.closed()
        assert conn.frames() == [close_frame(1000)]
        await conn.settle()

    run(scenario())
    assert received[1:] == [disconnect(1000)]


def test_server_close_waits_for_the_clients_reply(build: Any) -> None:
    received: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})
        try:
            await send({"type": "websocket.send", "text": "after close"})
        except OSError as exc:
            errors.append(exc)
        received.append(await receive())

    async def scenario() -> None:
        conn = await opened(build, app)
        _, rest = conn.split_upgrade()
        assert rest == b"\x88\x06\x0f\xa0done"
        assert not conn.transport.is_closing()
        conn.feed(fake.client_text("in flight"))  # dropped: the app said it is done
        conn.feed(fake.client_frame(fake.OP_PING, b"x"))  # no pong after our close
        await conn.settle()
        assert received == []
        assert not conn.transport.is_closing()
        conn.feed(fake.client_close(4000, "done"))
        await conn.closed()
        assert conn.transport.closed and not conn.transport.aborted
        assert conn.frames() == [close_frame(4000, "done")]
        await conn.settle()

    run(scenario())
    assert received == [disconnect(4000, "done")]
    (error,) = errors
    assert isinstance(error, ClientDisconnected)


def test_close_without_a_code_sends_1000(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.close"})

    async def scenario() -> None:
        conn = await opened(build, app)
        assert conn.frames() == [close_frame(1000)]
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_exception_after_accept_closes_with_1011(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.send", "text": "first"})
        raise ValueError("boom")

    async def scenario() -> None:
        conn = await opened(build, app)
        assert conn.frames() == [Frame(fake.OP_TEXT, b"first"), close_frame(1011)]
        assert not conn.transport.is_closing()  # waits for the client's close
        conn.feed(fake.client_close(1011))
        await conn.closed()
        assert conn.state.tasks == set()

    run(scenario())
    (record,) = logged(error_log, APP_EXCEPTION)
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


def test_returning_after_accept_closes_with_1000(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.send", "bytes": b"bye"})

    async def scenario() -> None:
        conn = await opened(build, app)
        _, rest = conn.split_upgrade()
        assert rest == b"\x82\x03bye" + b"\x88\x02\x03\xe8"
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


@pytest.mark.parametrize("result", [True, 0, "done", {"status": "ok"}])
def test_returning_a_value_after_accept_closes_with_1011(
    build: Any, result: Any, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> Any:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.send", "bytes": b"bye"})
        return result

    async def scenario() -> None:
        conn = await opened(build, app)
        assert conn.frames() == [Frame(fake.OP_BINARY, b"bye"), close_frame(1011)]
        conn.feed(fake.client_close(1011))
        await conn.closed()

    run(scenario())
    (record,) = [r for r in error_log.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == f"ASGI callable should return None, but returned {result!r}."


@pytest.mark.parametrize(
    ("frame", "code", "options"),
    [
        (fake.client_frame(fake.OP_TEXT, b"hi", masked=False), 1002, {}),
        (fake.client_frame(3, b""), 1002, {}),  # reserved opcode
        (fake.client_frame(fake.OP_PING, b"x" * 126), 1002, {}),
        (fake.client_frame(fake.OP_CONTINUATION, b"x"), 1002, {}),
        (fake.client_frame(fake.OP_TEXT, b"ab\xff\xfe"), 1007, {}),
        (fake.client_frame(fake.OP_CLOSE, b"\x03\xe8\xff"), 1007, {}),
        (fake.client_text("x" * 11), 1009, {"ws_max_size": 10}),
    ],
    ids=["unmasked", "opcode", "long-ping", "continuation", "utf8", "close-utf8", "too-big"],
)
def test_protocol_error_closes_with_its_code(
    build: Any, frame: bytes, code: int, options: dict[str, Any]
) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received), **options)
        conn.feed(fake.client_text("fine") + frame + fake.client_text("never read"))
        await conn.closed()
        assert conn.transport.closed and not conn.transport.aborted
        (close,) = conn.frames()
        assert close.close_code == code
        await conn.settle()
        assert received[1:] == [text("fine"), disconnect(code, close.close_reason)]

    run(scenario())


def test_a_message_of_exactly_max_size_is_accepted(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received), ws_max_size=10)
        conn.feed(fake.client_text("x" * 10))
        conn.feed(fake.client_close(1000))
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert received[1:] == [text("x" * 10), disconnect(1000)]


def test_send_after_the_end_raises_client_disconnected(build: Any) -> None:
    outcomes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        outcomes.append(await receive())
        for message in (
            {"type": "websocket.send", "text": "late"},
            {"type": "websocket.send", "bytes": b"late"},
            {"type": "websocket.close"},
        ):
            try:
                await send(message)
            except OSError as exc:
                outcomes.append(exc)

    async def scenario() -> None:
        conn = await opened(build, app)
        conn.feed(fake.client_close(1000))
        await conn.closed()
        await conn.settle()
        assert conn.frames() == [close_frame(1000)]

    run(scenario())
    assert outcomes[0] == disconnect(1000)
    assert len(outcomes) == 4
    assert all(isinstance(exc, ClientDisconnected) for exc in outcomes[1:])


def test_receive_after_disconnect_keeps_returning_it(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        for _ in range(3):
            received.append(await receive())

    async def scenario() -> None:
        conn = await opened(build, app)
        conn.feed(fake.client_close(3001, "custom"))
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert received == [disconnect(3001, "custom")] * 3


def test_connection_lost_without_a_close_is_1006(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    received: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        received.append(await receive())
        received.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except OSError as exc:
            errors.append(exc)
            raise  # an app that lets it propagate is not an application error

    async def scenario() -> None:
        conn = await opened(build, app)
        conn.feed(fake.client_text("last words"))
        conn.transport.peer_reset()
        await conn.settle()
        assert conn.frames() == []
        assert conn.state.connections == set()
        assert conn.state.tasks == set()

    run(scenario())
    assert received == [text("last words"), disconnect(1006)]
    assert isinstance(errors[0], ClientDisconnected)
    assert not logged(error_log, APP_EXCEPTION)


def test_client_gone_before_accept(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    outcomes: list[Any] = []
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await go.wait()
        try:
            await send(ACCEPT)
        except OSError as exc:
            outcomes.append(exc)
        outcomes.append(await receive())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(upgrade())
        await conn.settle()
        conn.transport.peer_reset()
        go.set()
        await conn.settle()
        assert conn.written == b""
        assert conn.state.connections == set()
        assert conn.state.tasks == set()

    run(scenario())
    assert isinstance(outcomes[0], ClientDisconnected)
    assert outcomes[1:] == [disconnect(1006)]
    assert not logged(error_log, APP_EXCEPTION)


@pytest.mark.parametrize("code", [1006, 1015, 999, 5000])
def test_closing_with_a_code_nobody_may_send_is_an_error(
    build: Any, error_log: pytest.LogCaptureFixture, code: int
) -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        try:
            await send({"type": "websocket.close", "code": code})
        except ValueError as exc:
            errors.append(exc)
            raise

    async def scenario() -> None:
        conn = await opened(build, app)
        assert conn.frames() == [close_frame(1011)]  # the app's error, not its code
        conn.feed(fake.client_close(1011))
        await conn.closed()

    run(scenario())
    assert len(errors) == 1
    assert logged(error_log, APP_EXCEPTION)


def test_eof_from_the_client_lets_the_transport_close(build: Any) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]))
        assert conn.session.eof_received() is None  # asyncio then closes the transport
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


# -- flow control ----------------------------------------------------------------------------


def test_reading_pauses_while_the_queue_is_full(build: Any) -> None:
    received: list[dict[str, Any]] = []
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await go.wait()
        while (message := await receive())["type"] != "websocket.disconnect":
            received.append(message)
            await asyncio.sleep(0)

    async def scenario() -> None:
        conn = await opened(build, app, ws_max_queue=2)
        transport = conn.transport
        conn.feed(fake.client_text("1"))
        await conn.settle()
        assert transport.reading
        conn.feed(fake.client_frame(fake.OP_PING, b"p"))  # control frames don't count
        conn.feed(fake.client_text("2"))
        await conn.settle()
        assert not transport.reading
        assert transport.read_pauses == 1
        assert conn.frames() == [Frame(fake.OP_PONG, b"p")]
        go.set()
        await conn.until(lambda: transport.reading, "reading resumed")
        assert received == [text("1")]  # resumed as soon as the queue was below the limit
        await conn.until(lambda: len(received) == 2, "the app read both messages")
        assert transport.reading
        assert transport.read_resumes == 1
        conn.feed(fake.client_text("3"))
        await conn.settle()
        assert received == [text("1"), text("2"), text("3")]
        assert transport.read_pauses == 1
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_reading_resumes_after_the_app_reads_one_message(build: Any) -> None:
    received: list[dict[str, Any]] = []
    one = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await one.wait()
        received.append(await receive())
        await asyncio.Event().wait()  # reads no more

    async def scenario() -> None:
        conn = await opened(build, app, ws_max_queue=2)
        conn.feed(fake.client_text("1") + fake.client_text("2"))
        await conn.settle()
        assert not conn.transport.reading
        one.set()
        await conn.settle()
        assert received == [text("1")]
        assert conn.transport.reading  # one message waits: below the limit again
        conn.feed(fake.client_text("3"))
        await conn.settle()
        assert not conn.transport.reading
        assert conn.transport.read_pauses == 2
        conn.transport.peer_reset()
        await conn.settle()

    run(scenario())


def test_reading_resumes_once_the_server_closes_so_the_reply_can_arrive(build: Any) -> None:
    # The app returns without reading what is queued: the session's close frame goes out, and
    # the client's close reply must still be read (later messages are dropped anyway).
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await go.wait()

    async def scenario() -> None:
        conn = await opened(build, app, ws_max_queue=2)
        conn.feed(fake.client_text("1") + fake.client_text("2"))
        await conn.settle()
        assert not conn.transport.reading
        go.set()
        await conn.settle()
        assert conn.frames() == [close_frame(1000)]
        assert conn.transport.reading
        conn.feed(fake.client_text("3") + fake.client_close(1000))
        await conn.closed()
        assert conn.transport.closed and not conn.transport.aborted
        assert conn.transport.read_pauses == 1

    run(scenario())


def test_send_waits_while_writing_is_paused(build: Any) -> None:
    progress: list[str] = []
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await go.wait()
        await send({"type": "websocket.send", "text": "one"})
        progress.append("one")
        await send({"type": "websocket.send", "text": "two"})
        progress.append("two")
        await receive()

    async def scenario() -> None:
        conn = await opened(build, app)
        conn.transport.block_writes()
        go.set()
        await conn.settle()
        assert progress == []  # written, then send() waits
        assert conn.frames() == [Frame(fake.OP_TEXT, b"one")]
        conn.transport.unblock_writes()
        await conn.settle()
        assert progress == ["one", "two"]
        assert conn.frames() == [Frame(fake.OP_TEXT, b"one"), Frame(fake.OP_TEXT, b"two")]
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


def test_connection_lost_releases_a_blocked_send(build: Any) -> None:
    outcomes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        try:
            await send({"type": "websocket.send", "text": "one"})
        except OSError as exc:
            outcomes.append(exc)
        outcomes.append(await receive())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.transport.block_writes()  # before the upgrade: the session inherits it
        conn.feed(upgrade())
        await conn.settle()
        assert outcomes == []
        assert conn.frames() == [Frame(fake.OP_TEXT, b"one")]
        conn.transport.peer_reset()
        await conn.settle()

    run(scenario())
    assert isinstance(outcomes[0], ClientDisconnected)
    assert outcomes[1:] == [disconnect(1006)]


# -- deadlines -------------------------------------------------------------------------------


def test_keepalive_ping_without_a_pong_aborts(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received), ws_ping_interval=20, ws_ping_timeout=5)
        session = conn.session
        now = conn.state.now
        session.check_deadlines(now + 19)
        await conn.settle()
        assert conn.frames() == []
        session.check_deadlines(now + 21)
        await conn.settle()
        (ping,) = conn.frames()
        assert ping.opcode == fake.OP_PING and len(ping.payload) == 4
        session.check_deadlines(now + 25)
        assert not conn.transport.is_closing()
        session.check_deadlines(now + 26)
        assert conn.transport.aborted
        await conn.closed()
        await conn.settle()
        assert conn.frames() == [ping]  # no close frame to an unresponsive peer

    run(scenario())
    assert received[1:] == [disconnect(1006, "keepalive ping timeout")]


def test_ping_timeout_waits_while_reading_is_paused_for_a_slow_app(build: Any) -> None:
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await go.wait()  # a slow app: messages pile up and reading pauses
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def scenario() -> None:
        conn = await opened(build, app, ws_max_queue=1, ws_ping_interval=20, ws_ping_timeout=5)
        session = conn.session
        now = conn.state.now
        session.check_deadlines(now + 21)
        await conn.settle()
        (ping,) = conn.frames()
        conn.feed(fake.client_text("queued"))
        await conn.settle()
        assert not conn.transport.reading  # the pong would now wait unread in the socket
        session.check_deadlines(now + 27)
        assert not conn.transport.is_closing()
        go.set()
        await conn.until(lambda: conn.transport.reading, "reading resumed")
        session.check_deadlines(now + 31)  # pushed back by one timeout, to now + 32
        assert not conn.transport.is_closing()
        session.check_deadlines(now + 32.5)  # still no pong once reading again: a dead peer
        assert conn.transport.aborted
        await conn.closed()

    run(scenario())


def test_a_pong_in_time_keeps_the_connection_open(build: Any) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]), ws_ping_interval=20, ws_ping_timeout=5)
        session = conn.session
        now = conn.state.now
        session.check_deadlines(now + 21)
        await conn.settle()
        (ping,) = conn.frames()
        conn.feed(fake.client_frame(fake.OP_PONG, ping.payload))
        session.check_deadlines(now + 30)
        await conn.settle()
        assert not conn.transport.is_closing()
        assert conn.frames() == [ping]  # the next ping is due 20 s after the first
        session.check_deadlines(now + 41)
        await conn.settle()
        assert [frame.opcode for frame in conn.frames()] == [fake.OP_PING, fake.OP_PING]
        session.check_deadlines(now + 45)
        assert not conn.transport.is_closing()
        session.check_deadlines(now + 46)  # the second ping went unanswered
        assert conn.transport.aborted
        await conn.closed()

    run(scenario())


def test_ping_without_a_timeout_never_aborts(build: Any) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]), ws_ping_interval=20, ws_ping_timeout=None)
        now = conn.state.now
        for elapsed in (21, 100, 1000):
            conn.session.check_deadlines(now + elapsed)
        await conn.settle()
        assert [frame.opcode for frame in conn.frames()] == [fake.OP_PING] * 3
        assert not conn.transport.is_closing()
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


@pytest.mark.parametrize("interval", [None, 0])
def test_no_pings_when_the_interval_is_off(build: Any, interval: float | None) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]), ws_ping_interval=interval)
        now = conn.state.now
        for elapsed in (1, 21, 100, 100000):
            conn.session.check_deadlines(now + elapsed)
        await conn.settle()
        assert conn.frames() == []
        assert not conn.transport.is_closing()
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())


@pytest.mark.parametrize("blocked", ["before-upgrade", "after-accept"])
def test_a_client_that_does_not_read_is_aborted_after_timeout_body(
    build: Any, blocked: str
) -> None:
    outcomes: list[Any] = []
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await go.wait()
        try:
            await send({"type": "websocket.send", "text": "x" * 100})
        except OSError as exc:
            outcomes.append(exc)
        outcomes.append(await receive())

    async def scenario() -> None:
        conn = fake.connect(build, app, ws_ping_interval=None, timeout_body=60)
        if blocked == "before-upgrade":  # the HTTP protocol hears of it; the session inherits
            conn.transport.block_writes()
        conn.feed(upgrade())
        await conn.until(lambda: b"\r\n\r\n" in conn.written, "the 101 response")
        if blocked == "after-accept":
            conn.transport.block_writes()
        go.set()
        await conn.settle()
        assert outcomes == []  # send() waits
        now = conn.state.now
        conn.session.check_deadlines(now + 59)
        assert not conn.transport.is_closing()
        conn.session.check_deadlines(now + 61)
        assert conn.transport.aborted
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert isinstance(outcomes[0], ClientDisconnected)
    assert outcomes[1:] == [disconnect(1006)]


def test_a_closed_connection_whose_client_does_not_read_is_aborted(build: Any) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]), ws_ping_interval=None, timeout_body=60)
        conn.transport.block_writes()
        conn.feed(fake.client_close(1000))  # answered and closed; the close can't flush
        await conn.settle()
        assert conn.transport.closed and not conn.transport.lost
        session = conn.session
        assert session in conn.state.connections  # the server must still sweep it
        now = conn.state.now
        session.check_deadlines(now + 59)
        assert not conn.transport.aborted
        session.check_deadlines(now + 61)
        assert conn.transport.aborted
        await conn.closed()
        assert conn.state.connections == set()

    run(scenario())


def test_an_unanswered_close_is_aborted_after_close_timeout(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        await send({"type": "websocket.close", "code": 1001})
        received.append(await receive())

    async def scenario() -> None:
        conn = await opened(build, app)
        assert conn.frames() == [close_frame(1001)]
        now = conn.state.now
        conn.session.check_deadlines(now + CLOSE_TIMEOUT - 1)
        assert not conn.transport.is_closing()
        conn.session.check_deadlines(now + CLOSE_TIMEOUT + 1)
        assert conn.transport.aborted
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert received == [disconnect(1006)]


# -- the server: connections, shutdown, access log -------------------------------------------


def test_the_connection_moves_from_the_http_protocol_to_the_session(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, recorder([]))
        state = conn.state
        assert state.connections == {conn.protocol}
        conn.feed(upgrade())
        session = conn.transport.protocol
        assert isinstance(session, WebSocketSession)
        assert state.connections == {session}
        assert len(state.tasks) == 1
        assert state.total_requests == 1
        await conn.until(lambda: b"\r\n\r\n" in conn.written, "the 101 response")
        conn.protocol.check_deadlines(state.now + 10000)  # no longer the HTTP protocol's
        assert not conn.transport.is_closing()
        conn.feed(fake.client_close(1000))
        await conn.closed()
        await conn.settle()
        assert state.connections == set()
        assert state.tasks == set()

    run(scenario())


def test_an_http_answer_pipelined_before_the_upgrade_goes_out_first(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await fake.respond(send, b"first")
            return
        await recorder(received)(scope, receive, send)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(fake.request() + upgrade() + fake.client_text("hi"))
        await conn.settle()
        first, upgraded = fake.parse_responses(conn.written)
        assert (first.status, first.body) == (200, b"first")
        assert upgraded.status == 101
        assert conn.written.count(b"HTTP/1.1 ") == 2
        conn.feed(fake.client_close(1000))
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert received[1:] == [text("hi"), disconnect(1000)]


def test_server_shutdown_closes_with_1012(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received))
        for connection in list(conn.state.connections):  # what Server.shutdown() does
            connection.shutdown()
        await conn.settle()
        assert conn.frames() == [close_frame(1012)]
        assert received[1:] == [disconnect(1012)]
        assert not conn.transport.is_closing()  # the client answers the close first
        conn.feed(fake.client_close(1012))
        await conn.closed()
        assert conn.frames() == [close_frame(1012)]
        assert conn.state.connections == set()

    run(scenario())
    assert received[1:] == [disconnect(1012)]


@pytest.mark.parametrize("then", ["return", "accept", "close"])
def test_server_shutdown_before_accept_tells_the_app_the_client_is_gone(
    build: Any, then: str, error_log: pytest.LogCaptureFixture
) -> None:
    # Not cancelled: the app hears websocket.disconnect (1006), as when the client leaves, and
    # ends by itself; answering the handshake now raises ClientDisconnected.
    received: list[dict[str, Any]] = []
    deciding = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await receive())
        deciding.set()
        received.append(await receive())  # nothing comes from the client: only the shutdown
        if then == "return":
            outcome.append("returned")
            return
        try:
            await send(ACCEPT if then == "accept" else {"type": "websocket.close"})
        except ClientDisconnected:
            outcome.append("ClientDisconnected")
            raise

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(upgrade())
        await deciding.wait()
        for connection in list(conn.state.connections):  # what Server.shutdown() does
            connection.shutdown()
        await conn.closed()
        await conn.settle()
        assert conn.written == b""
        assert not conn.transport.aborted
        assert conn.state.connections == set()
        assert conn.state.tasks == set()

    run(scenario())
    assert received == [{"type": "websocket.connect"}, disconnect(1006)]
    assert outcome == (["returned"] if then == "return" else ["ClientDisconnected"])
    assert [r for r in error_log.records if r.levelno >= logging.WARNING] == []


def test_server_shutdown_before_the_first_receive(build: Any) -> None:
    received: list[dict[str, Any]] = []
    started = asyncio.Event()
    go_on = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await go_on.wait()
        received.append(await receive())
        received.append(await receive())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(upgrade())
        await started.wait()
        for connection in list(conn.state.connections):
            connection.shutdown()
        go_on.set()
        await conn.closed()
        await conn.settle()
        assert conn.state.tasks == set()

    run(scenario())
    assert received == [{"type": "websocket.connect"}, disconnect(1006)]


def test_graceful_shutdown_timeout_aborts_the_session(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = await opened(build, recorder(received))
        for connection in list(conn.state.connections):  # Server.shutdown() gave up waiting
            connection.abort_connection()
        assert conn.transport.aborted
        await conn.closed()
        await conn.settle()
        assert conn.frames() == []

    run(scenario())
    assert received[1:] == [disconnect(1006)]


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("esg.access")
    saved = (logger.propagate, logger.disabled)
    logger.addHandler(caplog.handler)
    logger.propagate, logger.disabled = False, False
    caplog.set_level(logging.INFO, logger="esg.access")
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate, logger.disabled = saved


def test_access_log_line_for_an_accepted_websocket(
    build: Any, access_log: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]), upgrade("/chat/a%20b?room=1"), access_log=True)
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())
    assert [r.getMessage() for r in access_log.records] == [
        '127.0.0.1:50000 - "WebSocket /chat/a%20b?room=1 HTTP/1.1" 101'
    ]


def test_access_log_line_for_a_refused_websocket(
    build: Any, access_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.close"})

    async def scenario() -> None:
        await refused(build, app, upgrade("/private"), access_log=True)

    run(scenario())
    assert [r.getMessage() for r in access_log.records] == [
        '127.0.0.1:50000 - "WebSocket /private HTTP/1.1" 403'
    ]


def test_no_access_log_line_when_it_is_off(
    build: Any, access_log: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]))
        conn.feed(fake.client_close(1000))
        await conn.closed()

    run(scenario())
    assert access_log.records == []


# -- --log-level trace -----------------------------------------------------------------------

TRACE = 5


@pytest.fixture
def trace_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``esg.error`` at TRACE, recorded; the level is set before any ``ServerState`` exists."""
    logger = logging.getLogger("esg.error")
    saved = (logger.propagate, logger.disabled, logger.level)
    logger.addHandler(caplog.handler)
    logger.propagate, logger.disabled = False, False
    caplog.set_level(TRACE, logger="esg.error")
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate, logger.disabled, _ = saved
    logger.setLevel(saved[2])


def trace_lines(log: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in log.records if record.levelno == TRACE]


@pytest.mark.parametrize(
    ("ending", "code"), [("client-close", 1000), ("shutdown", 1012), ("dropped", 1006)]
)
def test_trace_logs_the_websocket_lifecycle(
    build: Any, trace_log: pytest.LogCaptureFixture, ending: str, code: int
) -> None:
    async def scenario() -> None:
        conn = await opened(build, recorder([]), state=ServerState())
        if ending == "client-close":
            conn.feed(fake.client_close(1000))
        elif ending == "shutdown":
            for connection in list(conn.state.connections):
                connection.shutdown()
            conn.feed(fake.client_close(1012))
        else:
            conn.transport.peer_reset()  # the client vanished without a close frame
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert trace_lines(trace_log) == [
        "127.0.0.1:50000 - HTTP connection made",
        "127.0.0.1:50000 - Upgrading to WebSocket",
        "127.0.0.1:50000 - WebSocket connection made",
        f"127.0.0.1:50000 - WebSocket closed with code {code}",
        "127.0.0.1:50000 - WebSocket connection lost",
    ]


def test_trace_of_a_refused_websocket_has_no_websocket_connection(
    build: Any, trace_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.close"})

    async def scenario() -> None:
        await refused(build, app, state=ServerState())

    run(scenario())
    assert trace_lines(trace_log) == [
        "127.0.0.1:50000 - HTTP connection made",
        "127.0.0.1:50000 - Upgrading to WebSocket",
        "127.0.0.1:50000 - WebSocket connection lost",
    ]
