"""WebSockets over HTTP/2 (RFC 8441): one stream carries one WebSocket.

esg announces ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`` (unless ``--ws none``); a client then
opens a WebSocket with an *extended CONNECT*: ``:method CONNECT``, ``:protocol websocket``,
``:scheme``, ``:path`` and ``:authority``, plus ``sec-websocket-version: 13`` and the usual
subprotocol and extension offers (no key, no ``Upgrade``).  ``open_websocket`` checks that
request and runs the same ``WebSocketSession`` as an HTTP/1.1 upgrade (esg/websocket/session.py,
the same engines and permessage-deflate), with two differences kept here:

* ``Http2WebSocketSession`` answers the handshake in HEADERS: ``:status 200`` with the chosen
  subprotocol and extension opens the WebSocket; a refusal (403, 500) or the app's denial
  response (``websocket.http.response``) is a status and a body on the stream.
* ``StreamTunnel`` is the session's transport: WebSocket frames travel in DATA frames.  What
  the stream's or the connection's flow-control window can't take waits in ``unsent`` (over
  ``HIGH_WATER`` the session is paused, as a full socket pauses it); received DATA is credited
  back to the client only while the session reads (its queue of ``--ws-max-queue`` messages
  full stops that, so a slow app back-pressures its client).  ``close()`` is END_STREAM (a TCP
  FIN's part) followed, if the client hasn't ended its side, by RST_STREAM(NO_ERROR) (RFC 9113
  section 8.1), so a stream never stays half-closed; ``abort()`` is RST_STREAM(CANCEL), and so
  is ``close()`` before any response HEADERS (no DATA may come first).  The client ending its
  side ends the session, as EOF does on HTTP/1.1: before the response, the stream is reset
  (CANCEL) and the app hears ``websocket.disconnect``.

To the connection (esg/http2/protocol.py) the tunnel is one of its streams, with the surface
of ``Http2Stream`` it uses (``cycle`` is None: no request cycle; ``data_received``,
``window_opened``, ``disconnect``, ``reset``), so deadlines, GOAWAY and shutdown see it too.
The session is also one of the server's connections: its pings, close timeout and the 1012 at
shutdown run from the server's ticker as over HTTP/1.1.
"""

from __future__ import annotations

from typing import Any

from esg._compiled import is_compiled, load
from esg.extensions import websocket_extensions
from esg.http2.errors import StreamClosedError
from esg.http2.frames import ErrorCode
from esg.websocket.handshake import HandshakeError, check_extended_connect, checked_subprotocol
from esg.websocket.session import WebSocketSession

__all__ = ["Http2WebSocketSession", "StreamTunnel", "open_websocket"]

INFINITY = float("inf")
HIGH_WATER = 65536  # unsent bytes before the session waits (asyncio's transport default)
_CANCEL = int(ErrorCode.CANCEL)
_NO_ERROR = int(ErrorCode.NO_ERROR)


def open_websocket(protocol: Any, event: Any) -> None:
    """An extended CONNECT arrived on ``protocol`` (an ``Http2Protocol``): start its WebSocket,
    or answer why not."""
    sid = event.stream_id
    if event.protocol != b"websocket":
        _refuse(protocol, sid, 501, "Not Implemented", [], event.end_stream)
        return
    try:
        handshake = check_extended_connect(event.headers)
    except HandshakeError as exc:
        _refuse(protocol, sid, exc.status, exc.reason, exc.headers, event.end_stream)
        return
    http1 = protocol.http1
    path = event.path
    query = path.find(b"?")
    raw_path, query_string = (path, b"") if query < 0 else (path[:query], path[query + 1 :])
    headers = event.headers
    if event.authority is not None and not any(name == b"host" for name, _ in headers):
        headers = [(b"host", event.authority), *headers]
    request_class = load("esg.http.parser", is_compiled(type(protocol).__module__)).Request
    request = request_class(b"GET", path, raw_path, query_string, "2", headers)
    request.forwarded = True
    scope = http1.build_scope(request)
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = handshake.subprotocols
    scope["extensions"] = websocket_extensions(http1.extensions)
    tunnel = StreamTunnel(protocol, sid)
    session = Http2WebSocketSession(protocol, tunnel, handshake, scope)
    tunnel.session = session
    protocol.streams[sid] = tunnel
    session.start(b"")
    if event.end_stream:
        tunnel.data_received(b"", True)


def _refuse(
    protocol: Any,
    stream_id: int,
    status: int,
    reason: str,
    extra: list[tuple[bytes, bytes]] | None,
    end_stream: bool,
) -> None:
    body = reason.encode("ascii", "replace")
    fields = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        *(extra or ()),
    ]
    conn = protocol.conn
    try:
        conn.send_headers(stream_id, protocol.response_fields(status, fields))
        conn.send_data(stream_id, body, True)
        if not end_stream:
            conn.reset_stream(stream_id, _NO_ERROR)
    except StreamClosedError:
        return
    protocol.want_flush()


class StreamTunnel:
    """One stream carrying a WebSocket: the session's transport, and the connection's stream."""

    __slots__ = (
        "protocol",
        "stream_id",
        "session",
        "unsent",
        "end_pending",
        "closing",
        "head_sent",
        "local_ended",
        "remote_ended",
        "closed",
        "reading",
        "uncredited",
        "writing_paused",
    )

    cycle = None  # no request cycle on this stream (Http2Protocol's test for a tunnel)
    body_deadline = INFINITY  # the session keeps its own deadlines

    def __init__(self, protocol: Any, stream_id: int) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.session: Http2WebSocketSession | None = None
        self.unsent: bytes | None = None  # what the windows didn't take yet
        self.end_pending = False  # END_STREAM goes after unsent
        self.closing = False  # close() or abort() was called
        self.head_sent = False  # the response's HEADERS went: DATA may follow (RFC 9113 8.1)
        self.local_ended = False
        self.remote_ended = False
        self.closed = False  # forgotten by the connection; the session was told
        self.reading = True
        self.uncredited = 0  # received while the session doesn't read: window kept back
        self.writing_paused = False

    # -- the session's transport --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closing or self.closed or not data:
            return
        if self.unsent is not None:
            self.unsent += data
            self._maybe_pause()
            return
        self._send(data, False)
        self.protocol.want_flush()

    def close(self) -> None:
        if self.closing or self.closed:
            return
        if not self.head_sent:
            # No response yet, so no DATA may carry END_STREAM (RFC 9113 section 8.1): the
            # stream is abandoned instead, as closing a socket mid-handshake drops it.
            self.abort()
            return
        self.closing = True
        if self.unsent is not None:
            self.end_pending = True
            return
        self._send(b"", True)
        self.protocol.want_flush()

    def abort(self) -> None:
        if self.closed:
            return
        self.closing = True
        self.unsent = None
        self.protocol.conn.reset_stream(self.stream_id, _CANCEL)
        self.protocol.want_flush()
        self._forget()

    def is_closing(self) -> bool:
        return self.closing or self.closed

    def get_write_buffer_size(self) -> int:
        return 0 if self.unsent is None else len(self.unsent)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        if self.uncredited and not self.closed:
            self.protocol.conn.acknowledge_received_data(self.stream_id, self.uncredited)
            self.uncredited = 0
            self.protocol.want_flush()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self.protocol.transport
        if transport is None or name == "socket":
            return default  # the socket is the connection's, not this stream's to reset
        return transport.get_extra_info(name, default)

    # -- sending --------------------------------------------------------------------------------

    def _send(self, data: bytes, end: bool) -> None:
        try:
            sent = self.protocol.conn.send_data(self.stream_id, data, end)
        except StreamClosedError:
            self.disconnect()
            return
        if sent < len(data):
            self.unsent = data[sent:]
            self.end_pending = end
            self._maybe_pause()
        elif end:
            self._ended_locally()

    def _maybe_pause(self) -> None:
        unsent = self.unsent
        if not self.writing_paused and unsent is not None and len(unsent) > HIGH_WATER:
            self.writing_paused = True
            if self.session is not None:
                self.session.pause_writing()

    def _ended_locally(self) -> None:
        self.local_ended = True
        if not self.remote_ended:
            # close() is the session's last word (its WebSocket CLOSED, or its HTTP answer
            # complete), and over HTTP/1.1 it would close the socket both ways.  A client that
            # never ends its side would keep the stream open for ever (no keep-alive timeout,
            # no drain at shutdown, a connection slot taken): RFC 9113 section 8.1 lets a
            # complete response be followed by RST_STREAM(NO_ERROR), which asks the client to
            # stop sending and doesn't discard what we sent.
            self.protocol.conn.reset_stream(self.stream_id, _NO_ERROR)
            self.protocol.want_flush()
        self._forget()

    # -- the connection's stream surface -------------------------------------------------------

    def window_opened(self) -> None:
        data = self.unsent
        if data is None or self.closed:
            return
        self.unsent = None
        self._send(data, self.end_pending)
        if self.unsent is None and self.writing_paused and not self.closed:
            self.writing_paused = False
            if self.session is not None:
                self.session.resume_writing()

    def data_received(self, data: bytes, end: bool) -> None:
        if self.closed:
            return
        if data:
            if self.reading:
                self.protocol.conn.acknowledge_received_data(self.stream_id, len(data))
            else:
                self.uncredited += len(data)
            if self.session is not None:
                self.session.data_received(data)
        if end:
            self.remote_ended = True
            if self.local_ended:
                self._forget()
            elif not self.head_sent:
                # Before any response HEADERS (the CONNECT came with END_STREAM, or the client
                # ended while the app decided): the client is gone, as EOF mid-handshake says
                # over HTTP/1.1.  DATA can't go first (RFC 9113 section 8.1), and a response
                # would answer nobody: RST_STREAM(CANCEL), and the session hears the loss.
                self.abort()
            else:
                self.close()  # the client's end of the stream is a disconnect, as EOF is

    def reset(self, code: int) -> None:
        if not self.closed:
            self.protocol.conn.reset_stream(self.stream_id, code)
            self.protocol.want_flush()
        self.disconnect()

    def disconnect(self) -> None:
        """The stream is gone (reset, or the connection lost)."""
        self.unsent = None
        self.closing = True
        self._forget()

    def _forget(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.protocol.stream_closed(self)
        session = self.session
        if session is not None:
            # As a transport does: connection_lost from the loop, not from inside the call.
            session.loop.call_soon(session.connection_lost, None)


class Http2WebSocketSession(WebSocketSession):
    """A ``WebSocketSession`` whose handshake answers are HTTP/2 HEADERS on its stream."""

    ACCEPTED = 200  # RFC 8441 section 5: a 2xx opens the WebSocket

    def __init__(
        self, protocol: Any, tunnel: StreamTunnel, handshake: Any, scope: dict[str, Any]
    ) -> None:
        super().__init__(protocol.http1, None, handshake, scope)
        self.h2 = protocol
        self.transport = tunnel
        self.write_flow.paused = False  # (not the HTTP/1.1 connection's state)
        self.write_flow.deadline = INFINITY
        self.app_fields: list[Any] = []

    def _accept(self, message: dict[str, Any]) -> None:
        self.app_fields = list(message.get("headers") or ())
        super()._accept(message)

    def _start_http_response(self, message: dict[str, Any]) -> None:
        self.app_fields = list(message.get("headers") or ())
        super()._start_http_response(message)

    def _write_accept(self, subprotocol: str | None, extension: bytes | None, head: Any) -> None:
        fields = list(self.app_fields)
        if subprotocol is not None:
            fields.insert(0, (b"sec-websocket-protocol", checked_subprotocol(subprotocol)))
        if extension is not None:
            fields.insert(0, (b"sec-websocket-extensions", extension))
        self._send_head(200, fields)

    def _write_refusal(self, status: int) -> None:
        body = b"Internal Server Error" if status == 500 else b""
        fields = [(b"content-length", b"%d" % len(body))]
        if body:
            fields.insert(0, (b"content-type", b"text/plain; charset=utf-8"))
        self._send_head(status, fields)
        self.transport.write(body)

    def _write_response(self, head: Any, body: bytes) -> None:
        fields = self.app_fields
        if head.content_length < 0:
            fields = [*fields, (b"content-length", b"%d" % len(body))]
        self._send_head(head.status, fields)
        self.transport.write(body)

    def _send_head(self, status: int, fields: list[Any]) -> None:
        protocol = self.h2
        tunnel = self.transport
        try:
            protocol.conn.send_headers(tunnel.stream_id, protocol.response_fields(status, fields))
        except StreamClosedError:
            tunnel.disconnect()
            return
        tunnel.head_sent = True
        protocol.want_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        metrics = self.metrics
        if metrics is not None:
            # The base class counts an HTTP/1.1 connection closed; a stream is not one.
            metrics.connections_open += 1
            metrics.connections_closed -= 1
        super().connection_lost(exc)
