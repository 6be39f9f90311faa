# cython: annotation_typing=False
"""The HTTP/2 connection: asyncio glue between the socket, the sans-IO codec and the cycles.

Compiled twin ``esg.http2._protocol_c``, typed by ``_protocol_c.pxd``.

An ``Http2Protocol`` takes a connection over from the ``HttpProtocol`` that accepted it: when
the first bytes are the HTTP/2 connection preface (cleartext with prior knowledge), or when
TLS's ALPN chose ``h2``.  It keeps that ``HttpProtocol`` as ``http1``: the per-connection parts
of a scope (client, server, scheme, trusted proxy) live there, and every stream's scope is built
by the same code as an HTTP/1.1 request's, as is its access log line.

* ``ServerConnection`` (esg/http2/connection.py) turns bytes into events and responses into
  frames; this module only reacts to the events.
* One ``Http2Stream`` per request: the ``StructuredHost`` (esg/http/cycle_host.py) of the one
  ``RequestCycle`` that answers it, so every ASGI rule is the cycle's, as on HTTP/1.1.
* Flow control both ways: request body is credited back to the client as the app ``receive()``s
  it (so a slow app back-pressures its client); a ``send()`` that the stream's or the
  connection's window can't take waits until ``WindowOpened``, and every ``send()`` waits while
  the transport's write buffer is full (``esg.write_flow``).
* Frames that streams produce in one loop turn leave in one ``transport.write``.
* Deadlines without timers, like HTTP/1.1's: the server's ticker calls ``check_deadlines``
  (the preface, idle keep-alive, each stream's body, keep-alive PINGs, stalled writes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any

from esg._compiled import is_compiled, load
from esg._teardown import reset_on_close
from esg.http2.errors import StreamClosedError
from esg.http2.frames import ErrorCode
from esg.logging import TRACE_LOG_LEVEL

_COMPILED = is_compiled(__name__)  # which twin this is: neighbours come from the same build

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from esg.http.cycle import RESPONSE_NOT_STARTED, RequestCycle
    from esg.http.parser import Request
    from esg.http.protocol import HttpProtocol
    from esg.http.serializer import ResponseHead
    from esg.http2.connection import (
        ConnectionTerminated,
        DataReceived,
        GoAwayReceived,
        PingAcked,
        RequestHeadersTooLarge,
        RequestReceived,
        ServerConnection,
        StreamReset,
        TrailersReceived,
        WindowOpened,
    )
    from esg.write_flow import WriteFlow
else:
    _cycle = load("esg.http.cycle", _COMPILED)
    RequestCycle = _cycle.RequestCycle
    RESPONSE_NOT_STARTED = _cycle.RESPONSE_NOT_STARTED
    Request = load("esg.http.parser", _COMPILED).Request
    _connection = load("esg.http2.connection", _COMPILED)
    ServerConnection = _connection.ServerConnection
    RequestReceived = _connection.RequestReceived
    RequestHeadersTooLarge = _connection.RequestHeadersTooLarge
    DataReceived = _connection.DataReceived
    TrailersReceived = _connection.TrailersReceived
    StreamReset = _connection.StreamReset
    WindowOpened = _connection.WindowOpened
    ConnectionTerminated = _connection.ConnectionTerminated
    GoAwayReceived = _connection.GoAwayReceived
    PingAcked = _connection.PingAcked
    WriteFlow = load("esg.write_flow", _COMPILED).WriteFlow

__all__ = ["PREFACE_HEAD", "Http2Protocol", "Http2Stream"]

# What HTTP/1.1's parser sees of the connection preface: a request line it refuses with 505
# and an empty header section.  ``HttpProtocol`` checks for it only there, so serving HTTP/2
# on the same port costs HTTP/1.1 requests nothing.
PREFACE_HEAD = b"PRI * HTTP/2.0\r\n\r\n"

_TASK_CONTEXT_ARGUMENT = sys.version_info >= (3, 11)
_EAGER_START = sys.version_info >= (3, 12) and os.environ.get("ESG_NO_EAGER", "") in ("", "0")
INFINITY = float("inf")
_NO_ERROR = int(ErrorCode.NO_ERROR)
_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_CANCEL = int(ErrorCode.CANCEL)
_REFUSED_STREAM = int(ErrorCode.REFUSED_STREAM)
_KEEPALIVE_PING = b"esg-ping"
# A :path the HTTP/1.1 parser would refuse in a request line: anything but visible ASCII.
_BAD_TARGET = re.compile(rb"[^\x21-\x7e]").search
_STATUS = {status: b"%d" % status for status in range(100, 600)}
_STATUS_FIELDS = {status: (b":status", code) for status, code in _STATUS.items()}
_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")

logger = logging.getLogger("esg.error")


class Http2Stream:
    """One request on an HTTP/2 connection: the ``StructuredHost`` of its ``RequestCycle``.

    It holds the request body the client sent until the app asks for it, and the part of a
    response piece the flow-control windows couldn't take yet (``unsent``), which the cycle's
    ``send()`` waits for in ``drain()``.
    """

    __slots__ = (
        "protocol",
        "stream_id",
        "cycle",
        "loop",
        "default_names",
        "body",
        "body_ended",
        "received",
        "body_waiter",
        "body_deadline",
        "unsent",
        "unsent_end",
        "unsent_trailers",
        "window_waiter",
        "closed",
        "app_done",
    )

    def __init__(self, protocol: Http2Protocol, stream_id: int) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.cycle: RequestCycle | None = None
        self.loop = protocol.loop
        self.default_names = protocol.default_names
        # Received, not yet handed to the app; made by the first DATA (most requests have none).
        self.body: list[bytes] | None = None
        self.body_ended = False  # END_STREAM (or trailers) received
        self.received = 0  # body bytes, for --limit-request-body
        self.body_waiter: asyncio.Future[None] | None = None
        self.body_deadline = INFINITY
        self.unsent: bytes | None = None  # what the windows didn't take yet
        self.unsent_end = False
        self.unsent_trailers: list[tuple[bytes, bytes]] | None = None
        self.window_waiter: asyncio.Future[None] | None = None
        self.closed = False  # forgotten by the connection: reset, or the response is out
        self.app_done = False  # the app's task has ended

    # -- StructuredHost: back-pressure ---------------------------------------------------

    @property
    def write_paused(self) -> bool:
        return self.unsent is not None or self.protocol.write_flow.paused

    async def drain(self) -> None:
        cycle = self.cycle
        while cycle is not None and not cycle.disconnected:
            if self.unsent is not None:
                waiter = self.window_waiter = self.loop.create_future()
                await waiter
            elif self.protocol.write_flow.paused:
                await self.protocol.write_flow.drain()
            else:
                return

    def defer_head(self, cycle: RequestCycle) -> None:
        self.protocol.http1.defer_head(cycle)  # the server's one callback per loop turn

    # -- StructuredHost: the response ----------------------------------------------------

    def send_head(self, cycle: RequestCycle, head: ResponseHead, body: bytes, end: bool) -> None:
        if self.closed:
            return
        protocol = self.protocol
        try:
            headers = protocol.head_fields(head)
            protocol.conn.send_headers(self.stream_id, headers, end and not body)
            if body:
                self._send(body, end)
        except StreamClosedError:
            self._gone()
        protocol.want_flush()

    def send_body(self, cycle: RequestCycle, body: bytes, end: bool) -> None:
        if self.closed:
            return
        if self.unsent is not None:  # (the cycle waits in drain() first; kept in order anyway)
            self.unsent += body
            self.unsent_end = end
            return
        try:
            self._send(body, end)
        except StreamClosedError:
            self._gone()
        self.protocol.want_flush()

    def send_trailers(self, cycle: RequestCycle, fields: Iterable[tuple[Any, Any]]) -> None:
        if self.closed:
            return
        headers = _lowercased(fields)
        if self.unsent is not None:
            self.unsent_trailers = headers  # they follow the body still waiting for window
            return
        try:
            self.protocol.conn.send_trailers(self.stream_id, headers)
        except StreamClosedError:
            self._gone()
        self.protocol.want_flush()

    def _send(self, body: bytes, end: bool) -> None:
        sent = self.protocol.conn.send_data(self.stream_id, body, end)
        if sent < len(body):
            self.unsent = body[sent:]
            self.unsent_end = end

    def window_opened(self) -> None:
        """The windows may take more of ``unsent`` now (``WindowOpened``)."""
        data = self.unsent
        if data is None or self.closed:
            return
        try:
            sent = self.protocol.conn.send_data(self.stream_id, data, self.unsent_end)
            if sent < len(data):
                self.unsent = data[sent:]
                return
            self.unsent = None
            trailers = self.unsent_trailers
            if trailers is not None:
                self.unsent_trailers = None
                self.protocol.conn.send_trailers(self.stream_id, trailers)
        except StreamClosedError:
            self._gone()
            return
        self._wake_writer()
        cycle = self.cycle
        if cycle is not None and cycle.response_complete:
            self._finished()

    # -- StructuredHost: the request body ------------------------------------------------

    def pull_body(self, cycle: RequestCycle) -> dict[str, Any] | None:
        body = self.body
        if body:
            data = body[0] if len(body) == 1 else b"".join(body)
            body.clear()
            # The app has it: give the client its window back (batched by the codec).
            self.protocol.conn.acknowledge_received_data(self.stream_id, len(data))
            self.protocol.want_flush()
            return {"type": "http.request", "body": data, "more_body": not self.body_ended}
        if self.body_ended:
            return {"type": "http.request", "body": b"", "more_body": False}
        return None

    async def wait_for_body(self, cycle: RequestCycle) -> None:
        waiter = self.body_waiter = self.loop.create_future()
        self.body_deadline = monotonic() + self.protocol.timeout_body
        try:
            await waiter
        finally:
            self.body_waiter = None
            self.body_deadline = INFINITY

    def data_received(self, data: bytes, end: bool) -> None:
        if data:
            if self.body is None:
                self.body = [data]
            else:
                self.body.append(data)
        if end:
            self.body_ended = True
        self._wake_reader()

    def _wake_reader(self) -> None:
        waiter = self.body_waiter
        self.body_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self.window_waiter
        self.window_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- StructuredHost: the end -----------------------------------------------------------

    def response_complete(self, cycle: RequestCycle) -> None:
        self.protocol.response_done(cycle)
        if self.unsent is None:
            self._finished()

    def task_done(self, cycle: RequestCycle) -> None:
        protocol = self.protocol
        protocol.server_state.tasks.discard(cycle.task)
        if protocol.metrics is not None:
            protocol.metrics.in_flight -= 1
        self.app_done = True
        if self.closed:
            self._let_go()

    def _let_go(self) -> None:
        # The stream and its cycle point at each other (the cycle's host is the stream): once
        # the connection has forgotten the stream and the app has ended, neither is needed,
        # and breaking the link lets reference counting free both (and the app's task) at
        # once instead of leaving every request's objects to the garbage collector.
        self.cycle = None

    def close_connection(self) -> None:
        """The response can't be completed: reset this stream; the connection carries on."""
        cycle = self.cycle
        if cycle is None or not cycle.response_complete:
            self.reset(_INTERNAL_ERROR)

    def abort_connection(self) -> None:
        self.reset(_INTERNAL_ERROR)

    # -- the connection's side ---------------------------------------------------------------

    def reset(self, code: int) -> None:
        """Abandon the stream (RST_STREAM ``code``); the app sees the client gone."""
        if not self.closed:
            self.protocol.conn.reset_stream(self.stream_id, code)
            self.protocol.want_flush()
        self.disconnect()

    def disconnect(self) -> None:
        """The stream is gone (reset, or the connection lost): wake whoever waits on it."""
        cycle = self.cycle
        if cycle is not None and not cycle.disconnected:
            cycle.disconnected = True
            cycle.wake_receiver()
        self.unsent = None
        self.unsent_trailers = None
        self._wake_reader()
        self._wake_writer()
        self._forget()

    def _gone(self) -> None:
        """The codec refused to send: the stream closed under the response."""
        self.disconnect()

    def _finished(self) -> None:
        """The whole response is with the codec."""
        if not self.body_ended and not self.closed:
            # Section 8.1: the response is complete, the rest of the upload isn't needed.
            self.protocol.conn.reset_stream(self.stream_id, _NO_ERROR)
            self.protocol.want_flush()
        self._wake_reader()
        self._forget()

    def _forget(self) -> None:
        if not self.closed:
            self.closed = True
            self.protocol.stream_closed(self)
            if self.app_done:
                self._let_go()


class Http2Protocol:
    """One HTTP/2 connection; see the module docstring.  Made by ``HttpProtocol``, which hands
    over its transport (``start()``)."""

    __slots__ = (
        "http1",
        "config",
        "app",
        "loop",
        "server_state",
        "default_names",
        "default_fields",
        "metrics",
        "trace_log",
        "access_log",
        "limit_concurrency",
        "limit_request_body",
        "limit_request_fields",
        "limit_request_field_size",
        "timeout_keep_alive",
        "timeout_header",
        "timeout_body",
        "ping_interval",
        "conn",
        "transport",
        "streams",
        "write_flow",
        "flush_scheduled",
        "receiving",
        "answered",
        "header_deadline",
        "keepalive_deadline",
        "ping_deadline",
        "ping_outstanding",
        "shutting_down",
        "shutdown_deadline",
        "peer_gone_away",
        "counted",
    )

    def __init__(self, http1: HttpProtocol) -> None:
        config = http1.config
        self.http1 = http1
        self.config = config
        self.app = http1.app
        self.loop = http1.loop
        self.server_state = http1.server_state
        self.default_names = http1.default_names
        self.default_fields = _default_fields(self.server_state)
        self.metrics = http1.metrics
        self.trace_log = http1.trace_log
        self.access_log = http1.access_log
        self.limit_concurrency: int | None = config.limit_concurrency
        self.limit_request_body: int | None = config.limit_request_body
        self.limit_request_fields = int(config.limit_request_fields)
        self.limit_request_field_size = int(config.limit_request_field_size)
        self.timeout_keep_alive = float(config.timeout_keep_alive)
        self.timeout_header = float(config.timeout_header)
        self.timeout_body = float(config.timeout_body)
        interval = config.http2_keep_alive_interval
        self.ping_interval = float(interval) if interval else 0.0
        self.conn = ServerConnection(
            max_concurrent_streams=config.http2_max_concurrent_streams,
            initial_window_size=config.http2_initial_stream_window_size,
            connection_window_size=config.http2_initial_connection_window_size,
            max_frame_size=config.http2_max_frame_size,
            max_header_list_size=max_header_list_size(config),
            enable_connect_protocol=config.ws != "none",  # WebSockets (RFC 8441)
        )
        self.transport: Any = None
        self.streams: dict[int, Http2Stream] = {}
        self.write_flow = WriteFlow(self.loop, self.timeout_body)
        self.flush_scheduled = False
        self.receiving = False  # inside data_received: it flushes once at its end
        self.answered = 0
        now = monotonic()
        self.header_deadline = now + self.timeout_header  # the preface and the client's SETTINGS
        self.keepalive_deadline = INFINITY
        self.ping_deadline = now + self.ping_interval if self.ping_interval else INFINITY
        self.ping_outstanding = False
        self.shutting_down = False
        self.shutdown_deadline = INFINITY
        self.peer_gone_away = False
        self.counted = False  # the codec's attack counters went to the metrics

    def start(self, transport: Any, received: bytes) -> None:
        """Take the connection over with the bytes HTTP/1.1 had read of it (maybe none)."""
        self.transport = transport
        state = self.server_state
        state.connections.add(self)
        if self.trace_log:
            logger.log(TRACE_LOG_LEVEL, "%s - HTTP/2 connection", self.http1.client_label)
        if self.http1.write_flow.paused:
            self.write_flow.carry_on_from(self.http1.write_flow)
        if self.http1.read_paused:
            transport.resume_reading()
        self._flush()  # our SETTINGS go first (section 3.4)
        if received:
            self.data_received(received)
        retire = state.retire_connection
        if retire is not None:
            retire(self)

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover
        raise RuntimeError("an Http2Protocol is started by HttpProtocol, never made")

    def data_received(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.received_bytes += len(data)
        self.receiving = True
        try:
            events = self.conn.receive_data(data)
            if self.conn.awaiting_headers:
                if self.header_deadline == INFINITY:  # a header block began: it ends in time
                    self.header_deadline = monotonic() + self.timeout_header
            elif self.header_deadline != INFINITY:
                self.header_deadline = INFINITY
                if not self.streams and self.keepalive_deadline == INFINITY:
                    # Preface and SETTINGS in, no request yet: idle from here.
                    self.keepalive_deadline = monotonic() + self.timeout_keep_alive
            for event in events:
                self._handle(event)
        finally:
            self.receiving = False
        self._flush()
        self._close_if_done()

    def eof_received(self) -> bool | None:
        return None  # like HTTP/1.1: the client closing its side is a disconnect

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.server_state
        state.connections.discard(self)
        metrics = self.metrics
        if metrics is not None:
            metrics.connections_open -= 1  # the connection HttpProtocol counted
            metrics.connections_closed += 1
        if self.trace_log:
            logger.log(TRACE_LOG_LEVEL, "%s - HTTP/2 connection lost", self.http1.client_label)
        self.transport = None
        for stream in list(self.streams.values()):
            stream.disconnect()
        self.streams.clear()
        self.write_flow.release()
        self._count_attacks()

    def pause_writing(self) -> None:
        self.write_flow.pause()

    def resume_writing(self) -> None:
        self.write_flow.resume()

    # -- events ------------------------------------------------------------------------------

    def _handle(self, event: Any) -> None:
        kind = type(event)
        if kind is RequestReceived:
            self._request(event)
        elif kind is DataReceived:
            self._data(event)
        elif kind is TrailersReceived:
            stream = self.streams.get(event.stream_id)
            if stream is not None:  # request trailers: the body's end (ASGI has no place for them)
                stream.data_received(b"", True)
        elif kind is WindowOpened:
            self._window_opened(event.stream_id)
        elif kind is StreamReset:
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.disconnect()
        elif kind is RequestHeadersTooLarge:
            self._answer(event.stream_id, 431, "Request Header Fields Too Large", event.end_stream)
        elif kind is PingAcked:
            if event.payload == _KEEPALIVE_PING:
                self.ping_outstanding = False
        elif kind is GoAwayReceived:
            self.peer_gone_away = True
            if event.error_code != _NO_ERROR:
                self._close()
        elif kind is ConnectionTerminated:
            logger.info(
                "HTTP/2 connection error from %s: %s", self.http1.client_label, event.reason
            )
            self._count_attacks()
            self._close()

    def _request(self, event: RequestReceived) -> None:
        sid = event.stream_id
        state = self.server_state
        state.total_requests += 1
        if state.total_requests >= state.request_limit:
            state.reached_request_limit()
        headers = event.headers
        path = event.path
        if path is None:
            # CONNECT (section 8.5): no tunnels here.
            self._answer(sid, 501, "Not Implemented", event.end_stream, "not_implemented")
            return
        if len(headers) > self.limit_request_fields:
            self._answer(sid, 431, "Request Header Fields Too Large", event.end_stream)
            return
        limit = self.limit_concurrency
        if limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit):
            self._refuse(sid)
            return
        body_limit = self.limit_request_body
        if body_limit is not None and event.content_length > body_limit:
            self._answer(sid, 413, "Content Too Large", event.end_stream, "body_too_large")
            return
        if _BAD_TARGET(path) is not None:
            self._answer(sid, 400, "Invalid request target", event.end_stream, "bad_request_line")
            return
        expect_continue = False
        has_host = False
        forwarded = False
        field_limit = self.limit_request_field_size
        for name, value in headers:
            if len(name) + len(value) > field_limit:
                self._answer(sid, 431, "Request Header Fields Too Large", event.end_stream)
                return
            if name == b"host":
                has_host = True
            elif name == b"expect":
                expect_continue = value.lower() == b"100-continue"
            elif name.startswith(b"x-forwarded-"):
                forwarded = True
        if event.protocol is not None:
            # RFC 8441's extended CONNECT: a WebSocket on this stream (the limits above apply).
            from esg.http2.websocket import open_websocket

            open_websocket(self, event)
            return
        if not has_host and event.authority is not None:
            headers = [(b"host", event.authority), *headers]  # as ASGI asks of HTTP/2
        query = path.find(b"?")
        raw_path, query_string = (path, b"") if query < 0 else (path[:query], path[query + 1 :])
        request = Request(event.method, path, raw_path, query_string, "2", headers)
        # As the HTTP/1.1 parser says: X-Forwarded-* fields are there, to be applied if the
        # peer is a trusted proxy (HttpProtocol decides); without them nothing is looked up.
        request.forwarded = forwarded
        http1 = self.http1
        scope = http1.build_scope(request)
        stream = Http2Stream(self, sid)
        if event.end_stream:
            stream.body_ended = True
        metrics = self.metrics
        if metrics is not None:
            metrics.in_flight += 1
            if self.answered:
                metrics.keepalive_requests += 1
        cycle = RequestCycle(
            stream,
            scope,
            event.method,
            "2",
            True,
            expect_continue and not event.end_stream,
            True,
        )
        stream.cycle = cycle
        self.streams[sid] = stream
        # Not idle any more; a request answered or refused above leaves an idle connection so.
        self.keepalive_deadline = INFINITY
        if self.access_log or metrics is not None:
            cycle.started_at = perf_counter()
        self._run(cycle)

    def _run(self, cycle: RequestCycle) -> None:
        """Start the app's task: its first step at once on Python 3.12+ (as HTTP/1.1 does)."""
        context = self.http1.base_context.copy()
        if _EAGER_START:
            task = asyncio.Task(  # type: ignore[call-arg,unused-ignore]
                cycle.run_asgi(self.app), loop=self.loop, context=context, eager_start=True
            )
            if task.done():
                return
        elif _TASK_CONTEXT_ARGUMENT:
            task = self.loop.create_task(cycle.run_asgi(self.app), context=context)
        else:  # Python 3.10: a task copies the context it is created in
            task = context.run(self.loop.create_task, cycle.run_asgi(self.app))
        cycle.task = task
        self.server_state.tasks.add(task)  # run_asgi removes it when it ends

    def _data(self, event: DataReceived) -> None:
        data = event.data
        stream = self.streams.get(event.stream_id)
        cycle = stream.cycle if stream is not None else None
        if cycle is None and stream is not None:
            stream.data_received(data, event.end_stream)  # a WebSocket (esg/http2/websocket.py)
            return
        if stream is None or cycle is None or cycle.response_complete or cycle.disconnected:
            # Nobody will read it: give the window back now.
            self.conn.acknowledge_received_data(event.stream_id, len(data))
            return
        stream.received += len(data)
        limit = self.limit_request_body
        if limit is not None and stream.received > limit:
            if cycle.state == RESPONSE_NOT_STARTED:
                stream.disconnect()
                self._answer(event.stream_id, 413, "Content Too Large", False, "body_too_large")
            else:
                stream.reset(_CANCEL)
            return
        stream.data_received(data, event.end_stream)

    def _window_opened(self, stream_id: int) -> None:
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.window_opened()
            return
        for stream in list(self.streams.values()):  # the connection's window: all may go on
            if stream.unsent is not None:
                stream.window_opened()

    def _refuse(self, stream_id: int) -> None:
        """``--limit-concurrency``: REFUSED_STREAM, where HTTP/1.1 answers 503.  Section 8.7:
        the request was not processed, so any client may retry it, even a POST, later or on
        another connection (gRPC and browsers do so by themselves); counted as the 503 is."""
        if self.metrics is not None:
            self.metrics.rejected_with("limit_concurrency")
        self.conn.reset_stream(stream_id, _REFUSED_STREAM)
        self.want_flush()

    def _answer(
        self,
        stream_id: int,
        status: int,
        reason: str,
        end_stream: bool,
        kind: str = "header_too_large",
    ) -> None:
        """esg's own answer on a stream the app never sees (413, 431, 501 ...)."""
        if self.metrics is not None:
            self.metrics.rejected_with(kind)
        if status != 503:
            logger.warning("Invalid HTTP/2 request: %d %s", status, reason)
        body = reason.encode("ascii", "replace")
        fields = self.response_fields(status, [_TEXT_PLAIN, (b"content-length", b"%d" % len(body))])
        conn = self.conn
        try:
            conn.send_headers(stream_id, fields)
            if conn.send_data(stream_id, body, True) < len(body):
                conn.reset_stream(stream_id, _NO_ERROR)  # no window even for that: give up
        except StreamClosedError:
            return
        if not end_stream:
            conn.reset_stream(stream_id, _NO_ERROR)  # section 8.1: the body isn't wanted
        self.want_flush()

    # -- what the streams ask of the connection ----------------------------------------------

    def head_fields(self, head: ResponseHead) -> list[tuple[bytes, bytes]]:
        """The header block of a response the cycle checked (``StructuredHost.send_head``):
        ``:status``, the app's fields, and the Date, Server and ``--header`` defaults the app
        didn't set itself.  Connection-specific fields are the codec's to drop."""
        status = head.status
        headers = [_STATUS_FIELDS[status]]  # (the cycle admits 100-599 only)
        fields = head.fields
        if fields:
            headers += fields
        if status >= 200:
            if not head.has_date:
                date = self.server_state.date_field
                if date is not None:
                    headers.append(date)
            if head.overridden is None and not head.has_server:
                headers += self.default_fields
            else:
                skip: Collection[bytes] = head.overridden or ()
                if head.has_server:
                    skip = {b"server", *skip}
                headers += [field for field in self.default_fields if field[0] not in skip]
        return headers

    def response_fields(
        self, status: int, fields: Iterable[tuple[Any, Any]]
    ) -> list[tuple[bytes, bytes]]:
        """The header block of a response of esg's own or a WebSocket's: ``:status``, the
        fields with their names lowercased (HTTP/2 requires it), and the Date, Server and
        ``--header`` defaults not among them.  Connection-specific fields are the codec's to
        drop."""
        headers = [(b":status", _STATUS.get(status) or b"%d" % status)]
        headers += _lowercased(fields)
        if status >= 200:
            defaults = self.default_fields
            date = self.server_state.date_field
            if len(headers) > 1:
                names = {name for name, _ in headers}
                if date is not None and b"date" not in names:
                    headers.append(date)
                headers += [field for field in defaults if field[0] not in names]
            else:
                if date is not None:
                    headers.append(date)
                headers += defaults
        return headers

    def want_flush(self) -> None:
        """Frames are waiting in the codec: write them at the end of this loop turn."""
        if self.receiving or self.flush_scheduled:
            return
        self.flush_scheduled = True
        self.loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self.flush_scheduled = False
        self._flush()
        self._close_if_done()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                if self.metrics is not None:
                    self.metrics.sent_bytes += len(data)
                transport.write(data)

    def response_done(self, cycle: RequestCycle) -> None:
        self.answered += 1
        metrics = self.metrics
        if metrics is not None:
            metrics.response_done(
                cycle.scope["method"], cycle.status, perf_counter() - cycle.started_at
            )
        if self.access_log:
            self.http1.log_access(cycle)

    def stream_closed(self, stream: Http2Stream) -> None:
        self.streams.pop(stream.stream_id, None)
        if not self.streams:
            self.keepalive_deadline = monotonic() + self.timeout_keep_alive
            if self.shutting_down or self.peer_gone_away:
                self.want_flush()  # its end may have been the last thing to wait for

    def _close_if_done(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        conn = self.conn
        if conn.drained or (self.peer_gone_away and not self.streams):
            self._close()

    def _close(self) -> None:
        self._flush()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        for stream in list(self.streams.values()):
            stream.disconnect()

    def _count_attacks(self) -> None:
        """The codec's refusals by reason, once per connection (at a connection error, or
        when it ends): logged at debug level, added to the metrics' HTTP/2 defences."""
        if self.counted:
            return
        self.counted = True
        counters = {key: value for key, value in self.conn.counters.items() if value}
        if counters:
            logger.debug("HTTP/2 %s: %s", self.http1.client_label, counters)
            if self.metrics is not None:
                self.metrics.http2_defended(counters)

    # -- deadlines, shutdown (esg.state.Connection) ------------------------------------------

    def check_deadlines(self, now: float) -> None:
        transport = self.transport
        if transport is None:
            return
        closing = transport.is_closing()
        if (self.write_flow.paused or closing) and self.write_flow.stalled(transport, now):
            self._count_timeout("write")
            reset_on_close(transport)
            self.abort_connection()
            return
        if closing:
            return
        if now >= self.header_deadline:
            self._count_timeout("header")
            self._goaway_and_close()
            return
        if not self.streams:
            if now >= self.keepalive_deadline:
                self._count_timeout("keep_alive")
                self._goaway_and_close()
                return
        else:
            for stream in list(self.streams.values()):
                if now >= stream.body_deadline:
                    self._count_timeout("body")
                    stream.reset(_CANCEL)
        if self.shutting_down and now >= self.shutdown_deadline:
            # The client never answered the shutdown's PING: the final GOAWAY goes now.
            self.shutdown_deadline = INFINITY
            self.conn.begin_graceful_shutdown()
        if now >= self.ping_deadline:
            if self.ping_outstanding:
                self._count_timeout("keep_alive")
                self._goaway_and_close()  # no answer for a whole interval: the peer is gone
                return
            self.ping_outstanding = True
            self.ping_deadline = now + self.ping_interval
            self.conn.ping(_KEEPALIVE_PING)
        self._flush()
        self._close_if_done()

    def _goaway_and_close(self) -> None:
        self.conn.close_connection()
        self._close()

    def _count_timeout(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.timed_out(kind)

    def shutdown(self) -> None:
        """Server shutdown: GOAWAY; the streams in flight finish, then the connection closes."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self.shutting_down:
            self.shutting_down = True
            self.shutdown_deadline = monotonic() + 1.0
            # Once: a second call (a retiring worker is shut down next) would send the final
            # GOAWAY before the PING came back, and streams on their way would be refused.
            self.conn.begin_graceful_shutdown()
        self._flush()
        self._close_if_done()

    def retire(self, retired: Any) -> None:
        """GOAWAY says it all on HTTP/2: no request can arrive unannounced after it."""
        self.shutdown()
        retired(self)

    def abort_connection(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()
        for stream in list(self.streams.values()):
            stream.disconnect()


def _lowercased(fields: Iterable[tuple[Any, Any]]) -> list[tuple[bytes, bytes]]:
    """The app's fields as HTTP/2 wants them: bytes, names lowercased (the cycle checked them)."""
    out = []
    for name, value in fields:
        if type(name) is not bytes:
            name = bytes(name)
        if type(value) is not bytes:
            value = bytes(value)
        out.append((name.lower(), value))
    return out


def _default_fields(state: Any) -> list[tuple[bytes, bytes]]:
    """The Server and ``--header`` defaults as fields (Date changes: read per response)."""
    fields = []
    if state.server_line:
        fields.append((b"server", state.server_line[8:-2]))
    for name, line in state.default_pairs:
        fields.append((name.lower(), line[len(name) + 2 : -2]))
    return fields


def max_header_list_size(config: Any) -> int:
    """``--http2-max-header-list-size``, or by default what HTTP/1.1's limits admit: the whole
    head (``--limit-request-head``), plus HPACK's 32 bytes of accounting per field for as many
    fields as ``--limit-request-fields`` allows."""
    size = config.http2_max_header_list_size
    if size:
        return int(size)
    return int(config.limit_request_head) + 32 * int(config.limit_request_fields)
