"""One WebSocket connection's ASGI cycle: the asyncio protocol once an upgrade request arrived.

The HTTP connection hands its transport over (``HttpProtocol`` calls ``start()``) as soon
as a valid upgrade request's head is parsed; from then on this class is the transport's
protocol.  It is written once for every engine (``esg/websocket/engine.py``).

Rules, in one place:

* The app's first ``receive()`` is ``websocket.connect``.  Before accepting, the app may send
  ``websocket.accept`` (101, with its subprotocol and headers), ``websocket.close`` (403), or
  an HTTP response (``websocket.http.response.start``/``.body``, the ASGI extension).  An app
  that fails or returns before any of these gets a 500, and so does an HTTP response whose
  status is not an int from 200 to 599 (logged in one line, raised to the app).
* Messages the client sends wait in a queue of ``--ws-max-queue`` messages; when it is full,
  reading from the socket pauses until the app catches up.  ``send()`` waits while the
  transport's write buffer is above its high-water mark.
* The session answers pings and the closing handshake itself.  A protocol error from the engine
  sends a close frame with its code (1002, 1007, 1009) and ends the connection.
* The app hears of the end once, as ``websocket.disconnect`` with the peer's close code (1006
  when the connection died without one); ``send()`` afterwards raises ``ClientDisconnected``.
* Deadlines are swept by the server's one-second ticker (``check_deadlines``): keepalive pings
  every ``--ws-ping-interval`` with ``--ws-ping-timeout`` to answer, a closing handshake that
  takes longer than ``CLOSE_TIMEOUT``, and a client that doesn't read for ``--timeout-body``.
* Server shutdown closes an open WebSocket with 1012; a handshake the app has not answered yet
  ends as if the client had left (1006).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import deque
from collections.abc import Callable
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any, NoReturn

from esg._compiled import load
from esg._teardown import cancelled_by_server, reset_on_close
from esg.http.errors import ClientDisconnected
from esg.http.serializer import InvalidStatus, is_final_status, not_a_final_status
from esg.logging import TRACE_LOG_LEVEL, escape_for_log
from esg.websocket.engine import make_engine
from esg.websocket.handshake import Handshake, negotiate_deflate, response_head

if TYPE_CHECKING:
    from esg.settings import ConnectionSettings
    from esg.state import ServerState
    from esg.websocket.engine import Engine
    from esg.write_flow import WriteFlow
else:
    # The pure twin, whatever the build: this module is plain Python, and reads `paused` on
    # every message sent, which costs more on a compiled object (a C getter) than on a slot.
    WriteFlow = load("esg.write_flow", compiled=False).WriteFlow

__all__ = ["CLOSE_TIMEOUT", "WebSocketSession"]

logger = logging.getLogger("esg.error")
access_logger = logging.getLogger("esg.access")

_TASK_CONTEXT_ARGUMENT = sys.version_info >= (3, 11)  # loop.create_task(..., context=)
INFINITY = float("inf")
CLOSE_TIMEOUT = 10.0  # seconds a peer has to answer our close frame
PENDING_LIMIT = 65536  # bytes a client may send before the handshake is answered
OUT_LIMIT = 65536  # gathered outgoing bytes that are written at once

# Session states.
CONNECTING = 0  # waiting for the app to accept, close or answer with HTTP
RESPONDING = 1  # the app is sending an HTTP response instead of accepting
OPEN = 2
CLOSING = 3  # a close frame was sent; waiting for the peer's, or for the socket to close
CLOSED = 4

_CLOSE_NORMAL = 1000
_CLOSE_NO_STATUS = 1005
_CLOSE_ABNORMAL = 1006
_CLOSE_INTERNAL_ERROR = 1011
_CLOSE_SERVICE_RESTART = 1012

_EMPTY_CLOSE = b"content-length: 0\r\nconnection: close\r\n\r\n"
_SERVER_ERROR = (
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\n"
    b"connection: close\r\n\r\n"
    b"Internal Server Error"
)


class WebSocketSession:
    """The asyncio protocol of a connection that asked to become a WebSocket.

    Over HTTP/2 (esg/http2/websocket.py) a subclass answers the handshake in HEADERS instead
    of HTTP/1.1 bytes (``_write_accept``, ``_write_refusal``, ``_write_response``) and its
    transport is the stream.
    """

    ACCEPTED = 101  # the status that opens the WebSocket, for the access log

    def __init__(
        self, http: Any, request: Any, handshake: Handshake, scope: dict[str, Any]
    ) -> None:
        config: ConnectionSettings = http.config
        self.http = http  # for default header lines and the response-header validator
        self.config = config
        self.loop: asyncio.AbstractEventLoop = http.loop
        self.server_state: ServerState = http.server_state
        self.transport: Any = http.transport
        self.app = http.app
        self.scope = scope
        self.handshake = handshake
        self.client_label: str = http.client_label
        self.trace_log: bool = http.trace_log  # --log-level trace (see ServerState)
        self.max_queue = max(1, int(config.ws_max_queue))
        self.ping_interval = _seconds(config.ws_ping_interval)
        self.ping_timeout = _seconds(config.ws_ping_timeout)
        self.timeout_body = float(config.timeout_body)
        self.engine: Engine | None = None
        self.state = CONNECTING
        self.connect_delivered = False
        self.queue: deque[dict[str, Any]] = deque()
        self.receive_waiter: asyncio.Future[None] | None = None
        self.pending = bytearray()  # bytes that arrived before the 101 went out
        self.read_paused = False
        self.write_flow = WriteFlow(self.loop, self.timeout_body)
        self.write_flow.carry_on_from(http.write_flow)
        self.close_sent = False
        self.disconnect: dict[str, Any] | None = None  # set once the connection is over
        self.disconnect_delivered = False
        self.response_status = 0
        self.response_parts: list[bytes] = []
        self.response_head: Any = None
        self.task: asyncio.Task[None] | None = None
        self.next_ping = INFINITY
        self.pong_deadline = INFINITY
        self.close_deadline = INFINITY
        self.handlers: dict[type, Any] = {}
        self.out: list[bytes] | None = None  # frames gathered during this loop turn
        self.out_size = 0
        self.metrics = http.metrics  # esg.metrics.Metrics with --metrics, else None
        self.counted_open = False  # in metrics.websockets_open
        self.started_at = perf_counter()  # for the access log: the handshake's duration

    # -- start ---------------------------------------------------------------------------

    def start(self, leftover: bytes) -> None:
        """Take over the transport and run the app."""
        self.server_state.connections.add(self)
        if leftover:
            self.pending += leftover
        context = self.http.base_context.copy()
        if _TASK_CONTEXT_ARGUMENT:
            task = self.loop.create_task(self.run_asgi(), context=context)
        else:  # Python 3.10: a task copies the context it is created in
            task = context.run(self.loop.create_task, self.run_asgi())
        self.task = task
        self.server_state.tasks.add(task)

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if cancelled_by_server(exc, self.task):  # shutdown: close, and stay cancelled
                self._close_transport()
                raise
            self._app_failed(exc)  # SystemExit and the like too: see RequestCycle.run_asgi
            return
        finally:
            self.server_state.tasks.discard(self.task)
        if result is not None:
            logger.error("ASGI callable should return None, but returned %r.", result)
        state = self.state
        if state == CONNECTING:
            logger.error("ASGI callable returned without accepting or closing the WebSocket.")
            self._refuse_with_http(500)
        elif state == RESPONDING:
            logger.error("ASGI callable returned without completing the HTTP response.")
            self._close_transport()
        elif state == OPEN:
            # A value returned is an app error like any other: the client must not hear that
            # all went well (1000), but 1011, as for an exception.
            self._send_close(_CLOSE_NORMAL if result is None else _CLOSE_INTERNAL_ERROR, "")

    def _app_failed(self, exc: BaseException) -> None:
        if isinstance(exc, InvalidStatus) and self.state == CLOSED:
            return  # send() logged it and answered 500 (_reject_status); once is enough
        if self.disconnect is not None and isinstance(exc, OSError):
            logger.debug("ASGI application stopped after the client disconnected: %r", exc)
            return
        logger.error("Exception in ASGI application\n", exc_info=exc)
        state = self.state
        if state == CONNECTING:
            self._refuse_with_http(500)
        elif state == OPEN:
            self._send_close(_CLOSE_INTERNAL_ERROR, "")
        elif state == RESPONDING:
            self._close_transport()

    # -- receive -------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if not self.connect_delivered:
            self.connect_delivered = True
            return {"type": "websocket.connect"}
        while True:
            queue = self.queue
            if queue:
                message = queue.popleft()
                if self.read_paused and len(queue) < self.max_queue:
                    self._resume_reading()
                return message
            disconnect = self.disconnect
            if disconnect is not None:
                self.disconnect_delivered = True
                return disconnect
            waiter = self.loop.create_future()
            self.receive_waiter = waiter
            try:
                await waiter
            finally:
                self.receive_waiter = None

    def _deliver(self, message: dict[str, Any]) -> None:
        self.queue.append(message)
        waiter = self.receive_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(self.queue) >= self.max_queue and not self.read_paused:
            self._pause_reading()

    def _wake_receiver(self) -> None:
        waiter = self.receive_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- send ----------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        state = self.state
        if state == OPEN:
            if kind == "websocket.send":
                self._send_data(message)
                if self.metrics is not None:
                    self.metrics.websocket_messages_sent += 1
                if self.write_flow.paused and self.state == OPEN:
                    await self._drain()
                return
            if kind == "websocket.close":
                self._send_close(_close_code(message), _close_reason(message))
                return
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', got '{kind}'."
            )
        if self.disconnect is not None or state in (CLOSING, CLOSED):
            raise ClientDisconnected("the WebSocket connection is closed")
        if state == CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
                return
            if kind == "websocket.close":
                self._refuse_with_http(403)
                return
            if kind == "websocket.http.response.start":
                self._start_http_response(message)
                return
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                f"'websocket.http.response.start', got '{kind}'."
            )
        if kind == "websocket.http.response.body":  # RESPONDING
            self._http_response_body(message)
            return
        raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body', got '{kind}'.")

    def _send_data(self, message: dict[str, Any]) -> None:
        engine = self.engine
        assert engine is not None
        data = message.get("bytes")
        text = message.get("text")
        if data is not None and text is None:
            self._write_frame(engine.binary(data))
        elif text is not None and data is None:
            self._write_frame(engine.text(text))
        else:
            raise RuntimeError("A 'websocket.send' message needs exactly one of 'bytes' or 'text'.")

    def _write_frame(self, frame: bytes) -> None:
        """Frames written in one loop turn leave in one write.

        An app echoing a burst of messages sends them one by one without ever suspending (its
        receive() finds the next message already queued); gathering them until the end of the
        loop turn saves a syscall and a TCP segment per message and delays nothing.
        """
        if self.metrics is not None:
            self.metrics.sent_bytes += len(frame)
        out = self.out
        if out is None:
            self.out = [frame]
            self.out_size = len(frame)
            self.loop.call_soon(self._flush)
        else:
            out.append(frame)
            self.out_size += len(frame)
            if self.out_size > OUT_LIMIT:
                self._flush()

    def _flush(self) -> None:
        out = self.out
        if out is not None:
            self.out = None
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(b"".join(out) if len(out) > 1 else out[0])

    async def _drain(self) -> None:
        await self.write_flow.drain()
        if self.disconnect is not None and self.state == CLOSED:
            raise ClientDisconnected("the WebSocket connection is closed")

    # -- the handshake's answers -----------------------------------------------------------

    def _accept(self, message: dict[str, Any]) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise RuntimeError(f"Invalid subprotocol {subprotocol!r}: it must be a str.")
        head = self.http.inspect_headers(101, message.get("headers") or ())
        config = self.config
        deflate, extension = negotiate_deflate(self.handshake, config.ws_per_message_deflate)
        self.engine = engine = make_engine(config.ws, config.ws_max_size, deflate)
        frames = engine.frames
        self.handlers = {
            frames.TextMessage: self._on_text,
            frames.BytesMessage: self._on_bytes,
            frames.Ping: self._on_ping,
            frames.Pong: self._on_pong,
            frames.Close: self._on_close,
        }
        self._write_accept(subprotocol, extension, head)
        self.state = OPEN
        self._log(self.ACCEPTED)
        if self.trace_log:
            logger.log(TRACE_LOG_LEVEL, "%s - WebSocket connection made", self.client_label)
        if self.metrics is not None:
            self.metrics.websockets_open += 1
            self.metrics.websockets_accepted += 1
            self.counted_open = True
        if self.ping_interval is not None:
            self.next_ping = monotonic() + self.ping_interval
        if self.pending:
            data = bytes(self.pending)
            self.pending.clear()
            self._received(data)

    def _write_accept(self, subprotocol: str | None, extension: bytes | None, head: Any) -> None:
        """The answer that opens the WebSocket (here, HTTP/1.1's 101)."""
        self.transport.write(
            response_head(
                self.handshake, subprotocol, extension, head.block, self.http.default_lines(head)
            )
        )

    def _refuse_with_http(self, status: int) -> None:
        """403 (the app closed before accepting) or 500 (it failed), then close."""
        self._write_refusal(status)
        self._log(status)
        self._finish_without_websocket()

    def _write_refusal(self, status: int) -> None:
        body = _SERVER_ERROR if status == 500 else _EMPTY_CLOSE
        self.transport.write(
            self.http.status_line_for(status) + self.http.default_lines(None) + body
        )

    def _start_http_response(self, message: dict[str, Any]) -> None:
        status = message["status"]
        if not is_final_status(status):
            self._reject_status(status)
        head = self.http.inspect_headers(status, message.get("headers") or ())
        self.response_head = head
        self.state = RESPONDING

    def _reject_status(self, status: Any) -> NoReturn:
        """The status can't answer the handshake (a 1xx would pass for one that goes on, a 700
        is no status at all).  Nothing was written yet: the client gets a 500 instead, the app
        an exception, the log one line."""
        error = not_a_final_status(status, "websocket.http.response.start")
        logger.error("%s Answered 500.", error)
        self._refuse_with_http(500)
        raise error

    def _http_response_body(self, message: dict[str, Any]) -> None:
        body = message.get("body", b"")
        if body:
            self.response_parts.append(bytes(body))
        if message.get("more_body", False):
            return
        head = self.response_head
        body = b"".join(self.response_parts)
        self.response_parts = []
        if head.content_length >= 0 and head.content_length != len(body):
            logger.error("WebSocket denial response: body length differs from content-length.")
            self._close_transport(abort=True)
            return
        self._write_response(head, body)
        self._log(head.status)
        self._finish_without_websocket()

    def _write_response(self, head: Any, body: bytes) -> None:
        """The app's denial response, whole (here, in HTTP/1.1)."""
        parts = [self.http.status_line_for(head.status), self.http.default_lines(head), head.block]
        if head.content_length < 0:
            parts.append(b"content-length: %d\r\n" % len(body))
        if not head.close:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        parts.append(body)
        self.transport.write(b"".join(parts))

    def _finish_without_websocket(self) -> None:
        self.state = CLOSED
        self._set_disconnect(_CLOSE_ABNORMAL, "")
        self._close_transport()

    # -- frames from the client ------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.received_bytes += len(data)
        if self.state < OPEN:
            self.pending += data
            if len(self.pending) > PENDING_LIMIT:
                self._close_transport(abort=True)
            return
        self._received(data)

    def _received(self, data: bytes) -> None:
        engine = self.engine
        if engine is None or self.state == CLOSED:
            return
        engine.feed(data)
        handlers = self.handlers
        frames = engine.frames
        try:
            while self.state != CLOSED:
                event = engine.next_event()
                if event is None:
                    break
                handlers[type(event)](event)
        except frames.ProtocolError as exc:
            reason = escape_for_log(str(exc))  # a library's message may quote client bytes
            logger.info("WebSocket protocol error from %s: %s", self.client_label, reason)
            self._fail(exc.code, exc.reason)

    def _on_text(self, event: Any) -> None:
        if self.metrics is not None:
            self.metrics.websocket_messages_received += 1
        if self.state == OPEN:
            self._deliver({"type": "websocket.receive", "text": event.data})

    def _on_bytes(self, event: Any) -> None:
        if self.metrics is not None:
            self.metrics.websocket_messages_received += 1
        if self.state == OPEN:
            self._deliver({"type": "websocket.receive", "bytes": event.data})

    def _on_ping(self, event: Any) -> None:
        if not self.close_sent:
            assert self.engine is not None
            self._write_frame(self.engine.pong(event.payload))

    def _on_pong(self, event: Any) -> None:
        self.pong_deadline = INFINITY

    def _on_close(self, event: Any) -> None:
        code, reason = event.code, event.reason
        if not self.close_sent:
            # Section 5.5.1: answer with a close frame, echoing the peer's code.
            self.close_sent = True
            assert self.engine is not None
            echo = code if code != _CLOSE_NO_STATUS else None
            self._write_frame(self.engine.close(echo or _CLOSE_NO_STATUS, ""))
        self.state = CLOSED
        self._set_disconnect(code, reason)
        # Section 7.1.1: the server closes the TCP connection first.
        self._close_transport()

    def _fail(self, code: int, reason: str) -> None:
        """The client broke the protocol: close with ``code`` and drop the connection."""
        if not self.close_sent:
            self.close_sent = True
            assert self.engine is not None
            self._write_frame(self.engine.close(code, reason))
        self.state = CLOSED
        self._set_disconnect(code, reason)
        self._close_transport()

    def _send_close(self, code: int, reason: str) -> None:
        """The server starts the closing handshake."""
        if self.close_sent:
            return
        assert self.engine is not None
        frame = self.engine.close(code, reason)  # raises ValueError for a code nobody may send
        self.close_sent = True
        self._write_frame(frame)
        self.state = CLOSING
        self.close_deadline = monotonic() + CLOSE_TIMEOUT
        self.next_ping = INFINITY
        # The peer's close reply must get through even if the app never reads what is queued
        # (messages arriving from now on are dropped, so reading can't fill the queue).
        self._resume_reading()

    # -- the connection ends ----------------------------------------------------------------

    def _set_disconnect(self, code: int, reason: str) -> None:
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self._wake_receiver()
            if self.trace_log and self.engine is not None:  # only once it was accepted
                # The code the app is told: the peer's, 1012 at shutdown, 1006 without a close.
                logger.log(
                    TRACE_LOG_LEVEL, "%s - WebSocket closed with code %d", self.client_label, code
                )

    def _close_transport(self, abort: bool = False) -> None:
        transport = self.transport
        if transport is None:
            return
        if abort:
            # Also after close(): a peer that doesn't read keeps a closed transport waiting
            # for its write buffer to flush, and only abort() lets it go.
            self.out = None
            transport.abort()
        elif not transport.is_closing():
            self._flush()
            transport.close()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.connections_open -= 1  # the HTTP connection it took over
            metrics.connections_closed += 1
            if self.counted_open:
                self.counted_open = False
                metrics.websockets_open -= 1
        self.state = CLOSED
        self.server_state.connections.discard(self)
        self._set_disconnect(_CLOSE_ABNORMAL, "")
        if self.trace_log:  # the end of the connection the HTTP protocol handed over
            logger.log(TRACE_LOG_LEVEL, "%s - WebSocket connection lost", self.client_label)
        self._wake_receiver()
        self.write_flow.release()
        self.transport = None

    # -- flow control ------------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_flow.pause()

    def resume_writing(self) -> None:
        self.write_flow.resume()

    # -- the server's ticker and shutdown -----------------------------------------------------

    def check_deadlines(self, now: float) -> None:
        transport = self.transport
        if transport is None:
            return
        flow = self.write_flow
        if (flow.paused or transport.is_closing()) and flow.stalled(transport, now):
            reset_on_close(transport)
            self._close_transport(abort=True)
            return
        if now >= self.close_deadline:
            self._close_transport(abort=True)
            return
        if now >= self.pong_deadline and self.read_paused:
            # The app isn't keeping up and esg stopped reading, so the pong may be sitting
            # unread in the socket: a slow app is not a dead client.
            self.pong_deadline = now + (self.ping_timeout or 0.0)
        elif now >= self.pong_deadline:
            logger.info("WebSocket keepalive ping timeout: closing %s", self.client_label)
            if self.metrics is not None:
                self.metrics.timed_out("websocket_ping")
            self.close_sent = True  # the peer is unresponsive: no closing handshake
            self.state = CLOSED
            self._set_disconnect(_CLOSE_ABNORMAL, "keepalive ping timeout")
            self._close_transport(abort=True)
            return
        if self.state == OPEN and now >= self.next_ping and self.engine is not None:
            assert self.ping_interval is not None
            self._write_frame(self.engine.ping(os.urandom(4)))
            self.next_ping = now + self.ping_interval
            if self.ping_timeout is not None and self.pong_deadline == INFINITY:
                self.pong_deadline = now + self.ping_timeout

    def abort_connection(self) -> None:
        """Server shutdown ran out of time (``Server.shutdown``): drop the connection now."""
        self._close_transport(abort=True)

    def retire(self, retired: Callable[[WebSocketSession], None]) -> None:
        """Other processes serve on: nothing to wait for, no request can come here.

        ``shutdown()`` then closes the WebSocket with 1012 (service restart), which tells
        the client to reconnect, to another process.
        """
        retired(self)

    def shutdown(self) -> None:
        """Server shutdown: tell the client the service is restarting (1012).

        An app still deciding whether to accept is not cancelled: like when the client leaves,
        the connection closes and its ``receive()`` says ``websocket.disconnect`` (1006), so it
        can end on its own within the graceful shutdown period.
        """
        if self.state == OPEN:
            self._send_close(_CLOSE_SERVICE_RESTART, "")
            self._set_disconnect(_CLOSE_SERVICE_RESTART, "")
        elif self.state == CONNECTING:
            self.state = CLOSED  # its accept or close now raises ClientDisconnected
            self._set_disconnect(_CLOSE_ABNORMAL, "")
            self._close_transport()

    # -- logging ------------------------------------------------------------------------------

    def _log(self, status: int) -> None:
        if self.http.access_log:
            scope = self.scope
            target = scope["raw_path"]
            if scope["query_string"]:
                target = target + b"?" + scope["query_string"]
            client = scope["client"]  # escaped: see HttpProtocol._log_access
            # Body bytes: none with a 101; an app's denial response tells its Content-Length
            # (without one, the body was joined in _http_response_body and is not known here).
            head = self.response_head
            if status == self.ACCEPTED:
                sent: int | None = 0
            elif head is not None and head.status == status:
                sent = head.content_length if head.content_length >= 0 else None
            else:  # _refuse_with_http: an empty 403 or esg's own 500
                sent = len(_SERVER_ERROR.partition(b"\r\n\r\n")[2]) if status == 500 else 0
            access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                escape_for_log(f"{client[0]}:{client[1]}") if client else self.client_label,
                "WebSocket",
                escape_for_log(target.decode("ascii", "backslashreplace")),
                scope["http_version"],
                status,
                extra={
                    "duration_ms": (perf_counter() - self.started_at) * 1000.0,
                    "response_bytes": sent,
                    "request_headers": scope["headers"],
                    "response_headers": None,
                },
            )


def _seconds(value: Any) -> float | None:
    """A ping interval/timeout: None or a non-positive value switches it off."""
    if value is None:
        return None
    seconds = float(value)
    return seconds if seconds > 0 else None


def _close_code(message: dict[str, Any]) -> int:
    code = message.get("code")
    if code is None:
        return _CLOSE_NORMAL
    if type(code) is not int:
        raise RuntimeError(f"Invalid close code {code!r}: it must be an int.")
    return code


def _close_reason(message: dict[str, Any]) -> str:
    reason = message.get("reason")
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise RuntimeError(f"Invalid close reason {reason!r}: it must be a str.")
    return reason
