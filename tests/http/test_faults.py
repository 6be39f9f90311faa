"""Faults at every point of a request, on a fake transport: the app raising, the client vanishing.

For each point: what the client gets (a 500, a cut response, or the whole response), whether the
connection stays usable, that the connection's server keeps serving, and what is logged: an app
failure exactly once, a vanished client nothing at all (no error, no traceback).  The app is
held at each point by events the test sets, so nothing here waits on wall-clock time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import sys
import time
from typing import Any

import fake_transport as fake
import pytest

from esg.state import ServerState

run = fake.run
request = fake.request

APP_EXCEPTION = "Exception in ASGI application"
START = {"type": "http.response.start", "status": 200, "headers": []}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def app_failures(log: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in log.records if APP_EXCEPTION in record.getMessage()]


def loud_records(log: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What a vanished client must never cause: warnings, errors, tracebacks."""
    return [r for r in log.records if r.levelno >= logging.WARNING or r.exc_info is not None]


async def serves_another_request(build: Any, state: ServerState) -> None:
    """The server (its shared state) still answers a normal request on a new connection."""
    conn = fake.connect(build, fake.make_app(b"still here"), state=state)
    conn.feed(request())
    assert (await conn.response()).body == b"still here"


def assert_settled(conn: fake.Connection) -> None:
    """Nothing left behind: no app task registered, no connection if it was closed."""
    assert not conn.state.tasks
    if conn.transport.lost:
        assert conn.protocol not in conn.state.connections


# -- the app raising -------------------------------------------------------------------------


class Faulty:
    """An app that raises ``RuntimeError("fault at POINT")`` at one point of the cycle.

    It stops at ``self.reached`` (set when it gets to the point) until the test sets
    ``self.proceed``, so the test can look at the wire just before the failure.
    """

    def __init__(self, point: str) -> None:
        self.point = point
        self.reached = asyncio.Event()
        self.proceed = asyncio.Event()
        self.calls = 0

    async def pause(self) -> None:
        self.reached.set()
        await self.proceed.wait()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        if self.calls > 1:  # a later request on the same connection
            await fake.respond(send, b"next")
            return
        point = self.point
        error = RuntimeError(f"fault at {point}")
        if point == "before-start":
            raise error
        if point == "after-body-read":
            assert await fake.read_body(receive) == b"hello"
            raise error
        if point == "in-receive":
            # A receive() abandoned half way (a timeout in the app), then the app fails.
            assert (await receive())["body"] == b"hel"
            pending = asyncio.ensure_future(receive())  # waits for the rest of the body
            await self.pause()
            pending.cancel()
            raise error
        await send(START)
        if point == "after-start":
            await self.pause()
            raise error
        await send(body(b"first", more=True))
        if point == "between-chunks":
            await self.pause()
            raise error
        await send(body(b"last"))
        if point == "after-last-body":
            raise error
        assert point == "after-complete"
        assert (await receive())["type"] == "http.disconnect"
        await self.pause()
        raise error


def check_logged_once(log: pytest.LogCaptureFixture, point: str) -> None:
    (record,) = app_failures(log)
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == f"fault at {point}"
    assert [r for r in log.records if r.exc_info is not None] == [record]


@pytest.mark.parametrize("point", ["before-start", "after-body-read", "in-receive"])
def test_app_raising_before_its_response_gets_a_500(
    build: Any, point: str, error_log: pytest.LogCaptureFixture
) -> None:
    app = Faulty(point)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        if point == "in-receive":
            # The body is announced, only part of it arrives before the app gives up.
            conn.feed(request("POST", headers=[("Content-Length", "10")], body=b"hel"))
            await conn.until(app.reached.is_set, "the app waiting in receive()")
            await conn.settle()
            app.proceed.set()
            conn.feed(b"lo, world")  # the rest arrives as the app gives up
        else:
            conn.feed(request("POST", headers=[("Content-Length", "5")], body=b"hello"))
        response = await conn.response()
        assert response.status == 500
        assert response.header(b"connection") == b"close"
        await conn.closed()
        await conn.settle()
        assert len(fake.parse_responses(conn.written)) == 1
        assert_settled(conn)
        await serves_another_request(build, conn.state)

    run(scenario())
    check_logged_once(error_log, point)


@pytest.mark.parametrize("point", ["after-start", "between-chunks"])
def test_app_raising_mid_response_cuts_the_connection(
    build: Any, point: str, error_log: pytest.LogCaptureFixture
) -> None:
    app = Faulty(point)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request() + request(target="/pipelined"))
        await conn.until(app.reached.is_set, "the fault point")
        await conn.settle()  # the head (and the first piece) go out while the app waits
        before = conn.written
        assert before.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked\r\n" in before
        app.proceed.set()
        await conn.closed()
        await conn.settle()
        # Nothing more is written: no 500 after a head, no last chunk, no pipelined answer;
        # the client sees a response cut short, never a complete one.
        assert conn.written == before
        assert not conn.written.endswith(b"0\r\n\r\n")
        assert fake.parse_responses(conn.written) == []
        # The pipelined GET started ahead while the first app waited (its answer, held
        # behind the broken one, was dropped with the connection).
        assert app.calls == 2
        assert_settled(conn)
        await serves_another_request(build, conn.state)

    run(scenario())
    check_logged_once(error_log, point)


@pytest.mark.parametrize("point", ["after-last-body", "after-complete"])
def test_app_raising_after_its_response_keeps_the_connection(
    build: Any, point: str, error_log: pytest.LogCaptureFixture
) -> None:
    app = Faulty(point)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request() + request(target="/pipelined"))
        if point == "after-complete":
            # The app fails while the connection is already answering the next request.
            await conn.until(app.reached.is_set, "the fault point")
            assert len(await conn.responses(2)) == 2
            app.proceed.set()
            await conn.settle()
        first, second = await conn.responses(2)
        assert (first.status, first.body) == (200, b"firstlast")
        assert (second.status, second.body) == (200, b"next")
        assert not conn.transport.is_closing()
        conn.feed(request(target="/third"))
        assert len(await conn.responses(3)) == 3
        assert_settled(conn)

    run(scenario())
    check_logged_once(error_log, point)


def test_app_failing_after_the_client_left_is_still_an_app_error(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    # Not an OSError: a bug of the app, logged (once) even though nobody gets an answer.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        message = await receive()
        raise KeyError(message["type"])

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request("POST", headers=[("Content-Length", "10")], body=b"abc"))
        await conn.settle()
        conn.transport.peer_reset()
        await conn.settle()
        assert conn.written == b""
        assert_settled(conn)

    run(scenario())
    (record,) = app_failures(error_log)
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)


BASE_EXCEPTIONS = [
    pytest.param(SystemExit, id="SystemExit"),
    pytest.param(KeyboardInterrupt, id="KeyboardInterrupt"),
    pytest.param(
        asyncio.CancelledError,
        id="CancelledError",
        marks=pytest.mark.skipif(
            sys.version_info < (3, 11), reason="Python 3.10 has no Task.cancelling()"
        ),
    ),
]


@pytest.mark.parametrize("exc_type", BASE_EXCEPTIONS)
@pytest.mark.parametrize("started", [False, True], ids=["before-start", "mid-body"])
def test_base_exceptions_from_the_app_are_app_failures(
    build: Any, exc_type: type[BaseException], started: bool, error_log: pytest.LogCaptureFixture
) -> None:
    # Re-raised from the app's task, SystemExit or KeyboardInterrupt would stop the server's
    # loop (a stray sys.exit() in a handler took the whole server down); a CancelledError the
    # app raised itself (it awaited something cancelled elsewhere) used to close the
    # connection without an answer or a word in the log.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if started:
            await send(START)
            await send(body(b"partial", more=True))
            await asyncio.sleep(0)
        raise exc_type()

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.closed()
        await conn.settle()
        if started:
            assert fake.parse_responses(conn.written) == []
            assert conn.written.endswith(b"7\r\npartial\r\n")
        else:
            assert (await conn.response()).status == 500
        assert_settled(conn)
        await serves_another_request(build, conn.state)

    run(scenario())
    (record,) = app_failures(error_log)
    assert record.exc_info is not None and isinstance(record.exc_info[1], exc_type)


def test_the_server_cancelling_the_app_is_not_an_app_failure(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    # Graceful shutdown ran out of time: esg cancels the task; nothing to log, no 500.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.settle()
        (task,) = conn.state.tasks
        task.cancel()
        await conn.closed()
        await conn.settle()
        assert task.cancelled()
        assert conn.written == b""
        assert_settled(conn)

    run(scenario())
    assert loud_records(error_log) == []


@pytest.mark.parametrize("exc_type", BASE_EXCEPTIONS)
@pytest.mark.parametrize("accepted", [False, True], ids=["before-accept", "open"])
def test_base_exceptions_from_a_websocket_app_are_app_failures(
    build: Any, exc_type: type[BaseException], accepted: bool, error_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if accepted:
            await send({"type": "websocket.accept"})
        raise exc_type()

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(fake.upgrade_request())
        await conn.settle()
        if accepted:
            (frame,) = conn.frames()
            assert frame.close_code == 1011
            conn.feed(fake.client_close(1011))
        else:
            assert conn.written.startswith(b"HTTP/1.1 500 ")
        await conn.closed()
        await conn.settle()
        assert not conn.state.tasks and not conn.state.connections
        await serves_another_request(build, conn.state)

    run(scenario())
    (record,) = app_failures(error_log)
    assert record.exc_info is not None and isinstance(record.exc_info[1], exc_type)


# -- the client vanishing --------------------------------------------------------------------


def vanish(conn: fake.Connection, how: str) -> None:
    """The client goes away: a reset, or a close (EOF, then asyncio closes the transport)."""
    if how == "reset":
        conn.transport.peer_reset()
    else:
        assert not conn.protocol.eof_received()
        conn.transport.close()


VANISH = ["reset", "eof"]


class Patient:
    """An app that records what it sees and ends the way a well-behaved app does.

    ``mode`` "upload": read the body; "wait": read the body, then wait in receive() (a long
    poll); "stream": stream pieces, one per ``step`` event.  Once told the client left (an
    ``http.disconnect``), it tries to answer anyway and lets send()'s ``ClientDisconnected``
    propagate, which is what most frameworks do.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.messages: list[dict[str, Any]] = []
        self.step = asyncio.Event()
        self.error: BaseException | None = None
        self.ended = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            if self.mode == "stream":
                await send(START)
                for _ in range(100):
                    await send(body(b"piece", more=True))
                    await self.step.wait()
                    self.step.clear()
                await send(body(b""))
                return
            while True:
                message = await receive()
                self.messages.append(message)
                if message["type"] == "http.disconnect":
                    break
            await fake.respond(send, b"nobody reads this")
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ended = True


@pytest.mark.parametrize("how", VANISH)
def test_client_vanishing_before_the_head_is_complete(
    build: Any, how: str, error_log: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(b"GET /slow HTTP/1.1\r\nHost: example.com\r\nX-Part")
        await conn.settle()
        vanish(conn, how)
        await conn.closed()
        await conn.settle()
        assert conn.written == b""
        assert_settled(conn)
        await serves_another_request(build, conn.state)

    run(scenario())
    assert calls == []
    assert loud_records(error_log) == []


@pytest.mark.parametrize("how", VANISH)
def test_client_vanishing_mid_upload(
    build: Any, how: str, error_log: pytest.LogCaptureFixture
) -> None:
    app = Patient("upload")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request("POST", headers=[("Content-Length", "100000")], body=b"x" * 3000))
        await conn.until(lambda: len(app.messages) == 1, "the first piece of the body")
        conn.feed(b"y" * 2000)
        await conn.until(lambda: len(app.messages) == 2, "the second piece")
        vanish(conn, how)
        await conn.until(lambda: app.ended, "the app's end")
        await conn.closed()
        await conn.settle()
        assert conn.written == b""
        assert_settled(conn)
        await serves_another_request(build, conn.state)

    run(scenario())
    assert [m["type"] for m in app.messages] == ["http.request"] * 2 + ["http.disconnect"]
    assert isinstance(app.error, OSError)
    assert loud_records(error_log) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_client_vanishing_mid_chunk_of_an_upload(
    build: Any, chunked: bool, error_log: pytest.LogCaptureFixture
) -> None:
    app = Patient("upload")
    if chunked:
        head = request("POST", headers=[("Transfer-Encoding", "chunked")])
        data = head + b"400\r\n" + b"z" * 100  # the client leaves inside a chunk
    else:
        data = request("POST", headers=[("Content-Length", "1024")], body=b"z" * 100)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(data)
        await conn.until(lambda: len(app.messages) == 1, "the first piece of the body")
        vanish(conn, "eof")
        await conn.until(lambda: app.ended, "the app's end")
        await conn.settle()
        assert conn.written == b""
        assert_settled(conn)

    run(scenario())
    assert app.messages[-1] == {"type": "http.disconnect"}
    assert loud_records(error_log) == []


@pytest.mark.parametrize("how", VANISH)
def test_client_vanishing_while_the_app_waits_in_receive(
    build: Any, how: str, error_log: pytest.LogCaptureFixture
) -> None:
    app = Patient("wait")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.until(lambda: len(app.messages) == 1, "the (empty) body")
        await conn.settle()
        assert not app.ended  # waiting in receive() for the client to leave
        vanish(conn, how)
        await conn.until(lambda: app.ended, "the app's end")
        await conn.closed()
        await conn.settle()
        assert conn.written == b""
        assert_settled(conn)
        await serves_another_request(build, conn.state)

    run(scenario())
    assert app.messages == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]
    assert isinstance(app.error, OSError)
    assert loud_records(error_log) == []


@pytest.mark.parametrize("blocked", [False, True], ids=["reading", "not-reading"])
@pytest.mark.parametrize("how", VANISH)
def test_client_vanishing_mid_stream(
    build: Any, how: str, blocked: bool, error_log: pytest.LogCaptureFixture
) -> None:
    app = Patient("stream")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request())
        for _ in range(3):
            await conn.settle()
            app.step.set()
        await conn.settle()
        if blocked:  # the client stopped reading first: send() waits on the write buffer
            conn.transport.block_writes()
            app.step.set()
            await conn.settle()
        written = conn.written
        assert written.count(b"5\r\npiece\r\n") >= 3
        vanish(conn, how)
        if how == "eof" and blocked:
            # A client that closed only its sending side and doesn't read: asyncio keeps the
            # closing transport for its unsent data, and the write deadline lets it go.
            await conn.settle()
            assert not app.ended
            conn.protocol.check_deadlines(conn.state.now + 3600)
        app.step.set()
        await conn.until(lambda: app.ended, "the app's end")
        await conn.closed()
        await conn.settle()
        assert conn.written == written  # nothing written after the client left
        assert not written.endswith(b"0\r\n\r\n")
        assert_settled(conn)
        await serves_another_request(build, conn.state)

    run(scenario())
    assert isinstance(app.error, OSError)
    assert loud_records(error_log) == []


@pytest.mark.parametrize("how", VANISH)
def test_client_vanishing_after_the_response(
    build: Any, how: str, error_log: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"done"))
        conn.feed(request())
        assert (await conn.response()).body == b"done"
        vanish(conn, how)
        await conn.closed()
        await conn.settle()
        assert_settled(conn)
        assert conn.protocol not in conn.state.connections
        await serves_another_request(build, conn.state)

    run(scenario())
    assert loud_records(error_log) == []


def test_app_answering_after_the_client_left_is_not_an_error(
    build: Any, error_log: pytest.LogCaptureFixture
) -> None:
    # An app that ignores http.disconnect and catches send()'s error, or returns half way.
    outcomes: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if scope["path"] == "/catches":
            try:
                await send(START)
            except OSError:
                outcomes.append("caught")
        else:
            outcomes.append("returns")

    async def scenario() -> None:
        state = ServerState()
        for path in ("/catches", "/returns"):
            conn = fake.connect(build, app, state=state)
            conn.feed(request(target=path))
            await conn.settle()
            vanish(conn, "reset")
            await conn.settle()
            assert conn.written == b""
            assert_settled(conn)

    run(scenario())
    assert outcomes == ["caught", "returns"]
    assert loud_records(error_log) == []


# -- a client that stops reading is reset, not closed ------------------------------------------


class RecordingSocket:
    """Stands in for ``transport.get_extra_info("socket")``: records socket options set."""

    def __init__(self) -> None:
        self.options: list[tuple[int, int, bytes]] = []

    def setsockopt(self, level: int, name: int, value: bytes) -> None:
        self.options.append((level, name, value))


LINGER_RESET = (socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_stalled_reader_is_reset_so_the_kernel_drops_its_unread_data(build: Any) -> None:
    # A plain close would leave the unsent response in the kernel (FIN-WAIT-1 behind a shut
    # window) long after esg let the connection go; SO_LINGER 0 makes the close a reset.
    sock = RecordingSocket()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START)
        for _ in range(100):
            await send(body(b"x" * 1024, more=True))

    async def scenario() -> None:
        conn = fake.connect(build, app, timeout_body=60, extra={"socket": sock})
        conn.transport.block_writes()
        conn.feed(request())
        await conn.settle()
        conn.protocol.check_deadlines(conn.state.now + 59)
        assert sock.options == []
        conn.protocol.check_deadlines(conn.state.now + 61)
        assert sock.options == [LINGER_RESET]
        assert conn.transport.aborted
        await conn.closed()
        await conn.settle()
        assert_settled(conn)

    run(scenario())


def test_other_closes_stay_graceful(build: Any) -> None:
    sock = RecordingSocket()

    async def scenario() -> None:
        state = ServerState()
        # Keep-alive timeout, header timeout (408) and Connection: close: the client reads,
        # and gets everything that was sent.
        idle = fake.connect(build, fake.make_app(), state=state, extra={"socket": sock})
        idle.feed(request())
        await idle.response()
        idle.protocol.check_deadlines(state.now + 3600)
        slow = fake.connect(build, fake.make_app(), state=state, extra={"socket": sock})
        slow.feed(b"GET / HTTP/1.1\r\n")
        slow.protocol.check_deadlines(state.now + 3600)
        closing = fake.connect(build, fake.make_app(), state=state, extra={"socket": sock})
        closing.feed(request(headers=[("Connection", "close")]))
        await closing.response()
        for conn in (idle, slow, closing):
            await conn.closed()
            assert conn.transport.closed and not conn.transport.aborted
        assert (await slow.response()).status == 408

    run(scenario())
    assert sock.options == []


def test_a_socket_that_refuses_the_option_is_still_dropped(build: Any) -> None:
    class Refusing:
        def setsockopt(self, *args: Any) -> None:
            raise OSError("Bad file descriptor")

    async def scenario() -> None:
        conn = fake.connect(
            build, fake.make_app(b"x"), timeout_body=1, extra={"socket": Refusing()}
        )
        conn.feed(request())
        await conn.response()
        conn.transport.block_writes()
        conn.protocol.check_deadlines(conn.state.now + 10)
        assert conn.transport.aborted

    run(scenario())


# -- the write deadline counts progress -------------------------------------------------------


def test_a_close_stuck_below_the_high_water_mark_is_reset(build: Any) -> None:
    # Fewer unsent bytes than the high-water mark: asyncio never pauses writing, and the close
    # waits for them to flush; a client that doesn't read used to hold the connection forever.
    sock = RecordingSocket()

    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"x"), timeout_body=60, extra={"socket": sock})
        conn.transport.set_unsent(30000)
        conn.feed(request(headers=[("Connection", "close")]))
        await conn.response()
        assert conn.transport.closed and not conn.protocol.write_paused
        now = conn.state.now
        conn.protocol.check_deadlines(now + 1)  # the deadline starts with the first look
        conn.protocol.check_deadlines(now + 60)
        await conn.settle()
        assert not conn.transport.lost and sock.options == []
        conn.protocol.check_deadlines(now + 62)
        assert sock.options == [LINGER_RESET]
        await conn.closed()
        assert conn.transport.aborted

    run(scenario())


def test_a_keep_alive_close_stuck_below_the_high_water_mark_is_reset(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"x"), timeout_body=60, timeout_keep_alive=5)
        conn.feed(request())
        await conn.response()
        conn.transport.set_unsent(1000)  # the client stopped reading before the last bytes
        now = conn.state.now
        conn.protocol.check_deadlines(now + 10)  # the keep-alive timeout: close
        assert conn.transport.closed
        conn.protocol.check_deadlines(now + 11)
        await conn.settle()
        assert not conn.transport.lost
        conn.protocol.check_deadlines(now + 100)
        await conn.closed()
        assert conn.transport.aborted

    run(scenario())


def test_a_close_that_flushes_is_not_reset(build: Any) -> None:
    sock = RecordingSocket()

    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(b"x"), timeout_body=60, extra={"socket": sock})
        conn.transport.set_unsent(30000)
        conn.feed(request(headers=[("Connection", "close")]))
        await conn.response()
        now = conn.state.now
        for elapsed in range(1, 600, 10):  # the client reads, slowly
            conn.transport.set_unsent(30000 - elapsed * 50)
            conn.protocol.check_deadlines(now + elapsed)
        assert not conn.transport.aborted
        conn.transport.set_unsent(0)  # all taken: the close completes
        await conn.closed()
        assert conn.transport.closed and not conn.transport.aborted

    run(scenario())
    assert sock.options == []


def test_a_slow_but_steady_reader_is_never_cut(build: Any) -> None:
    # One body message far larger than the write buffer, read slowly: writing stays paused far
    # longer than --timeout-body, but bytes keep leaving (nginx's send_timeout rule).  The old
    # rule, a deadline from the moment writing paused, cut such downloads.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await fake.respond(send, b"x" * 1_000_000)

    async def scenario() -> None:
        conn = fake.connect(build, app, timeout_body=60)
        conn.transport.block_writes()
        conn.transport.set_unsent(1_000_000)
        conn.feed(request())
        await conn.response()
        now = conn.state.now
        for elapsed in range(1, 1000, 5):  # 1000 s of a client taking 1 KiB a second
            conn.transport.set_unsent(1_000_000 - elapsed * 1024)
            conn.protocol.check_deadlines(now + elapsed)
        await conn.settle()
        assert not conn.transport.is_closing()
        # Then it stops reading: cut one timeout later, not before.
        conn.protocol.check_deadlines(now + 1055)
        assert not conn.transport.is_closing()
        conn.protocol.check_deadlines(now + 1062)
        assert conn.transport.aborted
        await conn.closed()

    run(scenario())


def test_a_websocket_close_stuck_on_unsent_bytes_is_reset(build: Any) -> None:
    # The client sends its close frame, the session answers and closes; the client never
    # reads the answer (nor what was queued before it).
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def scenario() -> None:
        conn = fake.connect(build, app, timeout_body=60)
        conn.feed(fake.upgrade_request())
        await conn.settle()
        session = conn.session
        conn.transport.set_unsent(2000)
        conn.feed(fake.client_close(1000))
        await conn.settle()
        assert conn.transport.closed and not conn.transport.lost
        now = conn.state.now
        session.check_deadlines(now + 1)
        session.check_deadlines(now + 60)
        await conn.settle()
        assert not conn.transport.lost
        session.check_deadlines(now + 62)
        await conn.closed()
        assert conn.transport.aborted
        assert not conn.state.connections and not conn.state.tasks

    run(scenario())


def test_a_real_transport_stuck_closing_below_the_high_water_mark_is_dropped(build: Any) -> None:
    # The same on a real socket and asyncio's transport: small kernel buffers, a client that
    # never reads, a response a little larger than what the kernel takes.
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(listener.getsockname())
            server_side, _ = listener.accept()
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        state = ServerState()
        config = fake.FakeConfig(fake.make_app(b"x" * 40000), timeout_body=60)
        protocol_class = build.module("esg.http.protocol").HttpProtocol
        with client:
            transport, protocol = await loop.connect_accepted_socket(
                lambda: protocol_class(config=config, server_state=state, app_state={}, _loop=loop),
                server_side,
            )
            try:
                client.sendall(request(headers=[("Connection", "close")]))
                for _ in range(200):  # until the response is written and the close is waiting
                    await asyncio.sleep(0.01)
                    if transport.is_closing():
                        break
                unsent = transport.get_write_buffer_size()
                if not 0 < unsent < fake.HIGH_WATER or protocol.write_paused:
                    pytest.skip(f"the kernel took a different share of the response ({unsent})")
                now = state.now
                protocol.check_deadlines(now + 1)
                protocol.check_deadlines(now + 100)
                for _ in range(200):
                    await asyncio.sleep(0.01)
                    if not state.connections:
                        break
                assert not state.connections  # connection_lost: the socket was let go
                assert tcp_state_after_reset(client) == 7  # TCP_CLOSE: a reset, not a FIN
            finally:
                transport.abort()
                await asyncio.sleep(0)

    run(scenario())


def tcp_state_after_reset(sock: socket.socket) -> int:
    """The client socket's TCP state once the server's reset has arrived (bounded wait)."""
    for _ in range(200):
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        if state != 1:  # no longer ESTABLISHED
            return int(state)
        time.sleep(0.01)
    return int(state)
