"""One named regression test per known CVE class in esg's peers (see docs/security.md).

Each test's docstring says what the peer's bug was and what esg does instead.  The parser-level
classes also have byte-level cases in tests/conformance/cases.py (``cve_2025_43859_h11_*``,
``cve_2024_1135_gunicorn_*``, ``cve_2022_24761_waitress_*``), replayed there against the parser
alone; here the same bytes go through a whole connection (``HttpProtocol`` of both builds on a
fake transport), whole, one byte at a time and split at seeded random points, and the test
checks what reaches the app and what is answered.  The log-injection test also runs a real
server with the access log on and reads the bytes it wrote.

Tests are named ``test_cve_<number>_<peer>_*``:

* uvicorn CVE-2020-7694: ANSI escapes / CR LF from the client in the log;
* uvicorn CVE-2020-7695: CR LF from the app splits the response head;
* h11 CVE-2025-43859: any two bytes after chunk data taken as CRLF;
* gunicorn CVE-2024-1135: conflicting Transfer-Encoding / Content-Length;
* waitress CVE-2022-24761: ``int()``-style leniency in chunk sizes and lengths;
* websockets CVE-2018-1000518: permessage-deflate decompression bomb;
* aiohttp CVE-2026-54277: line limits bypassed when a line arrives in pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import fake_transport as fake
import pytest
from conformance import cases as corpus
from utils import ServerProcess, run_server

from esg.middleware.message_logger import TRACE_LOG_LEVEL, MessageLoggerMiddleware
from esg.middleware.proxy_headers import TrustedHosts
from esg.websocket.engine import available

run = fake.run


def cases_named(prefix: str) -> list[Any]:
    found = [case for case in corpus.CASES if case.id.startswith(prefix)]
    assert found, f"no conformance case named {prefix}_*"
    return found


# -- capturing esg's loggers ----------------------------------------------------------------------


@pytest.fixture
def esg_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Records of ``esg.error`` and ``esg.access`` (at TRACE), whatever other tests configured."""
    saved = []
    for name in ("esg.error", "esg.access"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.disabled, logger.level))
        logger.addHandler(caplog.handler)
        logger.propagate, logger.disabled = False, False
        logger.setLevel(TRACE_LOG_LEVEL)
    caplog.handler.setLevel(TRACE_LOG_LEVEL)
    yield caplog
    for logger, propagate, disabled, level in saved:
        logger.removeHandler(caplog.handler)
        logger.propagate, logger.disabled = propagate, disabled
        logger.setLevel(level)


def plain_lines(records: list[logging.LogRecord]) -> list[str]:
    """Each record as a bare ``logging.Formatter`` writes it: no help from esg's formatters."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [formatter.format(record) for record in records]


def assert_printable(lines: list[str]) -> None:
    for line in lines:
        assert line.isprintable(), f"a control character reached the log: {line!r}"


# -- uvicorn CVE-2020-7694: log injection through the request ------------------------------------

# C1 controls (0x9b is CSI, 0x85 NEL), a tab: what an X-Forwarded-For value may legally carry.
FORWARDED = b"198.51.100.7\x9b31m\tspoof\x85line"
FORWARDED_ESCAPED = "198.51.100.7\\x9b31m\\x09spoof\\x85line"
ENCODED_TARGET = b"/%1b[31mred%1b[0m%0d%0aINFO:%20forged?q=%1b]0;title%07%0d%0a"


def raw_request(target: bytes, *fields: bytes, method: bytes = b"GET") -> bytes:
    head = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *fields]
    return b"\r\n".join(head) + b"\r\n\r\n"


def ws_upgrade(target: bytes, *fields: bytes) -> bytes:
    return raw_request(
        target,
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
        *fields,
    )


def exchange(server: ServerProcess, data: bytes) -> bytes:
    """Send ``data`` on a new connection; everything the server answers until it closes."""
    with server.raw() as conn:
        conn.send(data)
        conn.sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            return conn.read_to_close()
        return b""


def test_cve_2020_7694_uvicorn_access_log_has_no_control_bytes_from_the_client(
    build: Any,
) -> None:
    """uvicorn CVE-2020-7694: the access log wrote the *decoded* request path, so
    ``GET /%1b[2J`` put a raw ESC (and ``%0d%0a`` a CR LF) into the terminal or log file:
    ANSI escape injection and forged log lines.

    esg logs ``raw_path`` (still percent-encoded), its parser refuses control and 8-bit bytes
    in the target outright, and every field of the access line (also a client address taken
    from X-Forwarded-For, which may carry tabs and C1 controls) is escaped as ``\\xNN``.
    A real server with the access log on, HTTP and WebSocket requests, both builds.
    """
    build.module("esg.http.protocol")  # skips (or fails) when the compiled twin is missing
    env = {"ESG_NO_EXTENSIONS": "0" if build.compiled else "1"}
    xff = b"X-Forwarded-For: " + FORWARDED
    with run_server("apps.ws_apps:app", "--forwarded-allow-ips", "127.0.0.1", env=env) as server:
        ok = exchange(server, raw_request(ENCODED_TARGET, xff, b"Connection: close"))
        escape = exchange(server, raw_request(b"/\x1b[2J\x1b]0;pwned\x07"))
        high = exchange(server, raw_request(b"/\xc2\x9b31m"))
        crlf = exchange(server, b"GET /a\rINFO: forged HTTP/1.1\r\nHost: x\r\n\r\n")
        with server.raw() as conn:
            conn.send(ws_upgrade(b"/echo?id=%1b[31m%0d%0a", xff))
            upgraded = conn.read_head()
            conn.send(fake.client_close(1000))
            conn.read_to_close()
        server.stop()
        log = server.stderr_path.read_bytes()
    assert ok.startswith(b"HTTP/1.1 200 ")
    assert upgraded.status == 101
    for refused in (escape, high, crlf):
        assert refused.startswith(b"HTTP/1.1 400 ")
    text = log.decode("utf-8")
    assert "Traceback" not in text
    for byte in (b"\x1b", b"\r", b"\t", b"\x07", b"\x00"):
        assert byte not in log
    assert_printable(text.splitlines())
    assert not any(line.startswith("INFO: forged") for line in text.splitlines())
    # The target stays percent-encoded; the forwarded client is escaped.
    access = [line for line in text.splitlines() if ENCODED_TARGET.decode() in line]
    assert len(access) == 1 and FORWARDED_ESCAPED + ":0 - " in access[0]
    websocket = [line for line in text.splitlines() if '"WebSocket /echo' in line]
    assert len(websocket) == 1 and FORWARDED_ESCAPED in websocket[0]
    assert "/echo?id=%1b[31m%0d%0a" in websocket[0]
    assert text.count("Invalid HTTP request: 400") == 3


def test_cve_2020_7694_uvicorn_log_arguments_are_escaped_for_any_formatter(
    build: Any, esg_logs: pytest.LogCaptureFixture
) -> None:
    """uvicorn CVE-2020-7694 (see above), with a ``--log-config`` that doesn't use esg's
    AccessFormatter: the values esg passes to the logger are escaped already, so a bare
    ``logging.Formatter`` (or a JSON one) can't write raw client bytes either."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await receive()
        else:
            await fake.respond(send, b"ok")

    async def scenario() -> None:
        options: dict[str, Any] = {"access_log": True, "proxy_trust": TrustedHosts("127.0.0.1")}
        xff = ("X-Forwarded-For", FORWARDED.decode("latin-1"))
        conn = fake.connect(build, app, **options)
        conn.feed(raw_request(ENCODED_TARGET, b"X-Forwarded-For: " + FORWARDED))
        await conn.response()
        ws = fake.connect(build, app, **options)
        ws.feed(fake.upgrade_request("/ws?%1b[2J", [xff]))
        await ws.until(lambda: b"\r\n\r\n" in ws.written, "the 101 response")
        ws.feed(fake.client_close(1000))
        await ws.closed()

    run(scenario())
    access = [record for record in esg_logs.records if record.name == "esg.access"]
    assert len(access) == 2
    for record in access:
        assert all(str(arg).isprintable() for arg in record.args or ())
        assert str(record.args[0]).startswith(FORWARDED_ESCAPED)  # type: ignore[index]
    assert_printable(plain_lines(esg_logs.records))


@pytest.mark.parametrize(
    "data",
    [
        b"GET /\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /\x9b2J HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x1b[2J\r\n\r\n",
        b"G\x1bT / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \x1b[2J\r\n\r\n",
    ],
    ids=["esc-target", "c1-target", "cr-target", "esc-field", "esc-method", "esc-host"],
)
def test_cve_2020_7694_uvicorn_refused_requests_log_no_client_bytes(
    build: Any, esg_logs: pytest.LogCaptureFixture, data: bytes
) -> None:
    """uvicorn CVE-2020-7694 (see above), for requests esg refuses: the warning names the
    problem ("Invalid request target"), never quotes the offending bytes."""
    seen: list[Any] = []

    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(), access_log=True)
        conn.feed(data)
        seen.append(await conn.response())
        await conn.closed()

    run(scenario())
    assert seen[0].status == 400
    assert [r.getMessage() for r in esg_logs.records if r.name == "esg.error"]
    assert_printable(plain_lines(esg_logs.records))


def test_cve_2020_7694_uvicorn_message_trace_escapes_the_forwarded_client(
    esg_logs: pytest.LogCaptureFixture,
) -> None:
    """uvicorn CVE-2020-7694 (see above), in ``--log-level trace``: the message logger's line
    prefix shows the client, which behind a proxy comes from X-Forwarded-For."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await fake.respond(send, b"ok")

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "client": (FORWARDED.decode("latin-1"), 0),
        "path": "/\x1b[2J\r\n",  # decoded by the server: the app may see anything
        "raw_path": b"/%1b[2J%0d%0a",
        "headers": [(b"x-a", b"\x9b")],
    }
    run(MessageLoggerMiddleware(app)(scope, receive, send))
    lines = plain_lines(esg_logs.records)
    assert len(lines) == 4 and all(FORWARDED_ESCAPED in line for line in lines)
    assert_printable(lines)


# -- uvicorn CVE-2020-7695: response splitting through header values ------------------------------

INJECTIONS: list[tuple[bytes | bytearray, bytes | bytearray]] = [
    (b"x-bad", b"ok\r\nset-cookie: evil=1"),
    (b"x-bad", b"ok\nset-cookie: evil=1"),
    (b"x-bad", b"ok\rset-cookie: evil=1"),
    (b"x-bad", b"ok\x00set-cookie: evil=1"),
    (b"set-cookie: evil=1\r\nx-bad", b"v"),
    (b"x-bad\nset-cookie", b"evil=1"),
    (b"set-cookie:evil=1", b"v"),
    (bytearray(b"x-bad"), bytearray(b"ok\r\nset-cookie: evil=1")),
]


@pytest.mark.parametrize(
    "header", INJECTIONS, ids=[repr(bytes(n) + bytes(v)) for n, v in INJECTIONS]
)
def test_cve_2020_7695_uvicorn_header_with_cr_or_lf_is_never_sent(
    build: Any, esg_logs: pytest.LogCaptureFixture, header: tuple[bytes, bytes]
) -> None:
    """uvicorn CVE-2020-7695: header names and values from the app were written as they were,
    so a value with CR LF (often built from a query parameter) split the response: injected
    headers, or a whole second response.

    esg validates every name as a token and refuses values with CR, LF or NUL: nothing of the
    response is sent, the error is logged (escaped, by repr), and the connection is closed.
    """
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await fake.respond(send, b"body", headers=[header])
        except Exception as exc:
            errors.append(exc)
            raise

    async def scenario() -> bytes:
        conn = fake.connect(build, app)
        conn.feed(raw_request(b"/"))
        await conn.closed()
        await conn.settle()
        return conn.written

    written = run(scenario())
    assert b"evil" not in written and b"set-cookie" not in written
    assert written == b""
    assert [type(error).__name__ for error in errors] == ["InvalidResponse"]
    assert any("Exception in ASGI application" in r.getMessage() for r in esg_logs.records)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.accept", "subprotocol": "chat\r\nset-cookie: evil=1"},
        {"type": "websocket.accept", "subprotocol": "chat\nset-cookie"},
        {"type": "websocket.accept", "subprotocol": "chat set-cookie: evil=1"},
        {"type": "websocket.accept", "subprotocol": "caf\u00e9"},
        {"type": "websocket.accept", "headers": [(b"x-bad", b"ok\r\nset-cookie: evil=1")]},
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"x-bad", b"ok\r\nset-cookie: evil=1")],
        },
    ],
    ids=["subprotocol-crlf", "subprotocol-lf", "subprotocol-space", "subprotocol-8bit",
         "accept-header", "denial-header"],
)  # fmt: skip
def test_cve_2020_7695_uvicorn_websocket_head_cannot_be_split(
    build: Any, esg_logs: pytest.LogCaptureFixture, message: dict[str, Any]
) -> None:
    """uvicorn CVE-2020-7695 (see above), for the WebSocket handshake: the 101 response
    carries the app's headers and its chosen subprotocol, the denial response its headers.

    esg checks the subprotocol is a token (RFC 6455 4.3) and the headers as for HTTP; a bad one
    fails the app's ``send()`` and the client gets a plain 500 instead of a split head.
    """

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(message)

    async def scenario() -> bytes:
        conn = fake.connect(build, app)
        conn.feed(fake.upgrade_request(headers=[("Sec-WebSocket-Protocol", "chat")]))
        await conn.closed()
        await conn.settle()
        return conn.written

    written = run(scenario())
    assert b"evil" not in written and b"set-cookie" not in written
    assert written.startswith(b"HTTP/1.1 500 ")
    assert any("Exception in ASGI application" in r.getMessage() for r in esg_logs.records)


# -- the parser-level classes, through a whole connection ---------------------------------------


def feeding_modes(case: Any) -> list[tuple[str, list[bytes]]]:
    return [
        ("whole", corpus.whole(case.raw)),
        ("byte-by-byte", corpus.byte_by_byte(case.raw)),
        ("random", corpus.random_split(case.raw, 1, case.id)),
        ("random", corpus.random_split(case.raw, 2, case.id)),
    ]


def serve(build: Any, pieces: list[bytes], **options: Any) -> tuple[list[str], bytes, int]:
    """Feed ``pieces`` to one connection, letting the app run between them.

    The app records each request's target, reads the whole body and answers 200.  Returns the
    targets the app saw, everything written, and how many bytes were fed before the connection
    started closing (the rest are never even offered to esg).
    """
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["raw_path"].decode("latin-1"))
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        with contextlib.suppress(OSError):
            await fake.respond(send, b"ok")

    async def scenario() -> tuple[bytes, int]:
        conn = fake.connect(build, app, **options)
        fed = 0
        for piece in pieces:
            if conn.transport.is_closing():
                break
            conn.feed(piece)
            fed += len(piece)
            await asyncio.sleep(0)
        await conn.closed()
        await conn.settle()
        return conn.written, fed

    written, fed = run(scenario())
    return seen, written, fed


def check_refused_case(build: Any, case: Any) -> None:
    """The case's bytes through a connection: its valid requests are answered in order, the
    failing one gets the corpus's status, and nothing after it reaches the app."""
    assert not case.valid
    for mode, pieces in feeding_modes(case):
        seen, written, _ = serve(build, pieces, **case.limits)
        responses = fake.parse_responses(written, eof=True)
        statuses = [response.status for response in responses]
        assert statuses[:-1] == [200] * len(case.requests), (mode, statuses)
        assert statuses[-1] in case.errors, (mode, statuses)
        # The failing message's head may reach the app (its body never completes); nothing
        # after it does.
        assert len(seen) <= len(case.requests) + case.pending, (mode, seen)
        assert "/smuggled" not in seen


@pytest.mark.parametrize("case", cases_named("cve_2025_43859_h11"), ids=lambda case: str(case.id))
def test_cve_2025_43859_h11_bytes_after_chunk_data_must_be_crlf(build: Any, case: Any) -> None:
    """h11 CVE-2025-43859: after a chunk's data h11 skipped any two bytes as if they were the
    CRLF, so ``5\\r\\nhelloXX`` was accepted; a proxy reading the chunk differently let a second
    request be smuggled inside the body.

    esg requires exactly CRLF after chunk data (docs/security.md row 24): 400, close, and the
    request hidden after the bad terminator never reaches the app.
    """
    check_refused_case(build, case)


@pytest.mark.parametrize(
    "case", cases_named("cve_2024_1135_gunicorn"), ids=lambda case: str(case.id)
)
def test_cve_2024_1135_gunicorn_conflicting_framing_is_refused(build: Any, case: Any) -> None:
    """gunicorn CVE-2024-1135: with several Transfer-Encoding fields (``chunked`` then
    ``identity``/``gzip``) or TE next to Content-Length, gunicorn picked a framing a front proxy
    didn't, and the rest of the body became a smuggled request.

    esg refuses Content-Length with Transfer-Encoding, a coding list not ending in ``chunked``
    and ``chunked`` twice (docs/security.md rows 19-20): 400 (501 for unknown codings), close.
    """
    check_refused_case(build, case)


@pytest.mark.parametrize(
    "case", cases_named("cve_2022_24761_waitress"), ids=lambda case: str(case.id)
)
def test_cve_2022_24761_waitress_numbers_are_strict_digits(build: Any, case: Any) -> None:
    """waitress CVE-2022-24761: chunk sizes and Content-Length went through ``int()``, which
    accepts ``+3``, ``0x3`` and surrounding whitespace; a proxy that read them otherwise
    disagreed on where the body ended (request smuggling).

    esg accepts only ``1*HEXDIG`` chunk sizes and ``1*DIGIT`` lengths (docs/security.md rows 15
    and 23): 400, close.
    """
    check_refused_case(build, case)


def test_every_peer_parser_cve_has_corpus_cases() -> None:
    """The corpus keeps its named CVE cases (this file and the parser tests replay them)."""
    for prefix in ("cve_2025_43859_h11", "cve_2024_1135_gunicorn", "cve_2022_24761_waitress"):
        assert any(not case.valid for case in cases_named(prefix))


# -- websockets CVE-2018-1000518: decompression bomb ---------------------------------------------

ENGINES = ["auto", "websockets", "wsproto"]
BOMB_SIZE = 16 * 1024 * 1024
WS_MAX_SIZE = 64 * 1024


@functools.lru_cache(maxsize=1)
def deflate_bomb() -> bytes:
    """16 MiB of zeros as one permessage-deflate payload (about 16 KiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(b"\x00" * BOMB_SIZE) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def bomb_frames(fragment: int) -> bytes:
    payload = deflate_bomb()
    if not fragment:
        return fake.client_frame(fake.OP_BINARY, payload, rsv1=True)
    parts = [payload[i : i + fragment] for i in range(0, len(payload), fragment)]
    frames = [fake.client_frame(fake.OP_BINARY, parts[0], fin=False, rsv1=True)]
    frames += [fake.client_frame(fake.OP_CONTINUATION, part, fin=False) for part in parts[1:-1]]
    frames.append(fake.client_frame(fake.OP_CONTINUATION, parts[-1]))
    return b"".join(frames)


def ws_recorder(received: list[dict[str, Any]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await receive())
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return

    return app


async def opened_ws(build: Any, app: Any, headers: Any = (), **options: Any) -> Any:
    conn = fake.connect(build, app, **options)
    conn.feed(fake.upgrade_request(headers=headers))
    await conn.until(lambda: b"\r\n\r\n" in conn.written, "the 101 response")
    head, _ = conn.split_upgrade()
    assert head.startswith(b"HTTP/1.1 101 "), head
    await conn.settle()
    return conn


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fragment", [0, 1024], ids=["one-frame", "fragments"])
def test_cve_2018_1000518_websockets_decompression_bomb_is_refused(
    build: Any, engine: str, fragment: int
) -> None:
    """websockets CVE-2018-1000518: a compressed message was inflated whole before its size
    was checked, so ~16 KiB on the wire could cost gigabytes of memory.

    esg checks ``--ws-max-size`` after decompression and inflates at most that much (+1 byte):
    the 16 MiB bomb against a 64 KiB limit is closed with 1009, the app never gets it, and the
    memory allocated while reading it stays far below the inflated size.  For every engine.
    """
    if engine != "auto" and not available(engine):
        pytest.skip(f"{engine} is not installed")
    received: list[dict[str, Any]] = []
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate")]
    frames = bomb_frames(fragment)
    peak: list[int] = []

    async def scenario() -> None:
        conn = await opened_ws(
            build, ws_recorder(received), offer, ws=engine, ws_max_size=WS_MAX_SIZE
        )
        tracemalloc.start()
        try:
            for start in range(0, len(frames), 4096):
                conn.feed(frames[start : start + 4096])
                if conn.transport.is_closing():
                    break
            peak.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        await conn.closed()
        (close,) = conn.frames()
        assert close.close_code == 1009
        await conn.settle()

    run(scenario())
    assert received[0] == {"type": "websocket.connect"}
    assert [message["type"] for message in received[1:]] == ["websocket.disconnect"]
    assert received[-1]["code"] == 1009
    assert peak[0] < 4 * 1024 * 1024, f"{peak[0]} bytes allocated while reading the bomb"


# -- aiohttp CVE-2026-54277: limits hold when the bytes trickle in -------------------------------

HEAD = b"GET / HTTP/1.1\r\nHost: example.com\r\n"
CHUNKED_HEAD = b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
SLACK = 1024  # bytes esg may read past a limit before it notices (one scan, one read)

HEAD_LIMIT = 65536 + SLACK  # never-ending heads: the 64 KiB head limit bounds the buffer


def fields_of(size: int, count: int) -> bytes:
    return b"".join(b"X-F%d: %s\r\n" % (i, b"v" * size) for i in range(count))


# name: (bytes, accepted statuses, the most esg may read before it answers (None: all), options)
TRICKLED = {
    "request-line": (b"GET /" + b"a" * 20_000, (414,), 8190 + SLACK, {}),
    "request-line-configured": (b"GET /" + b"a" * 5000, (414,), 1000 + SLACK,
                                {"limit_request_line": 1000}),
    "field-line": (HEAD + b"X-Big: " + b"v" * 20_000 + b"\r\n\r\n", (431,), None, {}),
    "field-line-configured": (HEAD + b"X-Big: " + b"v" * 600 + b"\r\n\r\n", (431,), None,
                              {"limit_request_field_size": 500}),
    "field-line-never-ending": (HEAD + b"X-Big: " + b"v" * 100_000, (431,), HEAD_LIMIT, {}),
    "field-count": (HEAD + fields_of(1, 101) + b"\r\n", (431,), None, {}),
    "field-count-never-ending": (HEAD + fields_of(1, 20_000), (431,), HEAD_LIMIT, {}),
    "head-size": (HEAD + fields_of(1000, 80), (431,), HEAD_LIMIT, {}),
    "chunk-extensions": (CHUNKED_HEAD + b"1;" + b"e" * 30_000 + b"\r\nx\r\n0\r\n\r\n", (400, 413),
                         len(CHUNKED_HEAD) + 16384 + SLACK, {}),
    "chunk-extensions-many": (CHUNKED_HEAD + b"1;e=1\r\nx\r\n" * 6000 + b"0\r\n\r\n", (400, 413),
                              len(CHUNKED_HEAD) + 11 * (16384 // 4 + 1) + SLACK, {}),
    "chunk-size-line": (CHUNKED_HEAD + b"0" * 20_000 + b"1\r\nx\r\n0\r\n\r\n", (400,),
                        len(CHUNKED_HEAD) + 16384 + SLACK, {}),
    "trailer-field": (CHUNKED_HEAD + b"1\r\nx\r\n0\r\nX-T: " + b"v" * 9000 + b"\r\n\r\n", (431,),
                      None, {}),
    "trailers": (CHUNKED_HEAD + b"1\r\nx\r\n0\r\n" + fields_of(1000, 80), (431,),
                 len(CHUNKED_HEAD) + HEAD_LIMIT, {}),
    "chunked-body": (CHUNKED_HEAD + b"1\r\nx\r\n" * 3000 + b"0\r\n\r\n", (413,),
                     len(CHUNKED_HEAD) + 1000 * 6 + SLACK, {"limit_request_body": 1000}),
}  # fmt: skip


@pytest.mark.parametrize("piece", [1, 7], ids=["1-byte-reads", "7-byte-reads"])
@pytest.mark.parametrize("name", sorted(TRICKLED))
def test_cve_2026_54277_aiohttp_limits_hold_when_bytes_trickle_in(
    build: Any, name: str, piece: int
) -> None:
    """aiohttp CVE-2026-54277 (GHSA-63hw-fmq6-xxg2): the C parser checked ``max_line_size``
    per read, so a request line or header line sent in small fragments grew without limit.

    esg counts every limit over everything buffered for the message, not per read: the
    request line (414), one field line, the field count and the whole head (431), chunk-size
    lines and extensions, trailers (431) and ``--limit-request-body`` for chunked bodies (413)
    all trip at the same point whether the bytes come whole or a few at a time, and esg has
    read at most the limit (plus one read) when it answers and closes.
    """
    raw, statuses, most, options = TRICKLED[name]
    pieces = [raw[i : i + piece] for i in range(0, len(raw), piece)]
    seen, written, fed = serve(build, pieces, **options)
    answers = [(r.status, r.body) for r in fake.parse_responses(written, eof=True)]
    assert [status for status, _ in answers] in [[status] for status in statuses]
    if most is not None:
        assert fed <= most, f"{fed} bytes read before the limit tripped"
    assert all(path == "/upload" for path in seen)  # only a chunked head may reach the app
    _, whole, _ = serve(build, [raw], **options)
    assert [(r.status, r.body) for r in fake.parse_responses(whole, eof=True)] == answers


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shape", ["one-frame", "fragments", "compressed"])
def test_cve_2026_54277_aiohttp_ws_max_size_holds_when_bytes_trickle_in(
    build: Any, engine: str, shape: str
) -> None:
    """aiohttp CVE-2026-54277 (see above), for WebSocket messages: ``--ws-max-size`` holds
    when a message arrives one byte per read, as one big frame, as tiny fragments, or
    compressed; the close (1009) comes before esg has read much more than the limit."""
    if engine != "auto" and not available(engine):
        pytest.skip(f"{engine} is not installed")
    max_size = 1000
    received: list[dict[str, Any]] = []
    headers: list[tuple[str, str]] = []
    if shape == "one-frame":
        raw = fake.client_frame(fake.OP_BINARY, b"x" * 5000)
        most = 14 + max_size + SLACK
    elif shape == "fragments":
        parts = [fake.client_frame(fake.OP_BINARY, b"x", fin=False)]
        parts += [fake.client_frame(fake.OP_CONTINUATION, b"x", fin=False)] * 5000
        raw = b"".join(parts)
        most = 7 * max_size + SLACK
    else:
        headers = [("Sec-WebSocket-Extensions", "permessage-deflate")]
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        payload = compressor.compress(random.Random(1).randbytes(400) * 50)
        payload += compressor.flush(zlib.Z_SYNC_FLUSH)
        raw = fake.client_frame(fake.OP_BINARY, payload[:-4], rsv1=True)
        most = len(raw)  # compressed: the limit applies to what it inflates to

    async def scenario() -> int:
        conn = await opened_ws(
            build, ws_recorder(received), headers, ws=engine, ws_max_size=max_size
        )
        fed = 0
        for index in range(len(raw)):
            if conn.transport.is_closing():
                break
            conn.feed(raw[index : index + 1])
            fed += 1
        await conn.closed()
        (close,) = conn.frames()
        assert close.close_code == 1009
        await conn.settle()
        return fed

    fed = run(scenario())
    assert fed <= most, f"{fed} bytes read before the limit tripped"
    assert [message["type"] for message in received[1:]] == ["websocket.disconnect"]
    assert received[-1]["code"] == 1009
