"""The HTTP/1.1 connection: asyncio ``Protocol`` glue between the socket, the parser and the cycle.

Compiled twin ``esg.http._protocol_c``, typed by ``_protocol_c.pxd``.

One ``HttpProtocol`` per connection.  Its jobs, and nothing else:

* feed received bytes to the sans-IO parser and start a ``RequestCycle`` per request head;
* answer pipelined requests in the order they came (RFC 9112 section 9.3.2), running the apps
  of the safe ones concurrently (see "Pipelining" below);
* flow control both ways: stop reading while more than ``HIGH_WATER`` bytes wait unread, and
  make ``send()`` wait while the transport's write buffer is full (``esg.write_flow``);
* deadlines without per-request timers: the connection stores when it must give up and the
  server's one-second ticker calls ``check_deadlines``;
* answer malformed requests with the parser's status and close.

Pipelining.  ``self.cycle`` is the request at the head of the line: the only one that writes to
the transport.  Pipelined requests behind it may start *ahead* of their turn, so that apps that
suspend (a database call, a sleep) overlap instead of adding up; each such cycle gets a
``HeldResponse`` as its host, which keeps its response bytes until the answers before it are
complete, then hands them over in order.  RFC 9112 section 9.3.2 allows processing pipelined
requests in parallel if they all have safe methods; esg starts a request ahead only when

* the request before it (the last one started) has a safe method (GET, HEAD, OPTIONS, TRACE),
  stays keep-alive, and its body has been received whole by the parser (so the next head is
  the next bytes: the parser reads one request at a time and never looks past a body);
* the new request has a safe method and no body (no Content-Length > 0, not chunked, so no
  ``Expect: 100-continue`` either) and is no upgrade: its ``receive()`` is answered with the
  empty body at once, and it never needs the parser again;
* fewer than ``AHEAD_LIMIT`` requests run ahead already (reading pauses at the bound), the
  concurrency limit has room (``--limit-concurrency`` counts their tasks like any), the
  client reads what it is sent, and the connection isn't closing or retiring.

Any other request is parsed and kept (``parked``) until it is at the head of the line, and
starts then as it always did; nothing after it starts ahead.  A held response buffers up to
``HOLD_LIMIT`` bytes, then its ``send()`` waits for its turn (back-pressure); once at the head
it streams as any.  Access log lines, metrics and ``answered`` follow the order of the wire.
A response that ends the connection (``connection: close``, an app error, a broken response)
drops the requests held behind it: their apps see ``http.disconnect`` and ``send()`` raises, as
when the client leaves; their tasks still end normally (shutdown waits for them).
``shutdown()`` closes after the head of the line's response, as without pipelining (the rest
are dropped); ``retire()`` lets every request already started finish, the last one saying
``connection: close`` if its head isn't written yet.

Eager start (Python 3.12+).  A request's app can start inside ``data_received`` as an eager
task (``asyncio.Task(eager_start=True)``): its first step runs at once, and an app that never
suspends is answered before the loop turn ends.  esg does that only for pipelines, because
only there it pays.  Measured on one pinned worker (wrk, 64 connections), eager against
scheduled start: 3.12 plaintext GET 48.1k against 51.9k requests/s, a 1 KiB POST 35.2k
against 44.8k, a Starlette JSON endpoint 19.0k against 27.7k, but 16 pipelined GETs per read
108.7k against 95.4k; 3.13 plaintext 43.6k against 52.9k, POST 25.0k against 31.3k,
pipelined 100.5k against 92.3k.  (Callgrind counts ~5% fewer instructions for the eager
start, but 15% more branch mispredictions; the wall clock is what counts.)
So when a read's first request starts at the head of the line, the bytes behind its head
decide (one ``buffered()`` and a comparison): nothing beyond its own Content-Length body, and
it is scheduled (``loop.create_task``) exactly as before 3.12, requests behind it included
(they start ahead only after its first step: ``_watch_head``); more (a pipeline, or buffered
bytes of a chunked body), and it starts eagerly, and so does its pipeline: the requests
answered back to back behind it (``_start_eagerly``'s loop), those started ahead of their
turn, and those taken up later from the buffer (``_resume_pipeline``).  ``self.eager`` says
which of the two the current head of the line and the requests held behind it use.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
from collections.abc import Callable
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from esg._compiled import is_compiled, load
from esg._teardown import reset_on_close
from esg.extensions import http2_extensions, http_extensions, websocket_extensions
from esg.http.files import SENDFILE, FileBody, send_on_socket
from esg.logging import TRACE_LOG_LEVEL, escape_for_log
from esg.middleware.proxy_headers import apply_forwarded_headers
from esg.websocket.handshake import is_upgrade

_COMPILED = is_compiled(__name__)  # which twin this is: neighbours come from the same build

if TYPE_CHECKING:
    from esg.http.cycle import RESPONSE_NOT_STARTED, RequestCycle
    from esg.http.cycle_host import Http1Host
    from esg.http.parser import ParseError, Request, RequestParser
    from esg.http.serializer import ResponseHead, inspect_response_headers, status_line
    from esg.http2.protocol import Http2Protocol
    from esg.settings import ConnectionSettings
    from esg.state import ServerState
    from esg.write_flow import WriteFlow
else:
    _parser = load("esg.http.parser", _COMPILED)
    ParseError = _parser.ParseError
    Request = _parser.Request
    RequestParser = _parser.RequestParser
    _cycle = load("esg.http.cycle", _COMPILED)
    RequestCycle = _cycle.RequestCycle
    RESPONSE_NOT_STARTED = _cycle.RESPONSE_NOT_STARTED
    _serializer = load("esg.http.serializer", _COMPILED)
    status_line = _serializer.status_line
    inspect_response_headers = _serializer.inspect_response_headers
    WriteFlow = load("esg.write_flow", _COMPILED).WriteFlow
    Http2Protocol = load("esg.http2.protocol", _COMPILED).Http2Protocol

_TASK_CONTEXT_ARGUMENT = sys.version_info >= (3, 11)  # loop.create_task(..., context=)
# Python 3.12+: a pipelined request's app may start inside data_received
# (asyncio.Task(eager_start=True)), so an answer that never suspends is written before the
# loop turn ends, with no call_soon and no task step on the ready queue; a read holding one
# request only is scheduled all the same (see "Eager start" in the module docstring for
# when and why).  (Task's eager_start parameter is 3.12's; 3.14 only documents it.)
# ESG_NO_EAGER=1 keeps 3.12+ on the scheduled path for every request, pipelined or not: the
# benchmark harness measures the difference (bench/README.md); not a setting.
_EAGER_START = sys.version_info >= (3, 12) and os.environ.get("ESG_NO_EAGER", "") in ("", "0")
# Pipelined requests answered back to back by eager starts, at most, before the next one waits
# for a loop turn: one connection's burst can't keep the others waiting for long.
EAGER_BURST = 64
PREFACE_HEAD = b"PRI * HTTP/2.0\r\n\r\n"  # what the parser sees of HTTP/2's connection preface
# Pipelined requests started ahead of the one being answered, at most (see the module
# docstring): each holds its response in memory until its turn, so the bound is on memory too.
AHEAD_LIMIT = 16
# Bytes a response started ahead buffers before its send() waits for its turn.
HOLD_LIMIT = 65536
# RFC 9110 section 9.2.1: the methods whose pipelined requests may run concurrently.
_SAFE_METHODS = frozenset([b"GET", b"HEAD", b"OPTIONS", b"TRACE"])
# How a held response's app ended it early (HeldResponse.ending): once at the head of the line,
# close after its bytes, or drop them and abort.
_THEN_CLOSE = 1
_THEN_ABORT = 2
HIGH_WATER = 65536  # unread request bytes before reading pauses
DRAIN_LIMIT = 262144  # unread body bytes esg discards to keep a connection alive
INFINITY = float("inf")

logger = logging.getLogger("esg.error")
access_logger = logging.getLogger("esg.access")

_METHODS = {
    m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS")
}


class HttpProtocol:
    """One HTTP/1.1 connection; see the module docstring.

    An ``asyncio.Protocol`` by its methods (asyncio and uvloop only need those); it doesn't
    inherit the class so that Cython can compile it into a C type.
    """

    # Exactly the C fields of _protocol_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "config",
        "app",
        "loop",
        "server_state",
        "app_state",
        "default_names",
        "access_log",
        "trace_log",
        "root_path",
        "ws_enabled",
        "limit_concurrency",
        "timeout_keep_alive",
        "timeout_header",
        "timeout_body",
        "parser",
        "transport",
        "cycle",
        "asgi_info",
        "extensions",
        "scheme",
        "server_address",
        "client_address",
        "client_label",
        "behind_proxy",
        "base_context",
        "answered",
        "closing",
        "draining",
        "drain_budget",
        "on_retired",
        "out",
        "out_size",
        "out_complete",
        "read_paused",
        "body_waiter",
        "head_deadline",
        "keepalive_deadline",
        "body_deadline",
        "write_flow",
        "metrics",
        "starting",
        "start_pending",
        "held",
        "parked",
        "reading",
        "eager",
    )

    def __init__(
        self,
        config: ConnectionSettings,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.default_names = server_state.default_names
        self.access_log = bool(config.access_log) and access_logger.isEnabledFor(logging.INFO)
        self.trace_log = bool(server_state.trace_log)  # see ServerState
        self.root_path: str = config.root_path or ""
        self.ws_enabled = config.ws != "none"
        self.limit_concurrency: int | None = config.limit_concurrency
        self.timeout_keep_alive = float(config.timeout_keep_alive)
        self.timeout_header = float(config.timeout_header)
        self.timeout_body = float(config.timeout_body)
        self.parser = RequestParser(
            limit_request_line=config.limit_request_line,
            limit_request_fields=config.limit_request_fields,
            limit_request_field_size=config.limit_request_field_size,
            limit_request_head=config.limit_request_head,
            limit_request_body=config.limit_request_body,
        )
        self.transport: Any = None
        self.cycle: RequestCycle | None = None
        # Per-connection parts of every scope, set once in connection_made().
        self.asgi_info: dict[str, str] = {}
        # The scope's "extensions", the same dict for every request of the connection.
        self.extensions: dict[str, Any] = {}
        self.scheme = "http"
        self.server_address: tuple[Any, Any] | None = None
        self.client_address: tuple[Any, Any] | None = None
        self.client_label = ""
        self.behind_proxy = False
        self.base_context = contextvars.Context()
        self.answered = 0
        self.closing = False  # the response under way (or, idle, the next) is the last
        self.draining = False
        self.drain_budget = 0
        # Set while retiring (see retire()): called once the last request has arrived.
        self.on_retired: Callable[[HttpProtocol], None] | None = None
        self.out: list[bytes] | None = None  # answers gathered while pipelining
        self.out_size = 0
        self.out_complete = 0
        self.read_paused = False
        self.write_flow = WriteFlow(self.loop, self.timeout_body)
        self.body_waiter: asyncio.Future[None] | None = None
        self.head_deadline = INFINITY
        self.keepalive_deadline = INFINITY
        self.body_deadline = INFINITY
        # esg.metrics.Metrics with --metrics, else None.  Used as self.metrics, not through a
        # local: the compiled build then bumps the C fields of the compiled Metrics directly.
        self.metrics = server_state.metrics
        # While an app runs its first step inside _start_eagerly (eager start), the request
        # it finishes must not start the next one from inside it (one nested start per
        # pipelined request would grow the stack): it sets start_pending instead, and
        # _start_eagerly's loop starts the next request once the first step returns.
        self.starting = False
        self.start_pending = False
        # Python 3.12+: whether the head of the line and the requests started ahead of it
        # start eagerly (a pipeline) or are scheduled (a read with one request only); see
        # "Eager start" in the module docstring.  Set when a head of the line starts from the
        # buffer (_next_request, _resume_pipeline); it holds until the next one does, since
        # requests started ahead are promoted to the head (_next_in_line) before any starts
        # from the buffer again.  Always False before 3.12 and with ESG_NO_EAGER=1.
        self.eager = False
        # Pipelining (see the module docstring): the requests started ahead of self.cycle, in
        # order; a parsed request that must wait for its turn; and the cycle whose request the
        # parser is still in (None once it moved past it: that request had no body left).
        self.held: list[HeldResponse] = []
        self.parked: Request | None = None
        self.reading: RequestCycle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.base_context = contextvars.copy_context()
        self.server_state.connections.add(self)
        if self.metrics is not None:
            self.metrics.connections_open += 1
            self.metrics.connections_accepted += 1
        server = _address(transport.get_extra_info("sockname"))
        client = _address(transport.get_extra_info("peername"))
        if client is not None and client[0] is None:
            client = None
        self.client_label = f"{client[0]}:{client[1]}" if client else "-"
        is_ssl = transport.get_extra_info("sslcontext") is not None
        trust = self.config.proxy_trust
        self.behind_proxy = trust is not None and (client[0] if client else None) in trust
        self.asgi_info = {"version": self.config.asgi_version, "spec_version": "2.4"}
        self.scheme = "https" if is_ssl else "http"
        self.extensions = http_extensions(transport)
        self.server_address = server
        self.client_address = client
        self.head_deadline = monotonic() + self.timeout_header
        if self.trace_log:
            logger.log(TRACE_LOG_LEVEL, "%s - HTTP connection made", self.client_label)
        if is_ssl and self.config.http2 and _alpn(transport) == "h2":
            self._take_over_http2(b"")  # TLS chose HTTP/2 (esg/_ssl.py offers it first)
            return
        retire = self.server_state.retire_connection
        if retire is not None:  # made after the server began retiring its connections
            retire(self)

    def data_received(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.received_bytes += len(data)
        parser = self.parser
        parser.feed(data)
        if self.cycle is None:
            if self.draining:
                if not self.write_flow.paused:
                    self._drain_body()
            else:
                self._next_request()
            if not self.read_paused:
                buffered = parser.buffered()
                if buffered > HIGH_WATER:
                    self._pause_reading()
                elif buffered and not self.eager:
                    # A scheduled head of the line (the only kind before 3.12): requests
                    # behind it may start ahead once its first step has run.  (An eager one's
                    # pipeline went as far as it could in _start_eagerly already.)
                    self._watch_head()
            return
        self._wake_body_waiter()
        if self.cycle.method in _SAFE_METHODS:
            self._launch(None)  # more pipelined requests may start ahead
        if not self.read_paused and parser.buffered() > HIGH_WATER:
            self._pause_reading()

    def eof_received(self) -> bool | None:
        # The client closed its side.  Like uvicorn, esg treats that as a disconnect rather
        # than keeping a half-open connection: long polls and streams must learn that the
        # client left, which they can't if we wait for a response nobody may read.
        self.parser.feed_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.metrics is not None:
            self.metrics.connections_open -= 1
            self.metrics.connections_closed += 1
        if self.trace_log:
            logger.log(TRACE_LOG_LEVEL, "%s - HTTP connection lost", self.client_label)
        self.out = None
        self.parser.feed_eof()
        cycle = self.cycle
        if cycle is not None:
            self.cycle = None
            cycle.disconnected = True
            cycle.wake_receiver()
        self._drop_held()  # every request started ahead sees the disconnect too
        self._wake_body_waiter()
        self.write_flow.release()
        if self.on_retired is not None:
            self._retired()

    def _wake_body_waiter(self) -> None:
        waiter = self.body_waiter
        self.body_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.write_flow.pause()

    def resume_writing(self) -> None:
        self.write_flow.resume()
        if self.draining and self.cycle is None and not self.closing:
            self._drain_body()
        elif self.cycle is not None and not self.closing:
            self._launch(None)  # requests ahead wait while the client doesn't read

    @property
    def write_paused(self) -> bool:
        """The client isn't taking what was written fast enough (see esg.write_flow)."""
        return self.write_flow.paused

    # -- requests ------------------------------------------------------------------------

    def _next_request(self) -> None:
        """Start the request at the front of the buffer as the head of the line, if it is here.

        On Python 3.12+ it starts eagerly only if more than itself waits behind its head: the
        bytes of another request beyond its Content-Length body, or any of a chunked body
        (see "Eager start" in the module docstring).  One ``buffered()`` and a comparison.
        """
        request = self._parse_next()
        if request is not None:
            if _EAGER_START:
                buffered = self.parser.buffered()
                length = request.content_length  # None: no body, or a chunked one
                self.eager = buffered > 0 and (length is None or buffered > length)
            self._start_cycle(request)

    def _parse_next(self) -> Request | None:
        """The next request's head if it is here; a malformed one is answered and closes."""
        parked = self.parked
        if parked is not None:  # parsed while requests before it ran: its turn now
            self.parked = None
            return parked
        try:
            event = self.parser.next_event()
        except ParseError as exc:
            # The HTTP/2 preface reads as a request line of version 2.0, which the parser
            # refuses: checked only here, so it costs the requests it accepts nothing.
            if exc.kind == "version_not_supported" and self.answered == 0 and self._to_http2():
                return None
            self._reject(exc.status, exc.reason, exc.kind)
            return None
        if event is None:
            if not self.read_paused and self.parser.buffered() > HIGH_WATER:
                self._pause_reading()
            return None
        # After start_next_request() the first event is always a Request.
        return event  # type: ignore[return-value]

    def _start_cycle(self, request: Request) -> None:
        cycle = self._new_cycle(request, False)
        if cycle is not None:
            self._launch(cycle)

    def _launch(self, cycle: RequestCycle | None) -> None:
        """Start ``cycle``'s app (the new head of the line; None: none), then what may run ahead.

        Eagerly if ``self.eager`` says so (a pipeline on Python 3.12+), else scheduled.
        Requests start ahead only once the head of the line has suspended, and never from
        inside another app's step.
        """
        if self.eager and not self.starting:
            self._start_eagerly(cycle)
            return
        if cycle is not None:
            # (Requests behind it start ahead once its first step has run: see _watch_head,
            # which the callers call when bytes wait in the buffer.)
            self._schedule(cycle)
            return
        if self.cycle is not None and self.parser.buffered():
            ahead = self._start_ahead()
            while ahead is not None:
                self._schedule(ahead)
                ahead = self._start_ahead()

    def _watch_head(self) -> None:
        """A scheduled head of the line: look ahead once its first step has run.

        (Before Python 3.12 every head of the line is scheduled; from 3.12 on, one whose read
        held nothing more than itself: see "Eager start" in the module docstring.)

        Requests behind it start ahead only if its app suspends, as with an eager start: an
        app that answers at once gains nothing from company.  Its task's first step runs just
        before this callback.  Called by data_received when bytes wait in the buffer after the
        request a read started (it knows that without another ``buffered()``), not for each
        request of a pipeline answered back to back (see _drain_body).
        """
        cycle = self.cycle
        if cycle is not None and cycle.method in _SAFE_METHODS:
            self.loop.call_soon(self._after_first_step, cycle)

    def _after_first_step(self, cycle: RequestCycle) -> None:
        transport = self.transport
        if cycle is self.cycle and transport is not None and not transport.is_closing():
            self._launch(None)

    def _start_eagerly(self, cycle: RequestCycle | None) -> None:
        self.starting = True
        try:
            started = 0
            if cycle is not None:
                self._run_first_step(cycle)
                started = 1
            while True:
                if self.start_pending:
                    # That app answered without suspending, and the next pipelined request is
                    # already here (_drain_body saw it and left it to this loop).
                    self.start_pending = False
                    if started >= EAGER_BURST:
                        self.loop.call_soon(self._resume_pipeline)
                        return
                    next_request = self._parse_next()
                    if next_request is None:
                        return
                    cycle = self._new_cycle(next_request, False)
                    if cycle is None:
                        return
                elif self.cycle is not None and self.parser.buffered():
                    # The head of the line suspended: the requests behind it may start ahead.
                    if started >= EAGER_BURST:
                        self.loop.call_soon(self._resume_pipeline)
                        return
                    cycle = self._start_ahead()
                    if cycle is None:
                        return
                else:
                    return
                self._run_first_step(cycle)
                started += 1
        finally:
            self.starting = False
            self.start_pending = False

    def _start_ahead(self) -> RequestCycle | None:
        """The next pipelined request's cycle, created to run ahead, if the rules allow it.

        The rules are the module docstring's.  A request parsed here that may not run ahead is
        parked until its turn; a malformed one is left in the parser, which raises the same
        error again when its turn comes (``_parse_next`` answers it then, in order).
        """
        held = self.held
        head = self.cycle
        if head is None or len(held) >= AHEAD_LIMIT:
            return None
        tail = held[-1].cycle if held else head
        if (
            self.parked is not None
            or self.closing
            or self.on_retired is not None
            or self.write_flow.paused
            or not tail.keep_alive
            or tail.disconnected
            or tail.method not in _SAFE_METHODS
        ):
            return None
        parser = self.parser
        if self.reading is not None:  # the parser is still in the last request started
            if parser.body_complete():
                # Its EndOfMessage: its app's receive() gets the empty end of the body from
                # pull_body all the same (the parser has moved on).
                parser.next_event()
            elif not parser.paused():
                return None  # its body is still arriving
            parser.start_next_request()
            self.reading = None
        try:
            event = parser.next_event()
        except ParseError:
            return None  # (the bytes that failed stay buffered, so the turn does come)
        if event is None:
            return None
        request: Request = event  # type: ignore[assignment]
        limit = self.limit_concurrency
        state = self.server_state
        if (
            request.method not in _SAFE_METHODS
            or request.content_length
            or request.chunked
            or request.upgrade is not None
            or (limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit))
        ):
            self.parked = request
            return None
        return self._new_cycle(request, True)

    def _resume_pipeline(self) -> None:
        """Start the pipelined requests that wait in the buffer, from the loop."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.cycle is not None:
            self._launch(None)  # requests ahead, now that there is room
        elif not self.draining:
            # Not _next_request: these requests were in the buffer before the answer ahead of
            # them was complete, a pipeline, which starts eagerly on Python 3.12+ however few
            # bytes remain behind the next one.
            request = self._parse_next()
            if request is not None:
                self.eager = _EAGER_START
                self._start_cycle(request)
            if not _EAGER_START and self.parser.buffered():
                self._watch_head()

    def _new_cycle(self, request: Request, ahead: bool) -> RequestCycle | None:
        """The cycle that will answer ``request``, or None if it was answered here already.

        ``ahead``: it starts before its turn, behind ``self.cycle`` (see ``_start_ahead``).
        """
        if self.closing and self.on_retired is not None:
            self._retired()  # this request, the last, is answered with connection: close
        state = self.server_state
        state.total_requests += 1
        if state.total_requests >= state.request_limit:
            state.reached_request_limit()
        self.head_deadline = INFINITY
        self.keepalive_deadline = INFINITY
        limit = self.limit_concurrency
        if limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit):
            self._reject(503, "Service Unavailable", "limit_concurrency")
            return None
        if request.upgrade is not None and self.ws_enabled and is_upgrade(request):
            self._upgrade_to_websocket(request)
            return None
        if self.metrics is not None:
            self.metrics.in_flight += 1
            if self.answered or ahead:  # one started ahead is never a connection's first
                self.metrics.keepalive_requests += 1
        host: Http1Host = self
        held = None
        if ahead:
            held = HeldResponse(self)
            host = held
        cycle = RequestCycle(
            host,
            self._build_scope(request),
            request.method,
            request.http_version,
            request.keep_alive and not self.closing,
            request.expect_continue and bool(request.chunked or request.content_length),
        )
        if held is None:
            self.cycle = cycle
        else:
            held.cycle = cycle
            self.held.append(held)
            if len(self.held) >= AHEAD_LIMIT:
                self._pause_reading()  # no more parsing until one is answered: no more reading
        self.reading = cycle
        if self.access_log:
            cycle.started_at = perf_counter()
        return cycle

    def _schedule(self, cycle: RequestCycle) -> None:
        """Start the app's task at the loop's next turn (before Python 3.12, a read with one
        request only, ESG_NO_EAGER=1, or nested inside an eager start)."""
        # Each request gets a fresh copy of the connection's starting context: a pipelined
        # request's task is created from inside the previous request's task, and would
        # otherwise inherit every contextvar that request's app set.
        context = self.base_context.copy()
        if _TASK_CONTEXT_ARGUMENT:
            task = self.loop.create_task(cycle.run_asgi(self.app), context=context)
        else:  # Python 3.10: a task copies the context it is created in
            task = context.run(self.loop.create_task, cycle.run_asgi(self.app))
        cycle.task = task
        self.server_state.tasks.add(task)  # run_asgi removes it when it ends

    def _run_first_step(self, cycle: RequestCycle) -> None:
        """Run the app up to its first suspension now, as an eager task (Python 3.12+).

        The task is a real ``asyncio.Task`` from the start (``asyncio.current_task()`` is it,
        and it runs in its own copy of the connection's context), only its first step runs
        at once instead of in a later loop turn.  Unlike ``loop.create_task``, a loop's task
        factory isn't consulted.
        """
        task = asyncio.Task(  # type: ignore[call-arg,unused-ignore]
            cycle.run_asgi(self.app),
            loop=self.loop,
            context=self.base_context.copy(),
            eager_start=True,
        )
        if not task.done():
            # It suspended: from here on it is like any scheduled task.  (One that finished
            # already called task_done() with cycle.task still None: nothing to remove.)
            cycle.task = task
            self.server_state.tasks.add(task)

    def _build_scope(self, request: Request) -> dict[str, Any]:
        raw_path = request.raw_path
        method = _METHODS.get(request.method)
        if method is None:
            method = request.method.decode("ascii")
        # The parser admits only visible ASCII in a target, so ASCII decoding can't fail.
        # (find(), not `in`: bytes.__contains__ first tries its argument as an int and builds
        # a TypeError message every time.)
        path = raw_path.decode("ascii") if raw_path.find(b"%") < 0 else unquote(raw_path.decode())
        root_path = self.root_path
        if root_path:
            path = root_path + path
            raw_path = root_path.encode() + raw_path
        # One dict display: built presized, never resized (a copy of a shared base dict plus
        # eight insertions resized it on every request).
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": self.asgi_info,
            "http_version": request.http_version,
            "method": method,
            "scheme": self.scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": request.query_string,
            "root_path": root_path,
            "headers": request.headers,
            "server": self.server_address,
            "client": self.client_address,
            "state": self.app_state.copy() if self.app_state else {},
            # The connection's extensions (esg/extensions.py), copied: an app or middleware
            # that adds to its scope's dict must not reach the connection's next request.
            "extensions": self.extensions.copy(),
        }
        if self.behind_proxy and request.forwarded:
            trust = self.config.proxy_trust
            if trust is not None:  # it is: behind_proxy means the peer was found in it
                apply_forwarded_headers(scope, trust)
        return scope

    # -- WebSocket upgrades ----------------------------------------------------------------

    def _upgrade_to_websocket(self, request: Request) -> None:
        """Hand the connection to a WebSocket session (esg/websocket/session.py)."""
        from esg.websocket.handshake import HandshakeError, check_request
        from esg.websocket.session import WebSocketSession

        try:
            handshake = check_request(request)
        except HandshakeError as exc:
            extra = b"".join(b"%s: %s\r\n" % (name, value) for name, value in exc.headers)
            self._reject(exc.status, exc.reason, exc.kind, extra)
            return
        if self.trace_log:
            logger.log(TRACE_LOG_LEVEL, "%s - Upgrading to WebSocket", self.client_label)
        scope = self._build_scope(request)
        del scope["method"]
        scope["type"] = "websocket"
        # From the scope's scheme, not the transport's: a trusted proxy's X-Forwarded-Proto
        # was applied by _build_scope.
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["subprotocols"] = handshake.subprotocols
        scope["extensions"] = websocket_extensions(self.extensions)
        session = WebSocketSession(self, request, handshake, scope)
        # Answers to requests pipelined before this one may still wait in self.out: they
        # leave before the session writes anything (its 101 must not overtake them).
        self._flush()
        # This protocol is done with the connection: the session reads and writes from here on.
        self.closing = True
        self.server_state.connections.discard(self)
        self.transport.set_protocol(session)
        session.start(self.parser.take_buffered())
        self.transport = None

    def inspect_headers(self, status: Any, headers: Any) -> ResponseHead:
        """Validate and encode a response head for the WebSocket session."""
        return inspect_response_headers(status, headers, self.default_names)

    def status_line_for(self, status: int) -> bytes:
        return status_line(status)

    # -- the cycle's view of the connection (esg.http.cycle_host.Http1Host) ------------

    def task_done(self, cycle: RequestCycle) -> None:
        self.server_state.tasks.discard(cycle.task)
        if self.metrics is not None:
            self.metrics.in_flight -= 1

    def write(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.sent_bytes += len(data)
        out = self.out
        if out is not None:
            out.append(data)
            self.out_size += len(data)
            if self.out_size > HIGH_WATER:
                self._flush()
        elif self.held or (
            self.parser.buffered() and (self.parser.paused() or self.parser.body_complete())
        ):
            # Pipelined requests wait behind this one: gather their answers into one write.
            self.out = [data]
            self.out_size = len(data)
            self.loop.call_soon(self._flush_when_idle, self.answered)
        else:
            self.transport.write(data)

    def defer_head(self, cycle: RequestCycle) -> None:
        """Have ``cycle.flush_head()`` called at the end of this loop turn.

        One callback per loop turn serves every connection's pending head, instead of one
        callback per response: most heads leave with their body before it runs anyway.
        """
        state = self.server_state
        state.pending_heads.append(cycle)
        if not state.flush_heads_scheduled:
            state.flush_heads_scheduled = True
            state.loop_call_soon = self.loop.call_soon
            self.loop.call_soon(state.flush_heads)

    def write_part(self, data: bytes) -> None:
        """A piece of a streamed response: pieces sent in one loop turn leave in one write.

        An app that streams from memory sends many pieces without ever suspending; gathering
        them until the end of the loop turn saves a syscall and a TCP segment per piece while
        adding no delay (nothing else runs for this connection before the flush).
        """
        if self.metrics is not None:
            self.metrics.sent_bytes += len(data)
        out = self.out
        if out is None:
            self.out = out = []
            self.out_size = 0
            self.loop.call_soon(self._flush)
        out.append(data)
        self.out_size += len(data)
        if self.out_size > HIGH_WATER:
            self._flush()

    def _flush_when_idle(self, answered_before: int) -> None:
        """Flush the gathered answers once the pipeline stops making progress.

        Re-armed for as long as every loop turn completes another pipelined response; an app
        that waits on something else gets everything answered so far at once.
        """
        if self.out is None:
            return
        if self.answered > answered_before and self.cycle is not None:
            self.loop.call_soon(self._flush_when_idle, self.answered)
        else:
            self._flush()

    def _flush(self) -> None:
        out = self.out
        if out is not None:
            self.out = None
            self.out_size = 0
            self.out_complete = 0
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(b"".join(out))

    def default_lines(self, head: ResponseHead | None) -> bytes:
        state = self.server_state
        if head is None or not (head.has_date or head.has_server or head.overridden):
            return state.common_lines
        date = b"" if head.has_date else state.date_line
        server = b"" if head.has_server else state.server_line
        if head.overridden:
            return date + server + state.default_block_without(head.overridden)
        return date + server + state.default_block

    def pull_body(self, cycle: RequestCycle) -> dict[str, Any] | None:
        """The next ``http.request`` message if its bytes are here, else None."""
        if cycle is not self.reading:
            # The parser moved past this request (requests behind it started ahead): it had no
            # body left, only its end.
            return {"type": "http.request", "body": b"", "more_body": False}
        parser = self.parser
        try:
            event = parser.next_event()
        except ParseError as exc:
            self._body_error(cycle, exc)
            return None
        if self.read_paused and parser.buffered() < HIGH_WATER:
            self._resume_reading()
        if event is None:
            return None
        data = getattr(event, "data", None)
        if data is None:  # EndOfMessage
            return {"type": "http.request", "body": b"", "more_body": False}
        more_body = not parser.body_complete()
        if not more_body:
            parser.next_event()  # consume the EndOfMessage
        return {"type": "http.request", "body": data, "more_body": more_body}

    async def wait_for_body(self, cycle: RequestCycle) -> None:
        waiter = self.loop.create_future()
        self.body_waiter = waiter
        self.body_deadline = monotonic() + self.timeout_body
        if self.read_paused:
            self._resume_reading()
        try:
            await waiter
        finally:
            self.body_deadline = INFINITY

    async def drain(self) -> None:
        await self.write_flow.drain()

    @property
    def sendfile_ready(self) -> bool:
        """Whether a file body can go out with ``os.sendfile`` (plain TCP or UNIX socket)."""
        transport = self.transport
        return (
            SENDFILE
            and self.scheme == "http"
            and transport is not None
            and not transport.is_closing()
            and transport.get_extra_info("socket") is not None
        )

    async def sendfile(self, prefix: bytes, body: FileBody) -> int:
        """Send ``prefix`` (the head, a chunk size) and then ``body`` straight to the socket;
        the file bytes sent (esg/http/files.py).  Answers gathered for one write go first."""
        out = self.out
        if out is not None:
            self.out = None
            self.out_size = 0
            self.out_complete = 0
            prefix = b"".join(out) + prefix
        return await send_on_socket(self, prefix, body)

    def close_connection(self) -> None:
        """Close after what was written so far has been flushed."""
        self.closing = True
        self._flush()
        if self.held or self.parked is not None:
            self._drop_held()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if self.on_retired is not None:
            self._retired()

    def abort_connection(self) -> None:
        """Drop the connection at once, discarding anything not yet sent."""
        self.closing = True
        out, complete = self.out, self.out_complete
        self.out = None
        if self.held or self.parked is not None:
            self._drop_held()
        transport = self.transport
        if transport is not None:
            if out and complete and not transport.is_closing():
                # Earlier pipelined answers are whole and valid: they still go out (as far as
                # the socket takes them at once); only the broken response is dropped.
                transport.write(b"".join(out[:complete]))
            transport.abort()
        if self.on_retired is not None:
            self._retired()

    def response_complete(self, cycle: RequestCycle) -> None:
        self._answered(cycle)
        if cycle is not self.cycle:
            return
        self.cycle = None
        self._wake_body_waiter()  # a receive() still waiting for body now gets disconnect
        if self.held:
            self._next_in_line(cycle)
            return
        if not cycle.keep_alive or self.closing:
            self.close_connection()
            return
        self.draining = True
        self.drain_budget = DRAIN_LIMIT
        if self.write_flow.paused:
            # The client isn't reading what we answered: take no new request (and read no
            # more) until it does; resume_writing() carries on from here.
            return
        self._drain_body(True)

    def _answered(self, cycle: RequestCycle) -> None:
        """``cycle``'s response is written whole (here, in the order of the wire)."""
        self.answered += 1
        if self.metrics is not None:
            self.metrics.response_done(
                cycle.scope["method"], cycle.status, perf_counter() - cycle.started_at
            )
        if self.out is not None:
            self.out_complete = len(self.out)  # gathered pieces that finish whole answers
        if self.access_log:
            self._log_access(cycle)

    # -- pipelining ----------------------------------------------------------------------

    def _next_in_line(self, done: RequestCycle) -> None:
        """``done`` was the head of the line: the responses held behind it go out, in order.

        Each complete one is answered here; the first still under way becomes the head of the
        line and goes on writing to the transport itself.
        """
        if not done.keep_alive:
            self.close_connection()  # drops the requests behind it
            return
        held_list = self.held
        parser = self.parser
        while held_list:
            held = held_list.pop(0)
            cycle = held.cycle
            cycle.host = self
            self.cycle = cycle
            parts = held.parts
            held.parts = None
            if held.ending == _THEN_ABORT:
                held.wake()
                self.abort_connection()  # the earlier answers still go out (see there)
                return
            if parts:
                self.write(b"".join(parts))
            held.wake()  # a send() waiting for its turn goes on
            if held.ending == _THEN_CLOSE:
                self.close_connection()
                return
            if self.read_paused and parser.buffered() < HIGH_WATER:
                self._resume_reading()  # below the bound again (see _new_cycle)
            if not held.done:
                # The new head of the line writes for itself from here on; its deferred head
                # (defer_head) goes out through it.  With room, more may start ahead, the way
                # its pipeline starts (self.eager): eagerly, from the eager-start loop if this
                # runs inside it, else after this app's step (_resume_pipeline); scheduled,
                # at once (a scheduled task doesn't nest).
                if not self.starting and parser.buffered():
                    if self.eager:
                        self.loop.call_soon(self._resume_pipeline)
                    else:
                        self._launch(None)
                return
            self._answered(cycle)
            self.cycle = None
            if not cycle.keep_alive:
                self.close_connection()
                return
        # Every held response was whole: between requests, as after any response.
        if self.closing:
            self.close_connection()  # shutdown() or retire() made the last one the last
            return
        self.draining = True
        self.drain_budget = DRAIN_LIMIT
        if self.write_flow.paused:
            return  # resume_writing() carries on from here, as in response_complete
        self._drain_body(True)

    def _drop_held(self) -> None:
        """The connection is ending: requests started ahead (or parked) are never answered."""
        held_list = self.held
        self.held = []
        self.parked = None
        for held in held_list:
            held.parts = None
            cycle = held.cycle
            cycle.disconnected = True  # receive() says http.disconnect, send() raises
            cycle.wake_receiver()
            held.wake()

    # -- between requests ----------------------------------------------------------------

    def _drain_body(self, within_app: bool = False) -> None:
        """Discard what the app didn't read of the last body, then go on to the next request.

        ``within_app``: called from the app's last ``send()``.  A pipelined request found then
        starts after that app's step, not inside it: from the eager-start loop if that app
        is in its first step, else from the loop's next turn (Python 3.12+, whether that app
        started eagerly or was scheduled: the request was here before the answer ahead of it
        was complete, a pipeline, which starts eagerly; before 3.12 its task is scheduled,
        which has the same effect).
        """
        if self.closing or self.transport is None or self.transport.is_closing():
            return  # no new request on a connection that is going away
        parser = self.parser
        if self.reading is not None:  # else the parser is past it already (pipelining)
            while not parser.paused():
                try:
                    event = parser.next_event()
                except ParseError:
                    self.close_connection()
                    return
                if event is None:
                    if self.read_paused:
                        self._resume_reading()
                    self.head_deadline = monotonic() + self.timeout_body
                    return
                data = getattr(event, "data", None)
                if data is not None:
                    self.drain_budget -= len(data)
                    if self.drain_budget < 0:
                        self.close_connection()
                        return
            self.reading = None
            parser.start_next_request()
        self.draining = False
        if self.on_retired is not None:
            self.closing = True  # retiring: the next request is the last (see retire())
        # Deadlines come from the real clock: the ticker's may be up to a second old, which
        # would close keep-alive connections early.
        now = monotonic()
        self.keepalive_deadline = now + self.timeout_keep_alive
        self.head_deadline = now + self.timeout_header
        if self.read_paused:
            self._resume_reading()
        # (A request parked while others ran ahead may have no bytes left in the buffer.)
        if parser.buffered() or self.parked is not None:
            if self.starting:
                self.start_pending = True  # _start_eagerly's loop starts it (see __init__)
            elif within_app and _EAGER_START:
                self.loop.call_soon(self._resume_pipeline)
            else:
                # (For a scheduled request no _watch_head here: a callback per pipelined
                # request answered back to back would cost more than running ahead saves.
                # More bytes arriving while this one runs look ahead all the same:
                # data_received.)  Outside an app (a read ended the drain, or the client
                # read again) on 3.12+, _next_request decides whether it starts eagerly.
                self._next_request()

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    # -- errors, timeouts, shutdown ------------------------------------------------------

    def _reject(self, status: int, reason: str, kind: str | None, extra_lines: bytes = b"") -> None:
        """Answer a request esg won't pass to the app, then close; count it under ``kind``."""
        if self.metrics is not None:
            self.metrics.rejected_with(kind)
        if status != 503:
            logger.warning("Invalid HTTP request: %d %s", status, reason)
        self.answered += 1
        body = reason.encode("ascii", "replace")
        self.write(
            status_line(status)
            + self.server_state.common_lines
            + extra_lines
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self.close_connection()

    def _body_error(self, cycle: RequestCycle, exc: ParseError) -> None:
        cycle.disconnected = True
        transport = self.transport
        if (
            cycle.state == RESPONSE_NOT_STARTED
            and transport is not None
            and not transport.is_closing()
        ):
            self._reject(exc.status, exc.reason, exc.kind)
        else:
            logger.warning("Invalid HTTP request body: %d %s", exc.status, exc.reason)
            self.close_connection()

    def check_deadlines(self, now: float) -> None:
        """Called by the server's ticker about once a second."""
        transport = self.transport
        if transport is None:
            return
        closing = transport.is_closing()
        if (self.write_flow.paused or closing) and self.write_flow.stalled(transport, now):
            # The client stopped reading: drop it, also when a close waits for the flush, and
            # with a reset, so the kernel doesn't go on holding its unread data.
            self._count_timeout("write")
            reset_on_close(transport)
            self.abort_connection()
            return
        if closing:
            return
        if self.cycle is None:
            if not self.draining and self.parser.buffered() == 0 and now >= self.keepalive_deadline:
                self._count_timeout("keep_alive")
                self.close_connection()
            elif now >= self.head_deadline:
                self._count_timeout("header")
                if self.answered == 0 and not self.draining:
                    self._reject(408, "Request Timeout", "header_timeout")
                else:
                    self.close_connection()
            return
        if now >= self.body_deadline:
            self._count_timeout("body")
            self.cycle.disconnected = True
            self.close_connection()
            self._wake_body_waiter()

    def _count_timeout(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.timed_out(kind)

    def shutdown(self) -> None:
        """Server shutdown: close now if idle, else after the response in flight."""
        cycle = self.cycle
        if cycle is None:
            self.close_connection()
        else:
            self.closing = True
            # The requests started ahead behind it are dropped when it is answered.
            cycle.keep_alive = False  # announced as connection: close if not yet started

    def retire(self, retired: Callable[[HttpProtocol], None]) -> None:
        """End on a response that says so, because other processes serve on (a worker restart).

        Busy clients (a load balancer, a connection pool) send their next request on a
        keep-alive connection the moment the previous answer arrives: closing an idle one now,
        as ``shutdown()`` does, would fail the request already on its way.  Instead a response
        whose head isn't written yet announces ``connection: close``; after a head that said
        keep-alive, and on an idle connection, the next request is answered with it.
        ``retired(self)`` is called once that last request has arrived or the connection has
        closed: ``shutdown()`` then loses nothing.  An idle client that sends nothing more
        meets its keep-alive deadline, as it would have anyway.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            retired(self)
            return
        cycle = self.cycle
        if cycle is not None:
            # The last request started (requests may run ahead of the head of the line): every
            # one started is answered, and it says connection: close if it still can.
            last = self.held[-1].cycle if self.held else cycle
            if not last.head_written():
                self.closing = True
                self.parked = None  # never starts
                last.keep_alive = False
                retired(self)
                return
        self.on_retired = retired
        if cycle is None and not self.draining:
            self.closing = True  # else _drain_body sets it once the connection is idle

    def _retired(self) -> None:
        retired = self.on_retired
        self.on_retired = None
        if retired is not None:
            retired(self)

    # -- HTTP/2 (esg/http2/protocol.py takes the connection over) -------------------------

    def _to_http2(self) -> bool:
        """Whether the refused first request was HTTP/2's preface, now served as HTTP/2.
        (If not, the bytes taken from the parser were going to be refused anyway.)"""
        if not self.config.http2 or self.cycle is not None or self.held:
            return False  # (the preface is only ever a connection's first bytes)
        received = self.parser.take_buffered()
        if not received.startswith(PREFACE_HEAD):
            return False
        self._take_over_http2(received)
        return True

    def _take_over_http2(self, received: bytes) -> None:
        """Hand the connection to HTTP/2, which keeps this protocol to build its scopes."""
        session = Http2Protocol(self)
        if self.trace_log:
            logger.log(TRACE_LOG_LEVEL, "%s - Switching to HTTP/2", self.client_label)
        self.closing = True
        self.head_deadline = INFINITY
        self.extensions = http2_extensions(self.extensions)  # its streams' scopes
        self.server_state.connections.discard(self)
        transport = self.transport
        self.transport = None
        transport.set_protocol(session)
        session.start(transport, received)

    def build_scope(self, request: Request) -> dict[str, Any]:
        """An HTTP/2 stream's scope, built as an HTTP/1.1 request's is."""
        return self._build_scope(request)

    def log_access(self, cycle: RequestCycle) -> None:
        """An HTTP/2 stream's access log line, written as an HTTP/1.1 request's is."""
        self._log_access(cycle)

    def _log_access(self, cycle: RequestCycle) -> None:
        scope = cycle.scope
        target = scope["raw_path"]
        if scope["query_string"]:
            target = target + b"?" + scope["query_string"]
        client = scope["client"]  # the forwarded client when behind a trusted proxy
        # Escaped here too, not only by esg's AccessFormatter: a --log-config formatter gets
        # these args as they are, and X-Forwarded-For may carry tabs and C1 controls.  The
        # extras are references to raw data; esg's formatters escape what they show of it.
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            escape_for_log(f"{client[0]}:{client[1]}") if client else self.client_label,
            scope["method"],
            escape_for_log(target.decode("ascii", "backslashreplace")),
            cycle.http_version,
            cycle.status,
            extra={
                "duration_ms": (perf_counter() - cycle.started_at) * 1000.0,
                "response_bytes": cycle.sent_length,  # body bytes (0 for HEAD, 204, 304)
                "request_headers": scope["headers"],
                "response_headers": cycle.response_headers,  # the app's own
            },
        )


class HeldResponse:
    """The ``Http1Host`` of a request started ahead: holds its response until its turn.

    The connection (``HttpProtocol._next_in_line``) takes the bytes and the end of the
    response from here once every earlier response is complete, and makes itself the cycle's
    host.  Until then nothing reaches the transport: a ``send()`` past ``HOLD_LIMIT`` held
    bytes waits for the turn, and a close or abort asked for by the cycle waits for it too.
    Once dropped (the connection ended first) ``parts`` is None and the cycle is disconnected.
    """

    # Exactly the C fields of _protocol_c.pxd (tests/test_twins.py checks).
    __slots__ = (
        "protocol",
        "cycle",
        "loop",
        "default_names",
        "parts",
        "size",
        "done",
        "ending",
        "waiter",
    )

    def __init__(self, protocol: HttpProtocol) -> None:
        self.protocol = protocol
        self.cycle: RequestCycle = None  # type: ignore[assignment]  # set by the creator
        self.loop = protocol.loop
        self.default_names = protocol.default_names
        self.parts: list[bytes] | None = []
        self.size = 0
        self.done = False  # the response is complete
        self.ending = 0  # _THEN_CLOSE or _THEN_ABORT: how the cycle ended it early
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """The turn came (or the connection ended): a waiting ``send()`` goes on."""
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- Http1Host -----------------------------------------------------------------------

    @property
    def write_paused(self) -> bool:
        return self.parts is not None and self.size > HOLD_LIMIT

    def default_lines(self, head: ResponseHead | None) -> bytes:
        return self.protocol.default_lines(head)

    def write(self, data: bytes) -> None:
        if self.parts is not None:
            self.parts.append(data)
            self.size += len(data)

    def write_part(self, data: bytes) -> None:
        if self.parts is not None:
            self.parts.append(data)
            self.size += len(data)

    def defer_head(self, cycle: RequestCycle) -> None:
        self.protocol.defer_head(cycle)  # flush_head writes through whichever host it has then

    async def drain(self) -> None:
        if self.parts is not None:
            waiter = self.loop.create_future()
            self.waiter = waiter
            await waiter
        protocol = self.protocol
        if protocol.write_paused and not self.cycle.disconnected:
            await protocol.drain()  # at the head of the line now: the transport's own pace

    def response_complete(self, cycle: RequestCycle) -> None:
        self.done = True  # answered (logged, counted) when its bytes go out

    def pull_body(self, cycle: RequestCycle) -> dict[str, Any] | None:
        # Only requests without a body start ahead (see HttpProtocol._start_ahead).
        return {"type": "http.request", "body": b"", "more_body": False}

    async def wait_for_body(self, cycle: RequestCycle) -> None:
        return None  # never called: pull_body always has the (empty) body

    def task_done(self, cycle: RequestCycle) -> None:
        self.protocol.task_done(cycle)

    def close_connection(self) -> None:
        if self.parts is not None:
            self.ending = _THEN_CLOSE  # after the earlier answers and what this one wrote

    def abort_connection(self) -> None:
        if self.parts is not None:
            self.ending = _THEN_ABORT  # after the earlier answers; this one is unusable
            self.parts = []
            self.size = 0


def _alpn(transport: asyncio.BaseTransport) -> str | None:
    """The protocol TLS's ALPN chose for the connection, if any."""
    ssl_object = transport.get_extra_info("ssl_object")
    return None if ssl_object is None else ssl_object.selected_alpn_protocol()


def _address(info: Any) -> tuple[Any, Any] | None:
    """(host, port) from a sockname/peername; (path, None) for a UNIX socket."""
    if isinstance(info, (list, tuple)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:
        return (info, None)
    return None if not info else (str(info), None)
