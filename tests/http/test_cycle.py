"""The ASGI cycle through a real ``HttpProtocol`` on a fake transport: receive(), send(), framing.

Each test runs against both builds (each protocol uses its own build's cycle).  The app is the
thing under test's client here: it calls ``receive``/``send`` and the test reads back the bytes
esg wrote and whether it closed or aborted the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import fake_transport as fake
import pytest

from esg.state import ServerState

run = fake.run
request = fake.request

APP_EXCEPTION = "Exception in ASGI application"


def messages_of(log: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [record for record in log.records if text in record.getMessage()]


def without_suspending(awaitable: Awaitable[Any]) -> Any:
    """The result of an awaitable that must complete without yielding to the loop."""
    coroutine: Any = awaitable
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise AssertionError("the awaitable suspended")


def answer(build: Any, app: Any, data: bytes, **options: Any) -> Any:
    """Feed ``data`` to a fresh connection, wait for one response; returns the Connection."""

    async def scenario() -> Any:
        conn = fake.connect(build, app, **options)
        conn.feed(data)
        await conn.response(head=data.startswith(b"HEAD"))
        return conn

    return run(scenario())


def stream_app(*pieces: bytes, status: int = 200, headers: Any = ()) -> Any:
    """Sends ``pieces`` as body messages with more_body True, then an empty last message."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


# -- receive ---------------------------------------------------------------------------------


def test_receive_returns_a_buffered_body_at_once(build: Any) -> None:
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(without_suspending(receive()))
        await fake.respond(send)

    answer(build, app, request("POST", headers=[("Content-Length", "5")], body=b"hello"))
    assert messages == [{"type": "http.request", "body": b"hello", "more_body": False}]


def test_receive_without_a_body(build: Any) -> None:
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(without_suspending(receive()))
        await fake.respond(send)

    answer(build, app, request())
    assert messages == [{"type": "http.request", "body": b"", "more_body": False}]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_receive_a_body_in_pieces(build: Any, framing: str) -> None:
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while not messages or messages[-1]["more_body"]:
            messages.append(await receive())
        await fake.respond(send, b"".join(m["body"] for m in messages))

    if framing == "length":
        head = request("POST", headers=[("Content-Length", "6")])
        first, second = b"abc", b"def"
    else:
        head = request("POST", headers=[("Transfer-Encoding", "chunked")])
        first, second = b"3\r\nabc\r\n", b"3\r\ndef\r\n0\r\n\r\n"

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(head + first)
        await conn.settle()
        assert messages == [{"type": "http.request", "body": b"abc", "more_body": True}]
        conn.feed(second)
        assert (await conn.response()).body == b"abcdef"

    run(scenario())
    bodies = b"".join(m["body"] for m in messages)
    assert bodies == b"abcdef"
    assert [m["more_body"] for m in messages][-1] is False
    assert all(m["more_body"] for m in messages[:-1])


def test_receive_after_the_body_waits_for_the_response_then_disconnects(build: Any) -> None:
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

        async def listen() -> None:
            messages.append(await receive())

        listener = asyncio.ensure_future(listen())
        for _ in range(5):
            await asyncio.sleep(0)
        assert messages == []  # nothing to say yet: the client is still there
        await fake.respond(send, b"done")
        await listener

    answer(build, app, request())
    assert messages == [{"type": "http.disconnect"}]


def test_receive_after_the_response_is_disconnect(build: Any) -> None:
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await fake.respond(send, b"done")
        messages.append(without_suspending(receive()))

    answer(build, app, request("POST", headers=[("Content-Length", "3")], body=b"abc"))
    assert messages == [{"type": "http.disconnect"}]


def test_connection_lost_wakes_receive_and_send_raises_oserror(build: Any) -> None:
    # ASGI HTTP spec 2.4: send() on a closed connection raises an OSError subclass.
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        messages.append(await receive())
        try:
            await fake.respond(send, b"nobody listens")
        except OSError as exc:
            messages.append(type(exc).__name__)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        assert messages == []
        conn.protocol.connection_lost(None)
        await conn.settle()
        assert conn.written == b""
        assert conn.protocol not in conn.state.connections

    run(scenario())
    assert messages == [{"type": "http.disconnect"}, "ClientDisconnected"]


def test_eof_in_the_middle_of_a_body_disconnects_receive(build: Any) -> None:
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(await receive())
        messages.append(await receive())

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request("POST", headers=[("Content-Length", "10")], body=b"abc"))
        await conn.settle()
        if not conn.protocol.eof_received():
            conn.transport.close()  # what asyncio does when eof_received() returns a false value
        await conn.settle()

    run(scenario())
    assert messages[-1] == {"type": "http.disconnect"}


def test_pending_receive_gets_disconnect_when_the_response_completes(build: Any) -> None:
    messages: list[Any] = []
    listeners: list[asyncio.Future[None]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

        async def listen() -> None:
            messages.append(await receive())

        listeners.append(asyncio.ensure_future(listen()))
        await asyncio.sleep(0)
        await fake.respond(send, b"early answer")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request("POST", headers=[("Content-Length", "10")], body=b"abc"))
        await conn.response()
        conn.feed(b"defghijklm")  # the rest of the body arrives and is drained
        await conn.settle()
        for listener in listeners:
            listener.cancel()  # still blocked when the bug is there

    run(scenario())
    assert messages == [{"type": "http.disconnect"}]


# -- Expect: 100-continue --------------------------------------------------------------------


def test_100_continue_is_sent_when_the_app_first_reads(build: Any) -> None:
    async def scenario() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await go.wait()
            body = await fake.read_body(receive)
            await fake.respond(send, body.upper())

        conn = fake.connect(build, app)
        headers = [("Content-Length", "5"), ("Expect", "100-continue")]
        conn.feed(request("POST", headers=headers))
        await conn.settle()
        assert conn.written == b""
        go.set()
        await conn.until(lambda: conn.written != b"", "100 Continue")
        assert conn.written == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.feed(b"hello")
        interim, final = await conn.responses(2)
        assert interim.status == 100
        assert (final.status, final.body) == (200, b"HELLO")
        assert conn.written.count(b"100 Continue") == 1

    run(scenario())


def test_100_continue_is_not_sent_if_the_app_answers_without_reading(build: Any) -> None:
    conn = answer(
        build,
        fake.make_app(b"no"),
        request("POST", headers=[("Content-Length", "5"), ("Expect", "100-continue")]),
    )
    assert b"100 Continue" not in conn.written
    assert conn.written.startswith(b"HTTP/1.1 200 OK\r\n")


def test_100_continue_is_not_sent_once_the_response_started(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await receive()
        await send({"type": "http.response.body", "body": b"x"})

    conn = answer(
        build,
        app,
        request("POST", headers=[("Content-Length", "1"), ("Expect", "100-continue")], body=b"a"),
    )
    assert b"100 Continue" not in conn.written


# -- response framing ------------------------------------------------------------------------


def test_streamed_response_is_chunked(build: Any) -> None:
    conn = answer(build, stream_app(b"ab", b"", b"cde"), request())
    (response,) = fake.parse_responses(conn.written)
    assert response.header(b"transfer-encoding") == b"chunked"
    assert response.header(b"content-length") is None
    assert response.raw_body == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    assert not conn.transport.is_closing()


def test_single_message_body_gets_content_length(build: Any) -> None:
    conn = answer(build, fake.make_app(b"hello world"), request())
    (response,) = fake.parse_responses(conn.written)
    assert response.header(b"content-length") == b"11"
    assert response.header(b"transfer-encoding") is None
    assert response.body == b"hello world"
    assert conn.written.endswith(b"\r\n\r\nhello world")


def test_app_content_length_is_used_for_a_streamed_body(build: Any) -> None:
    app = stream_app(b"ab", b"cde", headers=[(b"Content-Length", b"5")])
    conn = answer(build, app, request())
    (response,) = fake.parse_responses(conn.written)
    assert response.values(b"content-length") == [b"5"]
    assert response.header(b"transfer-encoding") is None
    assert conn.written.endswith(b"\r\n\r\nabcde")


def test_app_chunked_header_is_framed_once(build: Any) -> None:
    app = stream_app(b"ab", headers=[(b"transfer-encoding", b"chunked")])
    conn = answer(build, app, request())
    (response,) = fake.parse_responses(conn.written)
    assert response.values(b"transfer-encoding") == [b"chunked"]
    assert response.raw_body == b"2\r\nab\r\n0\r\n\r\n"


def test_head_response_keeps_content_length_and_sends_no_body(build: Any) -> None:
    app = fake.make_app(b"hello", headers=[(b"content-length", b"5")])
    conn = answer(build, app, request("HEAD"))
    assert conn.written.endswith(b"content-length: 5\r\n\r\n")
    assert b"hello" not in conn.written
    assert not conn.transport.is_closing()


def test_head_response_gets_the_length_of_the_body_it_would_have(build: Any) -> None:
    conn = answer(build, fake.make_app(b"hello"), request("HEAD"))
    assert conn.written.endswith(b"content-length: 5\r\n\r\n")
    assert b"hello" not in conn.written


def test_head_then_get_on_one_connection(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"hello"))
        conn.feed(request("HEAD"))
        await conn.response(head=True)
        head_bytes = len(conn.written)
        conn.feed(request())
        await conn.until(lambda: len(conn.written) > head_bytes, "second response")
        (response,) = fake.parse_responses(conn.written[head_bytes:])
        assert response.body == b"hello"

    run(scenario())


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_send_no_body(build: Any, status: int) -> None:
    conn = answer(build, stream_app(b"ignored", status=status), request())
    assert conn.written.endswith(b"\r\n\r\n")
    assert b"ignored" not in conn.written
    (response,) = fake.parse_responses(conn.written)
    assert response.status == status
    assert response.header(b"transfer-encoding") is None
    assert response.header(b"content-length") is None
    assert not conn.transport.is_closing()


def test_204_with_a_single_message_body_gets_no_content_length(build: Any) -> None:
    conn = answer(build, fake.make_app(b"ignored", status=204), request())
    assert b"ignored" not in conn.written
    assert fake.parse_responses(conn.written)[0].header(b"content-length") is None


def test_304_keeps_the_app_content_length(build: Any) -> None:
    app = fake.make_app(b"", status=304, headers=[(b"content-length", b"1234")])
    conn = answer(build, app, request())
    assert conn.written.endswith(b"content-length: 1234\r\n\r\n")


def test_http10_streaming_is_not_chunked_and_closes(build: Any) -> None:
    async def scenario() -> Any:
        conn = fake.connect(build, stream_app(b"ab", b"cd"))
        conn.feed(request(version="1.0", headers=[("Connection", "keep-alive")]))
        await conn.closed()
        return conn

    conn = run(scenario())
    (response,) = fake.parse_responses(conn.written, eof=True)
    assert response.header(b"transfer-encoding") is None
    assert response.header(b"content-length") is None
    assert response.header(b"connection") == b"close"
    assert response.body == b"abcd"


def test_app_connection_close_is_honoured(build: Any) -> None:
    app = fake.make_app(b"bye", headers=[(b"Connection", b"close")])

    async def scenario() -> Any:
        conn = fake.connect(build, app)
        conn.feed(request() + request())
        await conn.closed()
        return conn

    conn = run(scenario())
    (response,) = fake.parse_responses(conn.written)
    assert response.values(b"connection") == [b"close"]
    assert response.body == b"bye"


def test_body_accepts_bytearray_and_memoryview(build: Any) -> None:
    app = stream_app(bytearray(b"ab"), memoryview(b"cd"))  # type: ignore[arg-type]
    conn = answer(build, app, request())
    assert fake.parse_responses(conn.written)[0].body == b"abcd"


# -- default headers -------------------------------------------------------------------------


def test_server_and_date_headers_by_default(build: Any) -> None:
    conn = answer(build, fake.make_app(), request())
    (response,) = fake.parse_responses(conn.written)
    assert response.header(b"server") == b"esg"
    date = response.header(b"date")
    assert date is not None and date.endswith(b" GMT")


def test_server_and_date_headers_can_be_switched_off(build: Any) -> None:
    state = ServerState(server_header=False, date_header=False)
    conn = answer(build, fake.make_app(), request(), state=state)
    (response,) = fake.parse_responses(conn.written)
    assert response.header(b"server") is None
    assert response.header(b"date") is None


def test_app_server_and_date_replace_esg_ones(build: Any) -> None:
    headers = [(b"Server", b"mine"), (b"Date", b"Thu, 01 Jan 1970 00:00:00 GMT")]
    conn = answer(build, fake.make_app(headers=headers), request())
    (response,) = fake.parse_responses(conn.written)
    assert response.values(b"server") == [b"mine"]
    assert response.values(b"date") == [b"Thu, 01 Jan 1970 00:00:00 GMT"]


def test_default_headers_are_sent_and_the_app_overrides_them(build: Any) -> None:
    defaults = [(b"x-frame-options", b"DENY"), (b"x-powered-by", b"esg")]
    state = ServerState(default_headers=defaults)
    app = fake.make_app(headers=[(b"X-Frame-Options", b"SAMEORIGIN")])
    conn = answer(build, app, request(), state=state)
    (response,) = fake.parse_responses(conn.written)
    assert response.values(b"x-frame-options") == [b"SAMEORIGIN"]
    assert response.values(b"x-powered-by") == [b"esg"]
    assert response.header(b"server") == b"esg"

    conn = answer(build, fake.make_app(), request(), state=ServerState(default_headers=defaults))
    (response,) = fake.parse_responses(conn.written)
    assert response.values(b"x-frame-options") == [b"DENY"]
    assert response.values(b"x-powered-by") == [b"esg"]


# -- message order ---------------------------------------------------------------------------


def expect_send_error(build: Any, messages: list[dict[str, Any]]) -> tuple[str, Any]:
    """Send ``messages``; returns the RuntimeError text of the last one and the Connection."""
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages[:-1]:
            await send(message)
        with pytest.raises(RuntimeError) as caught:
            await send(messages[-1])
        errors.append(str(caught.value))

    async def scenario() -> Any:
        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        return conn

    conn = run(scenario())
    assert len(errors) == 1
    return errors[0], conn


START = {"type": "http.response.start", "status": 200}
BODY = {"type": "http.response.body", "body": b"x"}


def test_body_before_start_is_an_error(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    error, conn = expect_send_error(build, [BODY])
    assert "http.response.start" in error
    (response,) = fake.parse_responses(conn.written)
    assert response.status == 500  # the app then returned without a response


def test_start_twice_is_an_error(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    error, _ = expect_send_error(build, [START, START])
    assert "http.response.body" in error


def test_unknown_message_is_an_error(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    error, _ = expect_send_error(build, [{"type": "http.response.bogus"}])
    assert "http.response.bogus" in error


def test_message_after_the_response_is_an_error(build: Any) -> None:
    error, conn = expect_send_error(build, [START, BODY, BODY])
    assert "after the response ended" in error
    assert fake.parse_responses(conn.written)[0].body == b"x"


# -- responses that must not reach the wire --------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [(b"bad name", b"x")],
        [(b"", b"x")],
        [(b"x-split", b"a\r\nset-cookie: evil")],
        [(b"x-lf", b"a\nb")],
        [(b"x-nul", b"a\x00b")],
        [("x-str", "text")],
        [(b"content-length", b"5"), (b"content-length", b"6")],
    ],
    ids=["space", "empty", "crlf", "lf", "nul", "str", "two-lengths"],
)
def test_invalid_headers_abort_without_writing(
    build: Any, headers: list[Any], error_log: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> Any:
        conn = fake.connect(build, fake.make_app(headers=headers))
        conn.feed(request())
        await conn.closed()
        await conn.settle()
        return conn

    conn = run(scenario())
    assert conn.written == b""
    assert conn.transport.aborted
    assert len(messages_of(error_log, APP_EXCEPTION)) == 1


INVALID_STATUSES = ["200", 200.0, True, False, None, -1, 0, 99, 100, 101, 103, 199, 600, 700, 1000]


@pytest.mark.parametrize("swallowed", [False, True], ids=["raised", "swallowed"])
@pytest.mark.parametrize("status", INVALID_STATUSES)
def test_invalid_status_is_answered_with_500_and_one_error_line(
    build: Any, status: Any, swallowed: bool, error_log: pytest.LogCaptureFixture
) -> None:
    # Not an int from 200 to 599 (a bool is no status, a 1xx is no final response): the app's
    # error.  The client gets a 500 rather than a bare "HTTP/1.1 700" or nothing at all.
    errors: list[Exception] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": status, "headers": []})
        except Exception as exc:
            errors.append(exc)
            if not swallowed:
                raise
        if swallowed:
            assert await receive() == {"type": "http.disconnect"}  # the response is over

    conn = run_until_closed(build, app)
    (response,) = fake.parse_responses(conn.written)
    assert response.status == 500
    assert response.body == b"Internal Server Error"
    assert conn.transport.closed and not conn.transport.aborted
    (error,) = errors
    assert type(error).__name__ == "InvalidStatus"
    assert isinstance(error, build.module("esg.http.serializer").InvalidResponse)
    # One line, whatever the app did with the exception; it names the status and the message.
    (record,) = [r for r in error_log.records if r.levelno >= logging.ERROR]
    assert record.exc_info is None
    assert record.getMessage() == (
        f"Invalid HTTP status code {status!r} in 'http.response.start': a response needs an "
        "int from 200 to 599. Answered 500."
    )
    assert str(error) in record.getMessage()


@pytest.mark.parametrize("status", [200, 299, 404, 599])
def test_final_statuses_at_the_edges_are_sent(build: Any, status: int) -> None:
    conn = answer(build, fake.make_app(status=status), request())
    (response,) = fake.parse_responses(conn.written)
    assert response.status == status


def test_an_intenum_status_is_sent(build: Any) -> None:
    from http import HTTPStatus

    conn = answer(build, fake.make_app(status=HTTPStatus.IM_A_TEAPOT), request())
    assert conn.written.startswith(b"HTTP/1.1 418 I'm a Teapot\r\n")


def run_until_closed(build: Any, app: Any, data: bytes | None = None) -> Any:
    async def scenario() -> Any:
        conn = fake.connect(build, app)
        conn.feed(request() if data is None else data)
        await conn.closed()
        await conn.settle()
        return conn

    return run(scenario())


@pytest.mark.parametrize(
    ("pieces", "complete"),
    [
        ([b"hello world"], True),  # too long in one message: nothing written
        ([b"abc"], True),  # too short in one message: nothing written
        ([b"abc", b"defghi"], False),  # too long while streaming
        ([b"abc", b""], False),  # too short at the end of a stream
    ],
    ids=["long", "short", "long-stream", "short-stream"],
)
def test_content_length_mismatch_aborts(
    build: Any, pieces: list[bytes], complete: bool, error_log: pytest.LogCaptureFixture
) -> None:
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, piece in enumerate(pieces):
            more = index < len(pieces) - 1
            try:
                await send({"type": "http.response.body", "body": piece, "more_body": more})
            except RuntimeError as exc:
                errors.append(str(exc))
                raise

    conn = run_until_closed(build, app)
    assert conn.transport.aborted
    assert len(errors) == 1 and "Content-Length" in errors[0]
    # Streamed pieces wait for the end of the loop turn before they are written, so the abort
    # may drop them too; what matters is that bytes beyond the Content-Length never go out.
    assert b"defghi" not in conn.written
    if complete:
        assert conn.written == b""
    else:
        assert conn.written == b"" or conn.written.endswith(b"content-length: 5\r\n\r\nabc")
    assert len(messages_of(error_log, APP_EXCEPTION)) == 1


# -- app errors ------------------------------------------------------------------------------


def test_error_before_start_is_a_500_then_close(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("boom")

    defaults = [(b"x-default", b"1")]

    async def scenario() -> Any:
        conn = fake.connect(build, app, state=ServerState(default_headers=defaults))
        conn.feed(request() + request(target="/never"))
        await conn.closed()
        return conn

    conn = run(scenario())
    (response,) = fake.parse_responses(conn.written)
    assert response.status == 500
    assert response.header(b"connection") == b"close"
    assert response.header(b"x-default") == b"1"
    assert response.body == b"Internal Server Error"
    assert conn.transport.closed and not conn.transport.aborted
    logged = messages_of(error_log, APP_EXCEPTION)
    assert len(logged) == 1
    assert logged[0].exc_info is not None and isinstance(logged[0].exc_info[1], ValueError)


def test_error_after_start_closes_without_500(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    conn = run_until_closed(build, app)
    assert b"500" not in conn.written
    assert conn.written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert conn.written.endswith(b"7\r\npartial\r\n")  # never terminated: the client sees a cut
    assert len(messages_of(error_log, APP_EXCEPTION)) == 1


def test_error_after_the_response_keeps_the_connection(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await fake.respond(send, b"ok")
        raise ValueError("late")

    conn = answer(build, app, request())
    (response,) = fake.parse_responses(conn.written)
    assert response.body == b"ok"
    assert not conn.transport.is_closing()
    assert len(messages_of(error_log, APP_EXCEPTION)) == 1


def test_returning_without_a_response_is_a_500(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    conn = run_until_closed(build, app)
    (response,) = fake.parse_responses(conn.written)
    assert response.status == 500
    assert len(messages_of(error_log, "without starting response")) == 1


def test_returning_mid_response_closes(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})

    conn = run_until_closed(build, app)
    # The head would go out at the end of the loop turn, but the app returned in the same
    # turn: esg closes the connection first and sends nothing, never a complete response.
    assert conn.written == b""
    assert conn.transport.closed
    assert len(messages_of(error_log, "without completing response")) == 1


def test_returning_a_value_is_logged(build: Any, error_log: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> Any:
        await fake.respond(send)
        return "surprise"

    answer(build, app, request())
    assert len(messages_of(error_log, "should return None")) == 1


# -- write flow control ----------------------------------------------------------------------


def test_send_waits_while_writing_is_paused(build: Any) -> None:
    progress: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        progress.append("one")
        await send({"type": "http.response.body", "body": b"two"})
        progress.append("two")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.transport.block_writes()
        conn.feed(request())
        await conn.settle()
        assert progress == []
        assert conn.written.endswith(b"3\r\none\r\n")  # written, then send() waited
        conn.transport.unblock_writes()
        await conn.settle()
        assert progress == ["one", "two"]
        assert (await conn.response()).body == b"onetwo"

    run(scenario())


def test_connection_lost_releases_a_blocked_send(build: Any) -> None:
    progress: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        progress.append("one")
        try:
            await send({"type": "http.response.body", "body": b"two"})
        except OSError:
            progress.append("gone")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.transport.block_writes()
        conn.feed(request())
        await conn.settle()
        written = conn.written
        conn.protocol.connection_lost(ConnectionResetError())
        await conn.settle()
        assert progress == ["one", "gone"]
        assert conn.written == written

    run(scenario())
