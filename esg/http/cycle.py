"""The ASGI HTTP request/response cycle — written once, whatever parses the bytes below it.

Compiled twin ``esg.http._cycle_c``, typed by ``_cycle_c.pxd``.

A ``RequestCycle`` is one request: it owns the ASGI ``receive`` and ``send`` callables and runs
the app in its own ``asyncio.Task``.  It talks to its connection only through the small
``CycleHost`` surface declared in esg/http/cycle_host.py (write bytes, pull body events, wait
for data, close), so the connection protocol can change without touching the ASGI rules kept
here (the connection reads how far the response got as ``state``, one of ``RESPONSE_*``):

* ``send()`` enforces message order (start, then body until ``more_body`` is false) and
  validates every header before anything is written; a response never goes out half-checked.
* A complete response (``more_body`` false on the first body message) is written with one
  ``transport.write``.  Framing is decided here: the app's Content-Length (checked against what it
  sends), else Content-Length computed for a single-message body, else chunked for HTTP/1.1,
  else (HTTP/1.0 streaming) the body ends when the connection closes.
* ``receive()`` returns body that is already buffered without suspending; it waits only when
  the app asks for bytes the client hasn't sent yet.  ``Expect: 100-continue`` is answered the
  first time the app calls ``receive()``.
* An app error before ``http.response.start`` becomes a 500; after it, the connection closes.
  An invalid status in ``http.response.start`` (not an int from 200 to 599) is one too: it is
  logged in one line, answered with a 500 and raised to the app.
* Once the client is gone, ``send()`` raises ``ClientDisconnected`` (an ``OSError``), as ASGI
  spec 2.4 asks, so streaming apps stop instead of producing into the void.

Two kinds of host (esg/http/cycle_host.py).  An HTTP/1.1 connection is given bytes: the cycle
writes the status line, header lines and chunked framing itself (``write()``/``write_part()``),
exactly as it always did.  A *structured* host (an HTTP/2 stream, ``structured=True``) is given
the response as status, header fields, body pieces and trailers (``send_head()``,
``send_body()``, ``send_trailers()``) and frames it in its own protocol.  Every rule above is
kept here for both; the structured path branches off at the three places bytes are made, so
the HTTP/1.1 path runs the same code as before.

Trailers (the ``http.response.trailers`` extension, offered on both kinds of host):
``trailers: True`` in ``http.response.start`` holds the end of the response until the
``http.response.trailers`` message(s).  A structured host sends them as its protocol does.  On
HTTP/1.1 they become the chunked body's trailer section when the request's ``TE`` lists
``trailers`` (RFC 9110 section 10.1.4; a body that would otherwise get a Content-Length is then
sent chunked); otherwise, or when the app set a Content-Length, they are dropped: the client
said it can't take them, or the framing has no place for them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, NoReturn

from esg._compiled import is_compiled, load
from esg._teardown import cancelled_by_server
from esg.http.errors import ClientDisconnected
from esg.http.files import READ_CHUNK, FileBody, open_file_body

_COMPILED = is_compiled(__name__)  # which twin this is: neighbours come from the same build

if TYPE_CHECKING:
    from esg._types import ASGIApp, Message, Scope
    from esg.http.cycle_host import Http1Host, StructuredHost
    from esg.http.serializer import (
        CONTINUE_RESPONSE,
        LAST_CHUNK,
        InvalidResponse,
        InvalidStatus,
        ResponseHead,
        accepts_trailers,
        chunk,
        inspect_response_headers,
        not_a_final_status,
        status_line,
        trailer_section,
    )
else:  # the serializer of this build: compiled calls compiled
    _serializer = load("esg.http.serializer", _COMPILED)
    CONTINUE_RESPONSE = _serializer.CONTINUE_RESPONSE
    LAST_CHUNK = _serializer.LAST_CHUNK
    InvalidResponse = _serializer.InvalidResponse
    InvalidStatus = _serializer.InvalidStatus
    not_a_final_status = _serializer.not_a_final_status
    ResponseHead = _serializer.ResponseHead
    chunk = _serializer.chunk
    inspect_response_headers = _serializer.inspect_response_headers
    status_line = _serializer.status_line
    accepts_trailers = _serializer.accepts_trailers
    trailer_section = _serializer.trailer_section

logger = logging.getLogger("esg.error")

# Response states (RequestCycle.state), for the connection too.
RESPONSE_NOT_STARTED = 0  # no http.response.start yet: an error can still be answered 500
RESPONSE_STARTED = 1  # started; body messages follow until more_body is false
RESPONSE_DONE = 2  # complete, or failed and closed
RESPONSE_TRAILERS = 3  # body complete, trailers announced and not all sent
# The same, for use in this module: the compiled build types them as C ints (_cycle_c.pxd).
_START = RESPONSE_NOT_STARTED
_BODY = RESPONSE_STARTED
_DONE = RESPONSE_DONE
_TRAILERS = RESPONSE_TRAILERS

_NO_BODY_STATUSES = frozenset([204, 304])

_SERVER_ERROR = (
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\n"
    b"connection: close\r\n\r\n"
    b"Internal Server Error"
)
# The same answer for a structured host, which adds its own Date/Server/--header fields.
_SERVER_ERROR_FIELDS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"21"),
]
_NO_DEFAULTS: frozenset[bytes] = frozenset()


class RequestCycle:
    """One request's ASGI cycle; see the module docstring for its rules."""

    # Exactly the C fields of _cycle_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "host",
        "scope",
        "method",
        "http_version",
        "keep_alive",
        "expect_continue",
        "body_done",
        "disconnected",
        "response_complete",
        "broken",
        "state",
        "head",
        "no_body",
        "chunked",
        "expected_length",
        "sent_length",
        "response_headers",
        "status",
        "started_at",
        "disconnect_waiter",
        "task",
        "head_deferred_once",
        "structured",
        "trailers",
    )

    def __init__(
        self,
        host: Http1Host | StructuredHost,
        scope: Scope,
        method: bytes,
        http_version: str,
        keep_alive: bool,
        expect_continue: bool,
        structured: bool = False,
    ) -> None:
        # Typed Any here: which half of the seam the cycle calls follows ``structured``, a
        # fact mypy can't connect to the host's type.  The constructor's annotation is what
        # holds each host to its Protocol.
        self.host: Any = host
        self.scope = scope
        self.method = method
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.body_done = False  # the app has been given the last body message
        self.disconnected = False  # the client went away (or the connection was closed)
        self.response_complete = False
        self.broken = False  # the app sent something unsendable; the connection is closed
        self.state = _START
        self.head: ResponseHead | None = None
        self.no_body = False
        self.chunked = False
        self.expected_length = -1
        self.sent_length = 0  # body bytes the app sent (for the access log, and Content-Length)
        self.response_headers: Any = None  # the app's header list, for the access log
        self.status = 0
        self.started_at = 0.0
        self.disconnect_waiter: Any = None
        self.task: Any = None
        self.head_deferred_once = False
        self.structured = structured  # the host frames the response itself (HTTP/2)
        self.trailers: Any = None  # the trailer fields gathered, once announced

    # -- running the app -----------------------------------------------------------------

    async def run_asgi(self, app: ASGIApp) -> None:
        try:
            result: object = await app(self.scope, self.receive, self.send)  # type: ignore[func-returns-value]
        except BaseException as exc:
            if cancelled_by_server(exc, self.task):
                # Shutdown ran out of time and cancelled the app: close, and stay cancelled.
                if not self.response_complete:
                    self.host.close_connection()
                raise
            # Anything else the app raised, SystemExit and KeyboardInterrupt included, is its
            # failure: re-raised from a task, they would stop the whole server.
            self._app_failed(exc)
            return
        finally:
            self.host.task_done(self)
        if result is not None:
            logger.error("ASGI callable should return None, but returned %r.", result)
        if self.disconnected or self.state == _DONE:
            return
        if self.state == _START:
            logger.error("ASGI callable returned without starting response.")
            self._send_server_error()
        else:
            logger.error("ASGI callable returned without completing response.")
            self.host.close_connection()

    def _app_failed(self, exc: BaseException) -> None:
        if isinstance(exc, InvalidStatus) and self.response_complete:
            return  # send() logged it and answered 500 (_reject_status); once is enough
        if self.disconnected and isinstance(exc, OSError):
            # The app let send()'s ClientDisconnected (or its own I/O error) propagate after
            # the client left: expected, not an application error.
            logger.debug("ASGI application stopped after the client disconnected: %r", exc)
            return
        logger.error("Exception in ASGI application\n", exc_info=exc)
        if self.disconnected or self.broken or self.response_complete:
            return
        if self.state == _START:
            self._send_server_error()
        else:
            self.host.close_connection()

    def _send_server_error(self) -> None:
        self.status = 500
        self.keep_alive = False
        self.state = _DONE
        self.sent_length = 21  # "Internal Server Error"
        self.response_headers = None
        if self.structured:
            self.trailers = None
            head = ResponseHead(500)
            head.fields = list(_SERVER_ERROR_FIELDS)  # (its own: a host may add to a head's)
            self.host.send_head(self, head, b"Internal Server Error", True)
        else:
            self.host.write(status_line(500) + self.host.default_lines(None) + _SERVER_ERROR)
        self._finish()

    # -- receive -------------------------------------------------------------------------

    async def receive(self) -> Message:
        if self.expect_continue:
            self.expect_continue = False
            if self.state == _START and not self.disconnected:
                if self.structured:
                    head = ResponseHead(100)
                    head.fields = []
                    self.host.send_head(self, head, b"", False)
                else:
                    self.host.write(CONTINUE_RESPONSE)
        while True:
            if self.disconnected or self.response_complete:
                return {"type": "http.disconnect"}
            if self.body_done:
                await self._wait_for_disconnect()
                continue
            message: Message | None = self.host.pull_body(self)
            if message is not None:
                if not message["more_body"]:
                    self.body_done = True
                return message
            if not self.disconnected:
                await self.host.wait_for_body(self)

    async def _wait_for_disconnect(self) -> None:
        if self.disconnect_waiter is None:
            self.disconnect_waiter = self.host.loop.create_future()
        await self.disconnect_waiter

    def wake_receiver(self) -> None:
        """The client left or the response finished: ``receive()`` now says disconnect."""
        waiter = self.disconnect_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- send ----------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        message_type = message["type"]
        state = self.state
        if state == _BODY and message_type == "http.response.body":
            if self.disconnected:
                raise ClientDisconnected("the client closed the connection")
            self._send_body(message.get("body", b""), message.get("more_body", False))
            if self.host.write_paused and not self.disconnected:
                await self.host.drain()
            return
        if state == _START and message_type == "http.response.start":
            if self.disconnected:
                raise ClientDisconnected("the client closed the connection")
            self._start_response(message)
            self.state = _BODY
            # The head waits for the first body message so both leave in one write; if the
            # app pauses before sending any body (a stream, server-sent events), the head goes
            # out at the end of this loop turn so the client isn't left without it.
            self.host.defer_head(self)
            return
        if state == _TRAILERS and message_type == "http.response.trailers":
            if self.disconnected:
                raise ClientDisconnected("the client closed the connection")
            self._add_trailers(message)
            if self.host.write_paused and not self.disconnected:
                await self.host.drain()
            return
        # The extensions (esg/http/files.py): after the common messages, so they cost those
        # nothing.
        if state == _BODY and (
            message_type == "http.response.pathsend" or message_type == "http.response.zerocopysend"
        ):
            await self._send_file(message, message_type == "http.response.pathsend")
            return
        if message_type == "http.response.early_hint" and state <= _BODY:  # (_START, _BODY)
            if state == _START or self.head is not None:
                self._early_hint(message)
            return  # (once the head is out, a hint is too late: ignored, as the spec allows)
        if state == _START:
            raise RuntimeError(
                f"Expected ASGI message 'http.response.start', got '{message_type}'."
            )
        if state == _BODY:
            raise RuntimeError(f"Expected ASGI message 'http.response.body', got '{message_type}'.")
        if state == _TRAILERS:
            raise RuntimeError(
                f"Expected ASGI message 'http.response.trailers', got '{message_type}'."
            )
        raise RuntimeError(f"Unexpected ASGI message '{message_type}' after the response ended.")

    def head_written(self) -> bool:
        """Whether the response head went out: until then it can still say connection: close."""
        return self.state != _START and self.head is None

    def flush_head(self) -> bool:
        """Send a head still waiting for its body; True asks to be called once more first."""
        head = self.head
        if head is None or self.disconnected:
            return False
        if not self.head_deferred_once:
            self.head_deferred_once = True
            return True
        self.head = None
        if self.structured:
            self._hand_head(head, b"", True)
        else:
            self._write_head_and_body(head, b"", True)
        return False

    def _start_response(self, message: Message) -> None:
        try:
            head = inspect_response_headers(
                message["status"],
                message.get("headers", ()),
                self.host.default_names,
                self.structured,
            )
        except InvalidStatus:
            self._reject_status(message["status"])
        except InvalidResponse:
            self._refuse()
            raise
        self.status = head.status
        if self.status < 200:
            self._reject_status(message["status"])
        self.head = head
        self.response_headers = message.get("headers")
        if head.close or self.expect_continue:
            # An Expect: 100-continue client answered without a 100 may or may not send its
            # body now; the only safe framing for what follows is a new connection.
            self.keep_alive = False
        self.no_body = self.method == b"HEAD" or head.status in _NO_BODY_STATUSES
        if "trailers" in message and message["trailers"]:  # (cheaper than a .get() call)
            self.trailers = []  # the end of the response waits for http.response.trailers

    def _reject_status(self, status: Any) -> NoReturn:
        """The app's status can't start a response: a 500 goes out instead, and the app is told.

        Nothing of the response has been written, so the client still gets an answer (a bare
        ``HTTP/1.1 700`` would leave it guessing, a 1xx waiting).  One error line says why.
        """
        error = not_a_final_status(status, "http.response.start")
        logger.error("%s Answered 500.", error)
        self._send_server_error()
        raise error from None  # the serializer's own error adds nothing

    def _refuse(self) -> None:
        """The app's response can't be sent: nothing goes out and the connection closes."""
        self.broken = True
        self.keep_alive = False
        self.host.abort_connection()

    def _send_body(self, body: Any, more_body: Any) -> None:
        if type(body) is not bytes:
            body = bytes(body)
        if self.structured:
            self._send_piece(body, bool(more_body))
            return
        head = self.head
        if head is not None:
            self.head = None
            self._write_head_and_body(head, body, bool(more_body))
        elif self.no_body:
            pass
        elif self.chunked:
            self.sent_length += len(body)
            if not more_body and self.trailers is None:
                self.host.write(chunk(body) + LAST_CHUNK if body else LAST_CHUNK)
            elif body:
                self.host.write_part(chunk(body))
        elif body:
            self._count_sent(len(body), bool(more_body))
            if more_body or self.trailers is not None:
                self.host.write_part(body)
            else:
                self.host.write(body)
        elif not more_body:
            self._count_sent(0, False)
        if not more_body:
            self._body_ended()

    def _write_head_and_body(self, head: ResponseHead, body: bytes, more_body: bool) -> None:
        host = self.host
        parts = [status_line(head.status), host.default_lines(head), head.block]
        length = head.content_length
        if self.no_body:
            if (
                length < 0
                and body
                and not more_body
                and self.method == b"HEAD"
                and head.status != 204
            ):
                parts.append(b"content-length: %d\r\n" % len(body))  # HEAD of a known body
            body = b""
        elif length >= 0:
            self.expected_length = length
            self._count_sent(len(body), more_body)
        elif self.http_version == "1.1" and (
            head.chunked or more_body or (self.trailers is not None and self._trailers_wanted())
        ):
            self.sent_length += len(body)
            self.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
            if body:
                body = chunk(body)
            if not more_body and self.trailers is None:
                body += LAST_CHUNK
        elif not more_body and not head.chunked:
            self.sent_length += len(body)
            parts.append(b"content-length: %d\r\n" % len(body))
        else:
            self.sent_length += len(body)
            self.keep_alive = False  # HTTP/1.0 streaming: the body ends when we close
        if not head.close:
            if not self.keep_alive:
                parts.append(b"connection: close\r\n")
            elif self.http_version == "1.0":
                parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        parts.append(body)
        if more_body or self.trailers is not None:
            host.write_part(b"".join(parts))
        else:
            host.write(b"".join(parts))

    # -- the structured half of the seam (HTTP/2): the host frames what it is handed ----------

    def _send_piece(self, body: bytes, more_body: bool) -> None:
        """``_send_body`` for a structured host: the same rules, no HTTP/1.1 framing."""
        head = self.head
        if head is not None:
            self.head = None
            self._hand_head(head, body, more_body)
            return
        if self.no_body:
            body = b""
        else:
            self._count_sent(len(body), more_body)
        if body or not more_body:
            self.host.send_body(self, body, not more_body and self.trailers is None)
        if not more_body:
            self._body_ended()

    def _hand_head(self, head: ResponseHead, body: bytes, more_body: bool) -> None:
        """The response head (with the first body piece) for a structured host."""
        fields = head.fields  # the app's, checked and lowercased (the cycle is structured)
        assert fields is not None
        length = head.content_length
        if self.no_body:
            if (
                length < 0
                and body
                and not more_body
                and self.method == b"HEAD"
                and head.status != 204
            ):
                fields.append((b"content-length", b"%d" % len(body)))  # HEAD of a known body
            body = b""
        elif length >= 0:
            self.expected_length = length
            self._count_sent(len(body), more_body)
        else:
            self.sent_length += len(body)
            if not more_body:
                fields.append((b"content-length", b"%d" % len(body)))
        self.host.send_head(self, head, body, not more_body and self.trailers is None)
        if not more_body:
            self._body_ended()

    def _body_ended(self) -> None:
        if self.trailers is None:
            self._finish()
        else:
            self.state = _TRAILERS

    def _trailers_wanted(self) -> bool:
        """HTTP/1.1: the client takes trailer fields (its request's ``TE`` says so)."""
        return self.http_version == "1.1" and accepts_trailers(self.scope["headers"])

    def _add_trailers(self, message: Message) -> None:
        """An ``http.response.trailers`` message: gathered until ``more_trailers`` is false
        (HTTP/2 carries one trailer block), then sent; that ends the response.  HTTP/1.1
        (see the module docstring): the chunked body's end, with them or without."""
        headers = message.get("headers", ())
        try:
            # The same checks as the head's: a token for a name, no CR, LF or NUL in a value.
            inspect_response_headers(200, headers, _NO_DEFAULTS)
        except InvalidResponse:
            self._refuse()
            raise
        self.trailers.extend(headers)
        if not message.get("more_trailers", False):
            fields = self.trailers
            self.trailers = None
            if self.structured:
                self.host.send_trailers(self, fields)
            elif self.chunked:
                if fields and self._trailers_wanted():
                    self.host.write(trailer_section(fields))
                else:
                    self.host.write(LAST_CHUNK)
            self._finish()

    # -- the extensions: early hints, files as bodies --------------------------------------

    def _early_hint(self, message: Message) -> None:
        """``http.response.early_hint``: a 103 with the app's ``link`` fields, before the head
        (RFC 8297).  Dropped for an HTTP/1.0 client, which can't take an interim answer."""
        if self.disconnected or self.http_version == "1.0":
            return
        links = [(b"link", _as_bytes(link)) for link in message.get("links", ())]
        if not links:
            return
        try:
            hint = inspect_response_headers(103, links, _NO_DEFAULTS, self.structured)
        except InvalidResponse:
            self._refuse()
            raise
        if self.structured:
            self.host.send_head(self, hint, b"", False)
        else:
            self.host.write_part(status_line(103) + hint.block + b"\r\n")

    async def _send_file(self, message: Message, whole: bool) -> None:
        """``http.response.pathsend`` (``whole``: the file ends the response) or
        ``http.response.zerocopysend``: a file as (part of) the body."""
        if self.disconnected:
            raise ClientDisconnected("the client closed the connection")
        try:
            body = open_file_body(message, whole)
        except Exception:
            if self.head is not None:
                # Nothing of the response went out: the app's error can still be a 500, or
                # a new http.response.start (which says again whether trailers follow).
                self.head = None
                self.state = _START
                self.trailers = None
            raise
        sent = 0
        try:
            sent = await self._send_file_body(body)
        finally:
            body.done(sent)

    async def _send_file_body(self, body: FileBody) -> int:
        count = body.count
        more_body = body.more_body
        head = self.head
        if (
            head is not None
            and not more_body
            and head.content_length < 0
            and not head.chunked
            and head.status != 204  # RFC 9110 section 8.6: never a Content-Length on a 204
            and (self.method == b"HEAD" or not self.no_body)
            # Trailers the client takes need the chunked framing (RFC 9112 section 7.1.2).
            and not (self.trailers is not None and self._trailers_wanted())
        ):
            self._pin_length(head, count)  # the file's length, not chunks
        if self.no_body or count == 0:
            self._send_body(b"", more_body)
            return 0
        if not self.structured and getattr(self.host, "sendfile_ready", False):
            return await self._sendfile(head, body)
        # TLS, HTTP/2, a response held for its turn: bounded reads through the body path.
        fd = body.fd
        offset = body.offset
        remaining = count
        while remaining:
            if self.disconnected:
                raise ClientDisconnected("the client closed the connection")
            data = os.pread(fd, min(remaining, READ_CHUNK), offset)
            if not data:
                self._file_ended(count - remaining, count)
            offset += len(data)
            remaining -= len(data)
            self._send_body(data, more_body or remaining > 0)
            if self.host.write_paused and not self.disconnected:
                await self.host.drain()
            elif remaining:
                await asyncio.sleep(0)  # the host writes what it was given; others get a turn
        return count

    async def _sendfile(self, head: ResponseHead | None, body: FileBody) -> int:
        """HTTP/1.1 on a plain socket: the head, then ``os.sendfile`` (esg/http/files.py)."""
        count = body.count
        more_body = body.more_body
        if head is not None:
            self.head = None
            self._write_head_and_body(head, b"", True)  # framing decided; the head waits
        self._count_sent(count, more_body)  # a Content-Length it breaks: refused, unsent
        prefix = b"%x\r\n" % count if self.chunked else b""
        try:
            sent: int = await self.host.sendfile(prefix, body)
        except ClientDisconnected:
            self.disconnected = True
            raise
        if sent < count:
            self._file_ended(sent, count)
        if self.chunked:
            if more_body or self.trailers is not None:
                self.host.write_part(b"\r\n")  # trailers (or more pieces) end the body
            else:
                self.host.write(b"\r\n" + LAST_CHUNK)
        if not more_body:
            self._body_ended()
        return sent

    def _pin_length(self, head: ResponseHead, count: int) -> None:
        """A file that is the whole body: its size is the Content-Length."""
        head.content_length = count
        if self.structured:
            field = (b"content-length", b"%d" % count)
            fields = head.fields
            assert fields is not None  # (a structured cycle's heads list their fields)
            fields.append(field)
            self.response_headers = [*(self.response_headers or ()), field]
        else:
            head.block += b"content-length: %d\r\n" % count

    def _file_ended(self, sent: int, count: int) -> NoReturn:
        """The file is shorter than it was when the app sent it: the framing can't be kept."""
        self._refuse()
        raise RuntimeError(
            f"The file ended after {sent} of its {count} bytes (truncated while being sent);"
            " the connection was closed."
        )

    def _count_sent(self, size: int, more_body: bool) -> None:
        self.sent_length += size
        if self.expected_length < 0:
            return
        if self.sent_length > self.expected_length:
            self._refuse()
            raise RuntimeError("Response content longer than Content-Length")
        if not more_body and self.sent_length < self.expected_length:
            self._refuse()
            raise RuntimeError("Response content shorter than Content-Length")

    def _finish(self) -> None:
        self.state = _DONE
        self.response_complete = True
        self.wake_receiver()
        self.host.response_complete(self)


def _as_bytes(value: Any) -> bytes:
    """A header value the app gave as bytes (or, leniently, as latin-1 text)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("latin-1")
    return bytes(value)
