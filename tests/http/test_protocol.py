"""``HttpProtocol`` on a fake transport: scopes, keep-alive, pipelining, flow control, deadlines.

No sockets: every test drives one protocol of the build under test (compiled twin or pure
module) with ``data_received`` and reads back what it wrote.  Deadlines are checked by calling
``check_deadlines`` with a made-up clock, so nothing here waits on wall-clock time.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import subprocess
import sys
import traceback
from typing import Any

import fake_transport as fake
import pytest

from esg.state import ServerState
from tests.utils import TESTS_DIR, subprocess_env

run = fake.run
request = fake.request


def scope_recorder(scopes: list[dict[str, Any]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await fake.respond(send, scope["path"].encode())

    return app


def scope_for(build: Any, data: bytes, **options: Any) -> dict[str, Any]:
    scopes: list[dict[str, Any]] = []

    async def scenario() -> None:
        conn = fake.connect(build, scope_recorder(scopes), **options)
        conn.feed(data)
        await conn.response()

    run(scenario())
    assert len(scopes) == 1
    return scopes[0]


# -- scope -----------------------------------------------------------------------------------


def test_scope_of_a_plain_request(build: Any) -> None:
    data = (
        b"GET /caf%C3%A9/a%20b?x=1&y=%C3%A9 HTTP/1.1\r\n"
        b"Host: example.com\r\nX-Custom: Some Value\r\nACCEPT: */*\r\n\r\n"
    )
    scope = scope_for(build, data)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/a b"
    assert scope["raw_path"] == b"/caf%C3%A9/a%20b"
    assert scope["query_string"] == b"x=1&y=%C3%A9"
    assert scope["root_path"] == ""
    assert scope["headers"] == [
        (b"host", b"example.com"),
        (b"x-custom", b"Some Value"),
        (b"accept", b"*/*"),
    ]
    assert scope["client"] == ("127.0.0.1", 50000)
    assert scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {}


def test_scope_path_without_escapes_and_http_10(build: Any) -> None:
    scope = scope_for(build, b"PURGE /plain/path HTTP/1.0\r\n\r\n")
    assert scope["method"] == "PURGE"
    assert scope["http_version"] == "1.0"
    assert scope["path"] == "/plain/path"
    assert scope["raw_path"] == b"/plain/path"
    assert scope["query_string"] == b""


def test_root_path_prefixes_path_and_raw_path(build: Any) -> None:
    scope = scope_for(build, request(target="/items/%C3%A9?q=1"), root_path="/api")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items/é"
    assert scope["raw_path"] == b"/api/items/%C3%A9"
    assert scope["query_string"] == b"q=1"


def test_scope_for_tls_and_unix_socket(build: Any) -> None:
    extra = {"sslcontext": object(), "sockname": "/tmp/esg.sock", "peername": ""}
    scope = scope_for(build, request(), extra=extra)
    assert scope["scheme"] == "https"
    assert scope["server"] == ("/tmp/esg.sock", None)
    assert scope["client"] is None


def test_scope_for_ipv6_peer(build: Any) -> None:
    extra = {"sockname": ("::1", 8000, 0, 0), "peername": ("::1", 41000, 0, 0)}
    scope = scope_for(build, request(), extra=extra)
    assert scope["server"] == ("::1", 8000)
    assert scope["client"] == ("::1", 41000)


def test_asgi_version_comes_from_config(build: Any) -> None:
    scope = scope_for(build, request(), asgi_version="2.0")
    assert scope["asgi"]["version"] == "2.0"


def test_lifespan_state_is_copied_per_request(build: Any) -> None:
    app_state = {"db": "pool"}
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["state"]))
        scope["state"]["user"] = "alice"
        del scope["state"]["db"]
        await fake.respond(send)

    async def scenario() -> None:
        conn = fake.connect(build, app, app_state=app_state)
        conn.feed(request() + request())
        await conn.responses(2)

    run(scenario())
    assert seen == [{"db": "pool"}, {"db": "pool"}]
    assert app_state == {"db": "pool"}


# -- keep-alive and Connection ---------------------------------------------------------------


def test_http11_connection_stays_open_between_requests(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"hi"))
        conn.feed(request())
        first = await conn.response()
        assert first.header(b"connection") is None
        assert not conn.transport.is_closing()
        conn.feed(request(target="/again"))
        assert len(await conn.responses(2)) == 2
        assert not conn.transport.is_closing()

    run(scenario())


def test_http10_request_closes_after_the_response(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"hi"))
        conn.feed(request(version="1.0"))
        response = await conn.response()
        assert response.header(b"connection") == b"close"
        assert response.header(b"content-length") == b"2"
        await conn.closed()

    run(scenario())


def test_http10_keep_alive_is_honoured(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"hi"))
        keep_alive = request(version="1.0", headers=[("Connection", "keep-alive")])
        conn.feed(keep_alive)
        response = await conn.response()
        assert response.header(b"connection") == b"keep-alive"
        assert response.header(b"content-length") == b"2"
        assert not conn.transport.is_closing()
        conn.feed(keep_alive)
        assert len(await conn.responses(2)) == 2

    run(scenario())


def test_connection_close_from_the_client_is_honoured(build: Any) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await fake.respond(send, b"hi")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request(headers=[("Connection", "close")]) + request(target="/next"))
        response = await conn.response()
        assert response.header(b"connection") == b"close"
        await conn.closed()
        assert len(fake.parse_responses(conn.written)) == 1

    run(scenario())
    assert calls == ["/"]


def test_eof_with_no_request_in_flight_closes(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app())
        assert conn.protocol.eof_received() is None  # asyncio closes the transport

    run(scenario())


def test_eof_during_a_request_disconnects_the_app(build: Any) -> None:
    # A client that closes its side is gone for esg (no half-open connections): an app waiting
    # in receive() learns it at once, which long polls and streams depend on.
    messages: list[Any] = []

    async def scenario() -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            messages.append(await receive())
            messages.append(await receive())
            await fake.respond(send, b"late")

        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        assert not conn.protocol.eof_received()  # asyncio closes the transport
        conn.transport.close()
        await conn.settle()
        assert conn.written == b""

    run(scenario())
    assert messages == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]


# -- pipelining ------------------------------------------------------------------------------


def test_pipelined_requests_overlap_and_are_answered_in_order(build: Any) -> None:
    # GETs without a body run concurrently once the first app suspends (RFC 9112 9.3.2 allows
    # it for safe methods); the answers still leave in request order.
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append("start " + scope["path"])
        for _ in range(3):
            await asyncio.sleep(0)
        await fake.respond(send, scope["path"].encode())
        events.append("end " + scope["path"])

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request(target="/1") + request(target="/2") + request(target="/3"))
        responses = await conn.responses(3)
        assert [r.body for r in responses] == [b"/1", b"/2", b"/3"]

    run(scenario())
    assert events[:3] == ["start /1", "start /2", "start /3"]
    assert sorted(events[3:]) == ["end /1", "end /2", "end /3"]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_pipelined_requests_with_bodies_are_answered_one_at_a_time(build: Any, method: str) -> None:
    # A request with a body (of any method) starts in its turn, as does a POST with none.
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append("start " + scope["path"])
        for _ in range(3):
            await asyncio.sleep(0)  # give a wrongly concurrent second cycle a chance to start
        body = await fake.read_body(receive)
        await fake.respond(send, scope["path"].encode() + b":" + body)
        events.append("end " + scope["path"])

    def with_body(target: str, body: bytes) -> bytes:
        return request(method, target, [("Content-Length", str(len(body)))], body)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(with_body("/1", b"a") + with_body("/2", b"bb") + with_body("/3", b"ccc"))
        responses = await conn.responses(3)
        assert [r.body for r in responses] == [b"/1:a", b"/2:bb", b"/3:ccc"]

    run(scenario())
    assert events == ["start /1", "end /1", "start /2", "end /2", "start /3", "end /3"]


def test_pipelined_answers_share_one_write(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"ok"))
        conn.feed(b"".join(request(target=f"/{n}") for n in range(8)))
        responses = await conn.responses(8)
        assert [r.body for r in responses] == [b"ok"] * 8
        assert conn.transport.writes == 1

    run(scenario())


def test_a_stalled_pipelined_request_does_not_hold_back_earlier_answers(build: Any) -> None:
    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/slow":
                await go.wait()
            await fake.respond(send, scope["path"].encode())

        conn = fake.connect(build, app)
        conn.feed(request(target="/fast") + request(target="/slow"))
        first = await conn.responses(1)
        assert [r.body for r in first] == [b"/fast"]
        go.set()
        both = await conn.responses(2)
        assert [r.body for r in both] == [b"/fast", b"/slow"]

    run(scenario())


def test_invalid_pipelined_request_is_answered_after_the_valid_one(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"ok"))
        conn.feed(request() + b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
        await conn.closed()
        first, second = fake.parse_responses(conn.written)
        assert (first.status, first.body) == (200, b"ok")
        assert second.status == 400
        assert second.header(b"connection") == b"close"

    run(scenario())


def test_pipelined_flood_pauses_reading_until_answered(build: Any) -> None:
    padded = request("POST", headers=[("X-Pad", "p" * 4000)])
    count = 20  # about 80 KiB of pipelined heads: above the 64 KiB high-water mark

    async def scenario() -> None:
        go = asyncio.Event()
        paths: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            paths.append(scope["path"])
            await go.wait()
            await fake.respond(send, b"x")

        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        conn.feed(padded * count)  # POSTs: none may start before its turn
        await conn.settle()
        assert not conn.transport.reading
        assert paths == ["/"]
        go.set()
        assert len(await conn.responses(count + 1)) == count + 1
        assert conn.transport.reading

    run(scenario())


def test_requests_started_ahead_are_bounded_and_reading_pauses_at_the_bound(build: Any) -> None:
    protocol_module = build.module("esg.http.protocol")
    bound = protocol_module.AHEAD_LIMIT
    count = bound + 5

    async def scenario() -> None:
        go = asyncio.Event()
        paths: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            paths.append(scope["path"])
            await go.wait()
            await fake.respond(send, scope["path"].encode())

        conn = fake.connect(build, app, limit_concurrency=1000)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(count)))
        await conn.settle()
        assert paths == [f"/{n}" for n in range(bound + 1)]  # the head of the line + the bound
        assert len(conn.state.tasks) == bound + 1  # what --limit-concurrency counts
        assert not conn.transport.reading
        assert conn.written == b""
        go.set()
        responses = await conn.responses(count)
        assert [r.body for r in responses] == [f"/{n}".encode() for n in range(count)]
        assert conn.transport.reading
        await conn.settle()
        assert not conn.state.tasks

    run(scenario())


# -- request bodies the app didn't read ------------------------------------------------------


def test_unread_small_body_is_drained_then_next_request_answered(build: Any) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await fake.respond(send, scope["path"].encode())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        body = request(target="/smuggled")  # body bytes that look like a request
        conn.feed(request("POST", "/upload", [("Content-Length", str(len(body)))], body))
        conn.feed(request(target="/next"))
        responses = await conn.responses(2)
        assert [r.body for r in responses] == [b"/upload", b"/next"]

    run(scenario())
    assert calls == ["/upload", "/next"]


def test_unread_body_arriving_after_the_response_is_drained(build: Any) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await fake.respond(send, b"ok")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request("POST", "/upload", [("Transfer-Encoding", "chunked")]) + b"5\r\nab")
        await conn.response()
        hidden = request(target="/smuggled")
        conn.feed(b"cde\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(hidden), hidden))
        conn.feed(request(target="/next"))
        assert len(await conn.responses(2)) == 2
        assert not conn.transport.is_closing()

    run(scenario())
    assert calls == ["/upload", "/next"]


def test_huge_unread_body_closes_instead_of_being_parsed(build: Any) -> None:
    # docs/security.md row 29: the rest of a body is drained or the connection closed, never parsed.
    calls: list[str] = []
    fake_requests = request(target="/smuggled") * 4000  # about 150 KiB per feed

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await fake.respond(send, b"no thanks")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request("POST", "/upload", [("Content-Length", "10000000")]))
        await conn.response()
        for _ in range(3):
            if not conn.transport.is_closing():
                conn.feed(fake_requests)
        await conn.closed()
        assert len(fake.parse_responses(conn.written)) == 1

    run(scenario())
    assert calls == ["/upload"]


# -- flow control ----------------------------------------------------------------------------


def test_reading_pauses_above_high_water_and_resumes_when_the_app_reads(build: Any) -> None:
    size = 70 * 1024

    async def scenario() -> None:
        go, answer = asyncio.Event(), asyncio.Event()
        received: list[bytes] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await go.wait()
            received.append(await fake.read_body(receive))
            await answer.wait()
            await fake.respond(send, b"ok")

        conn = fake.connect(build, app)
        conn.feed(request("POST", headers=[("Content-Length", str(size))]))
        await conn.settle()
        assert conn.transport.reading
        conn.feed(b"a" * size)
        assert not conn.transport.reading
        go.set()
        await conn.until(lambda: bool(received), "the app read the body")
        assert conn.transport.reading  # resumed by the read, not by the end of the response
        answer.set()
        await conn.response()
        assert received == [b"a" * size]
        assert (conn.transport.read_pauses, conn.transport.read_resumes) == (1, 1)

    run(scenario())


def test_small_unread_body_does_not_pause_reading(build: Any) -> None:
    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await go.wait()
            await fake.respond(send, b"ok")

        conn = fake.connect(build, app)
        conn.feed(request("POST", headers=[("Content-Length", "1000")]))
        conn.feed(b"a" * 1000)
        await conn.settle()
        assert conn.transport.reading
        go.set()
        await conn.response()

    run(scenario())


# -- deadlines -------------------------------------------------------------------------------


def test_keep_alive_timeout_closes_an_idle_connection(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(), timeout_keep_alive=5)
        conn.feed(request())
        await conn.response()
        now = conn.state.now
        conn.protocol.check_deadlines(now + 4)
        assert not conn.transport.is_closing()
        conn.protocol.check_deadlines(now + 6)
        assert conn.transport.closed
        assert len(fake.parse_responses(conn.written)) == 1  # closed quietly, no 408

    run(scenario())


def test_header_timeout_with_a_partial_head_answers_408(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(), timeout_header=30)
        conn.feed(b"GET / HTTP/1.1\r\nHost: exa")
        now = conn.state.now
        conn.protocol.check_deadlines(now + 29)
        assert conn.written == b""
        conn.protocol.check_deadlines(now + 31)
        response = await conn.response()
        assert response.status == 408
        assert response.header(b"connection") == b"close"
        assert conn.transport.closed

    run(scenario())


def test_header_timeout_after_a_response_closes_without_408(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(), timeout_header=30)
        conn.feed(request())
        await conn.response()
        conn.feed(b"GET /slow HTTP/1.1\r\n")
        conn.protocol.check_deadlines(conn.state.now + 31)
        assert conn.transport.closed
        assert len(fake.parse_responses(conn.written)) == 1

    run(scenario())


def test_body_timeout_wakes_receive_with_disconnect(build: Any) -> None:
    messages: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(await receive())
        messages.append(await receive())
        await fake.respond(send, b"too late")

    async def scenario() -> None:
        conn = fake.connect(build, app, timeout_body=60)
        conn.feed(request("POST", headers=[("Content-Length", "10")], body=b"abc"))
        await conn.settle()
        assert len(messages) == 1
        conn.protocol.check_deadlines(conn.state.now + 59)
        await conn.settle()
        assert len(messages) == 1
        conn.protocol.check_deadlines(conn.state.now + 61)
        await conn.closed()
        await conn.settle()

    run(scenario())
    assert messages == [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]


def test_blocked_write_is_aborted_after_the_body_timeout(build: Any) -> None:
    sent: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        for count in range(1, 100):  # bounded: send() that never blocks must not hang the test
            await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
            sent.append(count)

    async def scenario() -> None:
        conn = fake.connect(build, app, timeout_body=60)
        conn.transport.block_writes()
        conn.feed(request())
        await conn.settle()
        assert sent == []  # the first body message is written, then send() waits
        conn.protocol.check_deadlines(conn.state.now + 59)
        assert not conn.transport.is_closing()
        conn.protocol.check_deadlines(conn.state.now + 61)
        assert conn.transport.aborted
        await conn.closed()
        await conn.settle()

    run(scenario())


def test_client_that_never_reads_a_finished_response_is_aborted(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"x" * 100), timeout_body=60)
        conn.feed(request())
        await conn.response()
        conn.transport.block_writes()  # the peer doesn't read: close() can't flush
        now = conn.state.now
        for elapsed in (10, 100, 1000, 10000):
            conn.protocol.check_deadlines(now + elapsed)
        assert conn.transport.aborted

    run(scenario())


# -- shutdown and limits ---------------------------------------------------------------------


def test_shutdown_closes_an_idle_connection(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app())
        conn.feed(request())
        await conn.response()
        conn.protocol.shutdown()
        assert conn.transport.closed

    run(scenario())


def test_shutdown_lets_the_request_in_flight_finish(build: Any) -> None:
    calls: list[str] = []

    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            calls.append(scope["path"])
            await go.wait()
            await fake.respond(send, b"finished")

        conn = fake.connect(build, app)
        conn.feed(request() + request(target="/queued"))
        await conn.settle()
        conn.protocol.shutdown()
        assert not conn.transport.is_closing()
        go.set()
        response = await conn.response()
        assert response.body == b"finished"
        await conn.closed()
        await conn.settle()
        assert not conn.state.tasks

    run(scenario())
    # /queued had started ahead (a GET without a body) while / waited; it is not answered.
    assert calls == ["/", "/queued"]


def test_shutdown_marks_the_response_in_flight_connection_close(build: Any) -> None:
    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await go.wait()
            await fake.respond(send, b"finished")

        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        conn.protocol.shutdown()
        go.set()
        assert (await conn.response()).header(b"connection") == b"close"

    run(scenario())


def test_limit_concurrency_answers_503(build: Any) -> None:
    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await go.wait()
            await fake.respond(send, b"ok")

        state = ServerState()
        busy = fake.connect(build, app, state=state, limit_concurrency=1)
        busy.feed(request())
        await busy.settle()
        refused = fake.connect(build, app, state=state, limit_concurrency=1)
        refused.feed(request())
        response = await refused.response()
        assert response.status == 503
        assert response.header(b"connection") == b"close"
        await refused.closed()
        go.set()
        assert (await busy.response()).status == 200

    run(scenario())


def test_connections_register_with_the_server_state(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app())
        assert conn.protocol in conn.state.connections
        conn.feed(request(headers=[("Connection", "close")]))
        await conn.closed()
        assert conn.protocol not in conn.state.connections
        assert conn.state.total_requests == 1

    run(scenario())


# -- malformed requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),  # bare LF
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    ],
    ids=["no-host", "http2", "long-line", "bare-lf", "two-lengths", "gzip"],
)
def test_parse_error_answers_its_status_and_closes(
    build: Any, data: bytes, status: int, error_log: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(data)
        response = await conn.response()
        assert response.status == status
        assert response.header(b"connection") == b"close"
        await conn.closed()

    run(scenario())
    assert calls == []
    assert any("Invalid HTTP request" in r.getMessage() for r in error_log.records)


def test_body_over_the_limit_answers_413(build: Any) -> None:
    messages: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(await receive())
        await fake.respond(send, b"ignored")

    async def scenario() -> None:
        conn = fake.connect(build, app, limit_request_body=10)
        conn.feed(request("POST", headers=[("Transfer-Encoding", "chunked")]))
        conn.feed(b"20\r\n" + b"x" * 32 + b"\r\n0\r\n\r\n")
        response = await conn.response()
        assert response.status == 413
        await conn.closed()

    run(scenario())
    assert messages == [{"type": "http.disconnect"}]


# -- access log ------------------------------------------------------------------------------


def test_access_log_line(build: Any, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("esg.access")
    saved = (logger.propagate, logger.disabled)
    logger.addHandler(caplog.handler)
    logger.propagate, logger.disabled = False, False
    caplog.set_level(logging.INFO, logger="esg.access")

    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(status=404), access_log=True)
        conn.feed(request(target="/a%20b?x=1"))
        await conn.response()

    try:
        run(scenario())
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate, logger.disabled = saved
    assert [r.getMessage() for r in caplog.records] == [
        '127.0.0.1:50000 - "GET /a%20b?x=1 HTTP/1.1" 404'
    ]


# -- regressions from the first review -------------------------------------------------------


def test_client_that_never_reads_stops_the_pipeline(build: Any) -> None:
    # A pipelining client that doesn't read must not make esg answer (and buffer) request
    # after request: while the transport's write buffer is full, no new request starts.
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await fake.respond(send, b"x" * 1000)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.transport.block_writes()
        conn.feed(b"".join(request(target=f"/{n}") for n in range(3)))
        await conn.settle()
        assert calls == ["/0"]
        conn.transport.unblock_writes()
        responses = await conn.responses(3)
        assert [len(r.body) for r in responses] == [1000, 1000, 1000]
        assert calls == ["/0", "/1", "/2"]

    run(scenario())


def test_scope_has_extensions(build: Any) -> None:
    scopes: list[dict[str, Any]] = []
    run(_one_request(build, scope_recorder(scopes)))
    # (Each is tested in tests/http/test_extensions.py and tests/http/test_trailers.py.)
    assert set(scopes[0]["extensions"]) == {
        "http.response.pathsend",
        "http.response.zerocopysend",
        "http.response.early_hint",
        "http.response.trailers",
    }


async def _one_request(build: Any, app: Any) -> None:
    conn = fake.connect(build, app)
    conn.feed(request())
    await conn.responses(1)


def test_app_transfer_encoding_is_not_sent_to_http10(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"transfer-encoding", b"chunked")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cd"})

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(b"GET / HTTP/1.0\r\n\r\n")
        await conn.closed()
        assert b"transfer-encoding" not in conn.written.lower()
        assert conn.written.endswith(b"\r\n\r\nabcd")

    run(scenario())


def test_header_default_server_replaces_esgs_own() -> None:
    state = ServerState(default_headers=[(b"server", b"proxy-x"), (b"date", b"fixed")])
    assert state.common_lines.count(b"server:") == 1
    assert state.common_lines.count(b"date:") == 1
    assert b"server: proxy-x\r\n" in state.common_lines


def test_streamed_pieces_of_one_loop_turn_share_one_write(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        for piece in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        (response,) = await conn.responses(1)
        assert response.body == b"abc"
        assert conn.transport.writes == 1

    run(scenario())


def test_a_stream_that_pauses_is_written_before_it_resumes(build: Any) -> None:
    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            await go.wait()
            await send({"type": "http.response.body", "body": b"second"})

        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        assert conn.written.endswith(b"5\r\nfirst\r\n")  # out while the app waits
        go.set()
        (response,) = await conn.responses(1)
        assert response.body == b"firstsecond"

    run(scenario())


def test_head_goes_out_while_the_app_waits_before_its_first_body(build: Any) -> None:
    # Server-sent events: the client must see the head before the first event exists.
    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await go.wait()
            await send({"type": "http.response.body", "body": b"data: 1\n\n"})

        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        assert conn.written.startswith(b"HTTP/1.1 200 OK\r\n")
        assert conn.written.endswith(b"\r\n\r\n")
        go.set()
        (response,) = await conn.responses(1)
        assert response.body == b"data: 1\n\n"

    run(scenario())


MARK: Any = __import__("contextvars").ContextVar("esg_test_mark", default=None)


def test_pipelined_requests_do_not_share_contextvars(build: Any) -> None:
    # The next pipelined request's task is created from inside the previous request's task;
    # it must still start from a clean context.
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((MARK.get(), asyncio.current_task() is not None))
        MARK.set(scope["path"])
        await fake.respond(send, b"ok")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request(target="/1") + request(target="/2") + request(target="/3"))
        await conn.responses(3)

    run(scenario())
    assert seen == [(None, True)] * 3


# -- regressions from the second review ------------------------------------------------------


def test_abort_still_sends_the_earlier_pipelined_answers(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/bad":
            headers = [(b"x-bad", b"split\r\ninjected: 1")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
        await fake.respond(send, b"fine")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request(target="/good") + request(target="/bad"))
        await conn.settle()
        assert conn.transport.aborted
        (response,) = fake.parse_responses(conn.written)
        assert response.body == b"fine"
        assert b"injected" not in conn.written

    run(scenario())


def test_no_queued_request_starts_on_a_closing_connection(build: Any) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await fake.respond(send, b"x")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.transport.block_writes()
        conn.feed(request(target="/0") + request("POST", target="/1"))
        await conn.settle()
        conn.protocol.shutdown()
        conn.transport.unblock_writes()
        await conn.settle()

    run(scenario())
    assert calls == ["/0"]


def test_app_passing_messages_along_keeps_one_write_and_content_length(build: Any) -> None:
    # A middleware that hands messages through a queue suspends between start and body for a
    # loop turn: the response keeps its computed Content-Length and leaves in one write.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"hello"})

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        (response,) = await conn.responses(1)
        assert response.header(b"content-length") == b"5"
        assert conn.transport.writes == 1

    run(scenario())


# -- --log-level trace -----------------------------------------------------------------------

TRACE = 5


@pytest.fixture
def trace_log(caplog: pytest.LogCaptureFixture) -> Any:
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


def test_trace_logs_the_connection_made_and_lost_with_the_peer(
    build: Any, trace_log: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(), state=ServerState())
        conn.feed(request() + request(headers=[("Connection", "close")]))
        await conn.closed()

    run(scenario())
    assert trace_lines(trace_log) == [
        "127.0.0.1:50000 - HTTP connection made",
        "127.0.0.1:50000 - HTTP connection lost",
    ]


def test_no_trace_lines_above_trace_level(build: Any, trace_log: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("esg.error")
    logger.setLevel(logging.DEBUG)
    state = ServerState()
    assert not state.trace_log  # decided once, when the server starts...
    logger.setLevel(TRACE)  # ... so that from then on no connection asks the logger

    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(), state=state)
        assert not conn.protocol.trace_log
        conn.feed(request(headers=[("Connection", "close")]))
        await conn.closed()

    run(scenario())
    assert trace_lines(trace_log) == []


# -- eager start (Python 3.12+) --------------------------------------------------------------

eager_only = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="eager task start needs Python 3.12's Task(eager_start=)"
)


def test_a_lone_request_is_scheduled_and_answered_after_a_loop_turn(build: Any) -> None:
    # Also on Python 3.12+: a read holding nothing more than one request starts its app as a
    # scheduled task (eager start pays only for pipelines: see esg/http/protocol.py).
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(asyncio.current_task())
        await fake.respond(send, b"later")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        assert seen == []  # not started inside data_received
        assert conn.written == b""
        assert len(conn.state.tasks) == 1  # scheduled: shutdown waits for it from the start
        assert (await conn.response()).body == b"later"
        assert isinstance(seen[0], asyncio.Task)  # a real task all the same
        await conn.settle()
        assert not conn.state.tasks

    run(scenario())


@pytest.mark.parametrize("pipelined", [False, True], ids=["lone", "pipelined"])
def test_each_request_gets_a_fresh_context(build: Any, pipelined: bool) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(request_var.get(None))
        request_var.set(scope["path"])
        await fake.respond(send, b"")

    async def scenario() -> int:
        conn = fake.connect(build, app)
        if pipelined:  # all in one read
            conn.feed(b"".join(request(target=f"/{n}") for n in range(5)))
            await conn.responses(5)
            return 5
        for n in range(3):  # one read per request, each answered before the next arrives
            conn.feed(request(target=f"/{n}"))
            await conn.responses(n + 1)
        return 3

    count = run(scenario())
    assert seen == [None] * count


@eager_only
def test_pipelined_requests_in_one_read_are_answered_within_data_received(build: Any) -> None:
    seen: list[Any] = []
    depths: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(asyncio.current_task())
        depths.append(len(traceback.extract_stack()))
        await fake.respond(send, scope["path"].encode())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request(target="/0") + request(target="/1"))
        # No loop turn between this and the checks: both apps ran, eagerly, as real tasks.
        assert len(seen) == 2
        assert all(isinstance(task, asyncio.Task) and task.done() for task in seen)
        assert seen[0] is not seen[1]
        assert conn.protocol.answered == 2  # (their bytes leave together, at the loop's turn)
        assert not conn.state.tasks  # both finished: nothing for shutdown to wait on
        responses = await conn.responses(2)
        assert [r.body for r in responses] == [b"/0", b"/1"]

    run(scenario())
    assert depths[0] == depths[1]  # the second started after the first, not inside it


@pytest.mark.parametrize(
    ("data", "eager"),
    [
        (request(), False),
        (request("POST", headers=[("Content-Length", "5")], body=b"hello"), False),
        (request("POST", headers=[("Content-Length", "5")], body=b"hel"), False),
        (request("POST", headers=[("Content-Length", "5")]), False),
        (request("POST", headers=[("Transfer-Encoding", "chunked")]), False),
        (request() + request(), True),
        (request() + b"GET / HT", True),
        (request(headers=[("Content-Length", "0")]) + request(), True),
        (request("POST", headers=[("Content-Length", "5")], body=b"hello") + request(), True),
        (request("POST", headers=[("Transfer-Encoding", "chunked")], body=b"5\r\nhel"), True),
    ],
    ids=[
        "lone-get",
        "lone-post-with-its-body",
        "lone-post-with-part-of-its-body",
        "lone-post-head",
        "lone-chunked-head",
        "two-gets",
        "get-and-part-of-a-head",
        "empty-body-and-a-get",
        "post-with-its-body-and-a-get",
        "chunked-with-body-bytes",
    ],
)
def test_a_read_starts_its_first_request_eagerly_only_with_more_behind_it(
    build: Any, data: bytes, eager: bool
) -> None:
    started: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(scope["method"])
        await fake.respond(send, b"")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(data)
        assert bool(started) == (eager and sys.version_info >= (3, 12))
        assert conn.protocol.eager == bool(started)
        await conn.settle()
        assert started  # scheduled or not, it ran

    run(scenario())


# Run with ESG_NO_EAGER=1 in a fresh interpreter (the switch is read once, at import).
NO_EAGER_SCENARIO = """
import asyncio, importlib, sys
sys.path.insert(0, sys.argv[1])
import fake_transport as fake
from esg._compiled import load_compiled

compiled = sys.argv[2] == "c"
module = load_compiled("esg.http.protocol") if compiled else importlib.import_module(
    "esg.http.protocol"
)
assert module.__name__.endswith("_c") == compiled, module
assert not module._EAGER_START
started = []

async def app(scope, receive, send):
    started.append(scope["path"])
    if scope["path"] == "/0":
        await asyncio.sleep(0)
    await fake.respond(send, scope["path"].encode())

class Build:
    def module(self, name):
        return module

async def main():
    conn = fake.connect(Build(), app)
    conn.feed(b"".join(fake.request(target=f"/{n}") for n in range(20)))
    assert started == [] and not conn.protocol.eager, started
    responses = await conn.responses(20)
    assert [r.body for r in responses] == [f"/{n}".encode() for n in range(20)]
    assert not conn.protocol.eager

asyncio.run(main())
"""


def test_esg_no_eager_turns_every_eager_start_off(build: Any) -> None:
    build.module("esg.http.protocol")  # (a missing compiled twin skips or fails here)
    done = subprocess.run(
        [sys.executable, "-c", NO_EAGER_SCENARIO, str(TESTS_DIR), build.name],
        env=subprocess_env({"ESG_NO_EAGER": "1"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("pipelined", [False, True], ids=["lone", "pipelined"])
def test_an_app_that_suspends_in_its_first_step_is_tracked_until_it_ends(
    build: Any, pipelined: bool
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/0":
            await asyncio.sleep(0)
        await fake.respond(send, scope["path"].encode())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        count = 2 if pipelined else 1
        conn.feed(b"".join(request(target=f"/{n}") for n in range(count)))
        assert len(conn.state.tasks) == 1  # suspended (or not started): shutdown waits for it
        assert conn.written == b""
        responses = await conn.responses(count)
        assert [r.body for r in responses] == [f"/{n}".encode() for n in range(count)]
        await conn.settle()
        assert not conn.state.tasks

    run(scenario())


@eager_only
def test_eagerly_answered_pipelined_requests_do_not_nest(build: Any) -> None:
    depths: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        depths.append(len(traceback.extract_stack()))
        await fake.respond(send, scope["path"].encode())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        count = 300  # more than EAGER_BURST: the rest continue from a task, in order
        conn.feed(b"".join(request(target=f"/{n}") for n in range(count)))
        responses = await conn.responses(count)
        assert [r.body for r in responses] == [f"/{n}".encode() for n in range(count)]

    run(scenario())
    # Each request started from the same loop, not from inside the previous app's send():
    # nesting would add frames per request.
    assert max(depths) - min(depths) < 40


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Python 3.10 has no Task.cancelling(): an app's own CancelledError looks like a"
    " cancellation there (tests/http/test_faults.py)",
)
@pytest.mark.parametrize("pipelined", [False, True], ids=["lone", "pipelined"])
def test_a_request_that_raises_cancelled_error_in_its_first_step_is_an_app_failure(
    build: Any, caplog: pytest.LogCaptureFixture, pipelined: bool
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError  # not a cancellation by the server

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request() * (2 if pipelined else 1))  # pipelined: an eager first step
        assert (await conn.response()).status == 500

    with caplog.at_level(logging.ERROR, logger="esg.error"):
        run(scenario())
    assert "Exception in ASGI application" in caplog.text


request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var")


# -- pipelined requests running ahead of their turn ------------------------------------------


class Gates:
    """Per-path events: an app waits for its path's gate; the test opens them in any order."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.started: list[str] = []
        self.received: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, path: str) -> asyncio.Event:
        return self.events.setdefault(path, asyncio.Event())

    async def wait(self, scope: Any) -> None:
        self.started.append(scope["path"])
        await self[scope["path"]].wait()


def gated_app(gates: Gates) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await gates.wait(scope)
        await fake.respond(send, scope["path"].encode())

    return app


def test_apps_finishing_out_of_order_are_answered_in_order(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()
        conn = fake.connect(build, gated_app(gates))
        conn.feed(b"".join(request(target=f"/{n}") for n in range(4)))
        await conn.settle()
        assert gates.started == ["/0", "/1", "/2", "/3"]  # all four run at once
        for path in ["/3", "/1", "/2"]:  # everything but the first finishes
            gates[path].set()
            await conn.settle()
        assert conn.written == b""  # held: the first answer isn't there yet
        assert conn.transport.writes == 0
        gates["/0"].set()
        responses = await conn.responses(4)
        assert [r.body for r in responses] == [b"/0", b"/1", b"/2", b"/3"]
        assert conn.transport.writes == 1  # the held answers left with the first one
        assert not conn.transport.is_closing()
        conn.feed(request(target="/after"))  # the connection goes on as usual
        gates["/after"].set()
        assert (await conn.responses(5))[4].body == b"/after"

    run(scenario())


def test_a_later_streamed_response_is_held_until_the_earlier_one_is_done(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()
        pieces_sent: list[bytes] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/first":
                await gates.wait(scope)
                await fake.respond(send, b"first")
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for piece in (b"a", b"b", b"c"):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                pieces_sent.append(piece)
                await asyncio.sleep(0)
            await gates.wait(scope)  # the stream goes on once /first is out
            await send({"type": "http.response.body", "body": b"d", "more_body": True})
            await gates["/stream-end"].wait()
            await send({"type": "http.response.body", "body": b""})

        conn = fake.connect(build, app)
        conn.feed(request(target="/first") + request(target="/stream"))
        await conn.until(lambda: len(pieces_sent) == 3, "three pieces sent")
        await conn.settle()
        assert conn.written == b""  # neither its head nor its pieces overtake /first
        gates["/first"].set()
        first = await conn.response()
        assert first.body == b"first"
        # The stream's head and its held pieces follow at once; it streams from then on.
        await conn.until(lambda: b"1\r\nc\r\n" in conn.written, "the held pieces")
        gates["/stream"].set()
        await conn.until(lambda: b"1\r\nd\r\n" in conn.written, "a live piece")
        assert len(fake.parse_responses(conn.written)) == 1  # still under way
        gates["/stream-end"].set()
        _, streamed = await conn.responses(2)
        assert streamed.chunked and streamed.body == b"abcd"

    run(scenario())


def test_a_held_response_past_its_cap_makes_send_wait_for_its_turn(build: Any) -> None:
    limit = build.module("esg.http.protocol").HOLD_LIMIT
    piece = b"x" * 16384

    async def scenario() -> None:
        gates = Gates()
        sent = 0

        async def app(scope: Any, receive: Any, send: Any) -> None:
            nonlocal sent
            if scope["path"] == "/first":
                await gates.wait(scope)
                await fake.respond(send, b"first")
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(12):  # 192 KiB: three times the cap
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                sent += len(piece)
            await send({"type": "http.response.body", "body": b""})

        conn = fake.connect(build, app)
        conn.feed(request(target="/first") + request(target="/big"))
        await conn.settle()
        # The send() that took the held bytes past the cap is waiting for its turn.
        assert limit - 2 * len(piece) < sent <= limit
        assert conn.written == b""
        gates["/first"].set()
        first, big = await conn.responses(2)
        assert first.body == b"first"
        assert big.body == piece * 12

    run(scenario())


@pytest.mark.parametrize(
    "middle",
    [
        request("POST", "/middle", [("Content-Length", "4")], b"body"),
        request("PUT", "/middle"),  # not a safe method, even without a body
        request("GET", "/middle", [("Transfer-Encoding", "chunked")], b"4\r\nbody\r\n0\r\n\r\n"),
        request("GET", "/middle", [("Content-Length", "4")], b"body"),
    ],
    ids=["post-body", "put", "get-chunked", "get-length"],
)
def test_a_request_that_may_not_run_ahead_waits_for_its_turn(build: Any, middle: bytes) -> None:
    # Behind a safe method whose body has been read, the next GET may start ahead again.
    last_waits = not middle.startswith(b"GET")

    async def scenario() -> None:
        gates = Gates()
        bodies: dict[str, bytes] = {}

        async def app(scope: Any, receive: Any, send: Any) -> None:
            bodies[scope["path"]] = await fake.read_body(receive)
            await gates.wait(scope)
            await fake.respond(send, scope["path"].encode())

        conn = fake.connect(build, app)
        conn.feed(request(target="/first") + middle + request(target="/last"))
        await conn.settle()
        # Neither it nor anything after it starts before its turn.
        assert gates.started == ["/first"]
        gates["/first"].set()
        await conn.until(lambda: "/middle" in gates.started, "/middle started")
        await conn.settle()
        assert gates.started[:2] == ["/first", "/middle"]
        if last_waits:
            assert gates.started == ["/first", "/middle"]  # /last waits behind it
        gates["/middle"].set()
        gates["/last"].set()
        responses = await conn.responses(3)
        assert [r.body for r in responses] == [b"/first", b"/middle", b"/last"]
        assert bodies["/middle"] in (b"body", b"")

    run(scenario())


def test_a_get_after_a_post_does_not_run_beside_it(build: Any) -> None:
    # RFC 9112 9.3.2: only a sequence of safe methods may be processed in parallel.
    async def scenario() -> None:
        gates = Gates()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await fake.read_body(receive)
            await gates.wait(scope)
            await fake.respond(send, scope["path"].encode())

        conn = fake.connect(build, app)
        post = request("POST", "/post", [("Content-Length", "2")], b"ok")
        conn.feed(post + request(target="/get"))
        await conn.settle()
        assert gates.started == ["/post"]
        gates["/post"].set()
        gates["/get"].set()
        assert [r.body for r in await conn.responses(2)] == [b"/post", b"/get"]

    run(scenario())


def test_a_request_that_closes_the_connection_is_the_last_to_start(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()
        conn = fake.connect(build, gated_app(gates))
        conn.feed(
            request(target="/1")
            + request(target="/2", headers=[("Connection", "close")])
            + request(target="/3")
        )
        await conn.settle()
        assert gates.started == ["/1", "/2"]
        gates["/2"].set()
        gates["/1"].set()
        await conn.closed()
        first, second = fake.parse_responses(conn.written)
        assert [first.body, second.body] == [b"/1", b"/2"]
        assert second.header(b"connection") == b"close"
        assert gates.started == ["/1", "/2"]

    run(scenario())


def test_a_response_that_closes_in_the_middle_drops_the_requests_behind_it(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()
        after: dict[str, Any] = {}

        async def app(scope: Any, receive: Any, send: Any) -> None:
            path = scope["path"]
            await gates.wait(scope)
            headers = [(b"connection", b"close")] if path == "/2" else []
            try:
                await fake.respond(send, path.encode(), headers=headers)
            except OSError as exc:  # ClientDisconnected: the request was dropped
                after[path] = exc
            after[path + " receive"] = await receive()

        conn = fake.connect(build, app)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(1, 5)))
        await conn.settle()
        assert gates.started == ["/1", "/2", "/3", "/4"]
        gates["/3"].set()  # /3 is complete and held when /2 ends the connection
        await conn.settle()
        gates["/2"].set()
        gates["/1"].set()
        await conn.closed()
        gates["/4"].set()  # /4 was still running: it learns that it was dropped
        await conn.settle()
        responses = fake.parse_responses(conn.written)
        assert [r.body for r in responses] == [b"/1", b"/2"]
        assert responses[1].header(b"connection") == b"close"
        assert isinstance(after["/4"], OSError)
        assert after["/4 receive"] == {"type": "http.disconnect"}
        assert after["/3 receive"] == {"type": "http.disconnect"}
        assert not conn.state.tasks

    run(scenario())


def test_client_disconnect_reaches_every_request_in_flight(build: Any) -> None:
    async def scenario() -> None:
        seen: dict[str, Any] = {}

        async def app(scope: Any, receive: Any, send: Any) -> None:
            assert (await receive())["type"] == "http.request"
            seen[scope["path"]] = await receive()  # waits for the disconnect

        conn = fake.connect(build, app)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(3)))
        await conn.settle()
        assert seen == {}
        assert len(conn.state.tasks) == 3
        conn.transport.peer_reset()
        await conn.settle()
        assert seen == {f"/{n}": {"type": "http.disconnect"} for n in range(3)}
        assert not conn.state.tasks

    run(scenario())


def test_an_error_in_a_later_app_is_a_500_after_the_earlier_answers(
    build: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        gates = Gates()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await gates.wait(scope)
            if scope["path"] == "/2":
                raise ValueError("boom")
            await fake.respond(send, scope["path"].encode())

        conn = fake.connect(build, app)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(1, 4)))
        await conn.settle()
        gates["/2"].set()
        gates["/3"].set()
        await conn.settle()
        assert conn.written == b""
        gates["/1"].set()
        await conn.closed()
        responses = fake.parse_responses(conn.written)
        assert [(r.status, r.body) for r in responses] == [
            (200, b"/1"),
            (500, b"Internal Server Error"),
        ]
        assert responses[1].header(b"connection") == b"close"
        assert not conn.state.tasks

    with caplog.at_level(logging.ERROR, logger="esg.error"):
        run(scenario())
    assert caplog.text.count("Exception in ASGI application") == 1


def test_a_later_streamed_response_broken_mid_way_closes_after_the_earlier_answers(
    build: Any,
) -> None:
    async def scenario() -> None:
        gates = Gates()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/1":
                await gates.wait(scope)
                await fake.respond(send, b"whole")
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            raise RuntimeError("broken stream")

        conn = fake.connect(build, app)
        conn.feed(request(target="/1") + request(target="/2") + request(target="/3"))
        await conn.settle()
        assert conn.written == b""
        gates["/1"].set()
        await conn.closed()
        written = conn.written
        (whole,) = fake.parse_responses(written)
        assert whole.body == b"whole"
        # Then the broken response as far as it got (cut: no last chunk), and nothing of /3.
        assert written.endswith(b"4\r\npart\r\n")
        assert written.count(b"HTTP/1.1") == 2
        assert not conn.transport.aborted

    run(scenario())


def test_an_unsendable_later_response_aborts_after_the_earlier_answers(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/1":
                await gates.wait(scope)
                await fake.respond(send, b"whole")
                return
            headers = [(b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"too long"})

        conn = fake.connect(build, app)
        conn.feed(request(target="/1") + request(target="/2"))
        await conn.settle()
        assert not conn.transport.aborted  # it waits for its turn
        gates["/1"].set()
        await conn.closed()
        assert conn.transport.aborted
        (whole,) = fake.parse_responses(conn.written)
        assert whole.body == b"whole"
        assert b"too long" not in conn.written

    run(scenario())


def test_access_log_lines_come_in_the_order_of_the_answers(
    build: Any, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("esg.access")
    saved = (logger.propagate, logger.disabled)
    logger.addHandler(caplog.handler)
    logger.propagate, logger.disabled = False, False
    caplog.set_level(logging.INFO, logger="esg.access")

    async def scenario() -> None:
        gates = Gates()
        conn = fake.connect(build, gated_app(gates), access_log=True)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(3)))
        await conn.settle()
        for path in ["/2", "/1", "/0"]:
            gates[path].set()
            await conn.settle()
        await conn.responses(3)

    try:
        run(scenario())
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate, logger.disabled = saved
    assert [r.getMessage() for r in caplog.records] == [
        f'127.0.0.1:50000 - "GET /{n} HTTP/1.1" 200' for n in range(3)
    ]


def test_limit_concurrency_counts_requests_started_ahead(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()
        conn = fake.connect(build, gated_app(gates), limit_concurrency=2)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(4)))
        await conn.settle()
        assert gates.started == ["/0", "/1"]  # the third waits for room instead of a 503
        for n in range(4):
            gates[f"/{n}"].set()
        responses = await conn.responses(4)
        assert [(r.status, r.body) for r in responses] == [
            (200, f"/{n}".encode()) for n in range(4)
        ]

    run(scenario())


def test_no_request_starts_ahead_while_the_client_does_not_read(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()
        conn = fake.connect(build, gated_app(gates))
        conn.transport.block_writes()
        conn.feed(b"".join(request(target=f"/{n}") for n in range(3)))
        await conn.settle()
        assert gates.started == ["/0"]
        conn.transport.unblock_writes()
        await conn.settle()
        assert gates.started == ["/0", "/1", "/2"]
        for n in range(3):
            gates[f"/{n}"].set()
        assert len(await conn.responses(3)) == 3

    run(scenario())


def test_retiring_lets_the_requests_started_ahead_finish_the_last_saying_close(
    build: Any,
) -> None:
    async def scenario() -> None:
        gates = Gates()
        retired: list[Any] = []
        conn = fake.connect(build, gated_app(gates))
        conn.feed(b"".join(request(target=f"/{n}") for n in range(3)))
        await conn.settle()
        conn.protocol.retire(retired.append)
        assert retired == [conn.protocol]
        for n in range(3):
            gates[f"/{n}"].set()
        await conn.closed()
        responses = fake.parse_responses(conn.written)
        assert [r.body for r in responses] == [b"/0", b"/1", b"/2"]
        assert [r.header(b"connection") for r in responses] == [None, None, b"close"]

    run(scenario())


def test_an_invalid_request_behind_requests_in_flight_is_answered_in_its_turn(
    build: Any,
) -> None:
    async def scenario() -> None:
        gates = Gates()
        conn = fake.connect(build, gated_app(gates))
        conn.feed(
            request(target="/0") + request(target="/1") + b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"
        )
        await conn.settle()
        assert conn.written == b""
        gates["/1"].set()
        gates["/0"].set()
        await conn.closed()
        responses = fake.parse_responses(conn.written)
        assert [r.status for r in responses] == [200, 200, 400]

    run(scenario())


def test_a_websocket_upgrade_behind_requests_in_flight_waits_for_its_turn(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.accept"})
                return
            await gates.wait(scope)
            await fake.respond(send, scope["path"].encode())

        conn = fake.connect(build, app)
        conn.feed(request(target="/0") + request(target="/1") + fake.upgrade_request("/ws"))
        await conn.settle()
        assert conn.transport.protocol is conn.protocol
        gates["/1"].set()
        gates["/0"].set()
        await conn.until(lambda: b"HTTP/1.1 101 " in conn.written, "the 101")
        written = conn.written
        first = written.index(b"\r\n\r\n/0")
        assert first < written.index(b"\r\n\r\n/1") < written.index(b"101 Switching")

    run(scenario())


def test_metrics_count_requests_started_ahead(build: Any) -> None:
    async def scenario() -> None:
        metrics = build.module("esg.metrics").Metrics()
        state = ServerState()
        state.metrics = metrics
        gates = Gates()
        conn = fake.connect(build, gated_app(gates), state=state)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(3)))
        await conn.settle()
        assert metrics.in_flight == 3
        for n in (2, 1, 0):
            gates[f"/{n}"].set()
        await conn.responses(3)
        await conn.settle()
        assert metrics.in_flight == 0
        assert metrics.keepalive_requests == 2

    run(scenario())


@eager_only
def test_requests_ahead_start_eagerly_once_the_head_of_the_line_suspends(build: Any) -> None:
    async def scenario() -> None:
        gates = Gates()
        conn = fake.connect(build, gated_app(gates))
        conn.feed(b"".join(request(target=f"/{n}") for n in range(3)))
        # No loop turn yet: all three apps ran their first step inside data_received.
        assert gates.started == ["/0", "/1", "/2"]
        for n in range(3):
            gates[f"/{n}"].set()
        assert [r.body for r in await conn.responses(3)] == [b"/0", b"/1", b"/2"]

    run(scenario())


@eager_only
def test_answers_held_within_their_first_step_go_out_with_the_head_of_the_line(
    build: Any,
) -> None:
    async def scenario() -> None:
        gates = Gates()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/0":
                await gates.wait(scope)
            await fake.respond(send, scope["path"].encode())

        conn = fake.connect(build, app)
        conn.feed(b"".join(request(target=f"/{n}") for n in range(5)))
        assert conn.written == b""  # /1../4 answered at once, but held
        assert len(conn.state.tasks) == 1  # only /0 suspended
        gates["/0"].set()
        responses = await conn.responses(5)
        assert [r.body for r in responses] == [f"/{n}".encode() for n in range(5)]
        assert conn.transport.writes == 1

    run(scenario())
