"""Connections retire themselves; the server only asks (``Server.retire_connections``).

A retiring HTTP connection must lose no request a client already sent or is about to send on
it: the last response it gives says ``connection: close``, and it reports (``retired``) once
that last request has arrived or the connection has closed.  The connection tests run on the
fake transport against both builds; the server tests use stand-in connections.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import fake_transport as fake
import pytest

from esg.config import Config
from esg.lifespan.off import LifespanOff
from esg.server import Server
from esg.state import ServerState

run = fake.run
request = fake.request


class Reports:
    """The ``retired`` callback: records who reported."""

    def __init__(self) -> None:
        self.retired: list[Any] = []

    def __call__(self, connection: Any) -> None:
        self.retired.append(connection)


def held_app(release: asyncio.Event, *, stream: bool = False) -> Any:
    """Waits for ``release`` before (or, with ``stream``, in the middle of) its response."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] != "/held":
            await fake.respond(send, b"quick")
            return
        if stream:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await release.wait()
            await send({"type": "http.response.body", "body": b"b"})
            return
        await release.wait()
        await fake.respond(send, b"held")

    return app


# -- an HTTP connection ------------------------------------------------------------------------


def test_an_idle_connection_answers_its_next_request_with_close(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app())
        conn.feed(request())
        await conn.response()
        reports = Reports()
        conn.protocol.retire(reports)
        await conn.settle()
        assert reports.retired == []  # a request may be on its way: wait for it
        assert not conn.transport.is_closing()
        conn.feed(request(target="/last"))
        assert reports.retired == [conn.protocol]
        first, last = await conn.responses(2)
        assert first.header(b"connection") is None
        assert last.header(b"connection") == b"close"
        await conn.closed()
        assert reports.retired == [conn.protocol]  # once

    run(scenario())


def test_a_response_not_yet_written_says_close(build: Any) -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        conn = fake.connect(build, held_app(release))
        conn.feed(request(target="/held"))
        await conn.settle()
        reports = Reports()
        conn.protocol.retire(reports)
        assert reports.retired == [conn.protocol]  # nothing more can come in unannounced
        release.set()
        response = await conn.response()
        assert response.body == b"held"
        assert response.header(b"connection") == b"close"
        await conn.closed()

    run(scenario())


def test_after_a_keep_alive_head_the_next_request_is_the_last(build: Any) -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        conn = fake.connect(build, held_app(release, stream=True))
        conn.feed(request(target="/held"))
        await conn.until(lambda: b"1\r\na\r\n" in conn.written, "the first piece")
        reports = Reports()
        conn.protocol.retire(reports)
        release.set()
        streamed = await conn.response()
        assert streamed.body == b"ab"
        assert streamed.header(b"connection") is None  # it said keep-alive, and keeps it
        await conn.settle()
        assert reports.retired == []
        assert not conn.transport.is_closing()
        conn.feed(request(target="/next"))
        assert reports.retired == [conn.protocol]
        _, last = await conn.responses(2)
        assert last.body == b"quick"
        assert last.header(b"connection") == b"close"
        await conn.closed()

    run(scenario())


def test_a_pipelined_request_behind_a_keep_alive_head_is_the_last(build: Any) -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        conn = fake.connect(build, held_app(release, stream=True))
        conn.feed(request(target="/held") + request(target="/queued"))
        await conn.until(lambda: b"1\r\na\r\n" in conn.written, "the first piece")
        reports = Reports()
        conn.protocol.retire(reports)
        release.set()
        streamed, queued = await conn.responses(2)
        assert streamed.header(b"connection") is None
        # /queued ran ahead while /held streamed, and its answer (held until /held was out)
        # was formed before the retire: it said keep-alive, so the next request is the last.
        assert queued.header(b"connection") is None
        await conn.settle()
        assert reports.retired == []
        assert not conn.transport.is_closing()
        conn.feed(request(target="/next"))
        assert reports.retired == [conn.protocol]
        *_, last = await conn.responses(3)
        assert last.header(b"connection") == b"close"
        await conn.closed()

    run(scenario())


def test_the_rest_of_an_unread_body_is_drained_first(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app())
        conn.feed(request("POST", headers=[("Content-Length", "10")], body=b"12345"))
        await conn.response()  # answered without reading; 5 body bytes still to come
        reports = Reports()
        conn.protocol.retire(reports)
        await conn.settle()
        assert reports.retired == []
        conn.feed(b"67890" + request(target="/last"))
        assert reports.retired == [conn.protocol]
        _, last = await conn.responses(2)
        assert last.header(b"connection") == b"close"
        await conn.closed()

    run(scenario())


def test_a_retiring_idle_connection_still_meets_its_keep_alive_deadline(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app(), timeout_keep_alive=5)
        conn.feed(request())
        await conn.response()
        reports = Reports()
        conn.protocol.retire(reports)
        conn.protocol.check_deadlines(conn.state.now + 6)
        assert conn.transport.closed
        assert reports.retired == [conn.protocol]
        assert len(fake.parse_responses(conn.written)) == 1

    run(scenario())


def test_a_client_that_leaves_while_retiring_is_retired(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app())
        conn.feed(request())
        await conn.response()
        reports = Reports()
        conn.protocol.retire(reports)
        conn.transport.peer_reset()
        assert reports.retired == [conn.protocol]

    run(scenario())


def test_a_closing_connection_is_retired_at_once(build: Any) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, fake.make_app())
        conn.feed(request(headers=[("Connection", "close")]))
        await conn.response()
        assert conn.transport.is_closing()
        reports = Reports()
        conn.protocol.retire(reports)
        assert reports.retired == [conn.protocol]

    run(scenario())


def test_a_connection_made_while_the_server_retires_retires_too(build: Any) -> None:
    async def scenario() -> None:
        state = ServerState()
        handed: list[Any] = []
        state.retire_connection = handed.append
        conn = fake.connect(build, fake.make_app(), state=state)
        assert handed == [conn.protocol]

    run(scenario())


# -- a WebSocket session -------------------------------------------------------------------------


def test_a_websocket_session_has_nothing_to_wait_for(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(fake.upgrade_request())
        await conn.until(lambda: b"\r\n\r\n" in conn.written, "the 101 response")
        await conn.settle()
        written = conn.written
        reports = Reports()
        conn.session.retire(reports)
        assert reports.retired == [conn.session]
        assert conn.written == written  # shutdown() closes it with 1012 afterwards
        assert not conn.transport.is_closing()
        conn.session.abort_connection()

    run(scenario())


# -- the server ----------------------------------------------------------------------------------


class StandIn:
    """A connection that reports retired when told to (``report_at_once``: when asked); its
    ``shutdown()`` ends it at once."""

    def __init__(self, report_at_once: bool) -> None:
        self.report_at_once = report_at_once
        self.retired: Any = None
        self.asked = 0
        self.state: ServerState | None = None

    def retire(self, retired: Any) -> None:
        self.asked += 1
        self.retired = retired
        if self.report_at_once:
            retired(self)

    def check_deadlines(self, now: float) -> None:
        pass

    def shutdown(self) -> None:
        if self.state is not None:
            self.state.connections.discard(self)

    def abort_connection(self) -> None:
        pass


async def hello(scope: Any, receive: Any, send: Any) -> None:
    pass


def retiring_server(*connections: Any, **options: Any) -> Server:
    config = Config(hello, log_config=None, lifespan="off", **options)
    server = Server(config)
    server.server_state = ServerState()
    server.server_state.connections.update(connections)
    for connection in connections:
        connection.state = server.server_state
    server.lifespan = LifespanOff(config)
    server.retire_keep_alive = True
    return server


def test_the_server_waits_until_every_connection_reports() -> None:
    now, later = StandIn(True), StandIn(False)
    server = retiring_server(now, later, timeout_keep_alive=30)

    async def scenario() -> None:
        waiting = asyncio.ensure_future(server.retire_connections())
        await asyncio.sleep(0.05)
        assert (now.asked, later.asked) == (1, 1)
        assert not waiting.done()
        later.retired(later)
        await asyncio.wait_for(waiting, 1.0)

    run(scenario())
    assert server.server_state is not None and server.server_state.retire_connection is None


def test_a_connection_made_meanwhile_is_asked_and_waited_for() -> None:
    first, newcomer = StandIn(False), StandIn(False)
    server = retiring_server(first, timeout_keep_alive=30)

    async def scenario() -> None:
        waiting = asyncio.ensure_future(server.retire_connections())
        await asyncio.sleep(0)
        state = server.server_state
        assert state is not None and state.retire_connection is not None
        state.retire_connection(newcomer)  # what HttpProtocol.connection_made does
        first.retired(first)
        await asyncio.sleep(0.05)
        assert not waiting.done()
        newcomer.retired(newcomer)
        await asyncio.wait_for(waiting, 1.0)

    run(scenario())


def test_the_server_stops_waiting_at_the_keep_alive_timeout() -> None:
    server = retiring_server(StandIn(False), timeout_keep_alive=0)
    started = time.monotonic()
    run(server.retire_connections())
    assert 0.9 <= time.monotonic() - started < 5.0  # the keep-alive timeout plus a second


def test_a_second_interrupt_stops_the_waiting() -> None:
    server = retiring_server(StandIn(False), timeout_keep_alive=30)

    async def scenario() -> None:
        waiting = asyncio.ensure_future(server.retire_connections())
        await asyncio.sleep(0.05)
        server.handle_exit(2, None)  # SIGINT: should_exit
        server.handle_exit(2, None)  # again: force_exit
        await asyncio.wait_for(waiting, 1.0)

    run(scenario())


@pytest.mark.parametrize("grace", [None, 30, 0])
def test_the_grace_period_left_is_not_written_into_the_config(grace: int | None) -> None:
    server = retiring_server(StandIn(True), timeout_graceful_shutdown=grace)
    run(server.shutdown())
    assert server.config.timeout_graceful_shutdown == grace
