"""A sans-IO, strict HTTP/1.1 request parser (RFC 9110 / RFC 9112).

Compiled twin ``esg.http._parser_c``, typed by ``_parser_c.pxd``.

Bytes go in with ``feed()``; events come out of ``next_event()``.  Nothing here touches a socket,
asyncio or the clock, so the parser is tested by feeding it byte strings — whole, one byte at a
time and split at random points — and the same file is compiled by Cython too.

Rules of this module, in one place:

* Every request yields exactly ``Request``, zero or more ``Data``, then ``EndOfMessage``.  After
  ``EndOfMessage`` the parser pauses (``next_event()`` returns None) until the connection calls
  ``start_next_request()``, so pipelined bytes wait in the buffer while a response is written.
* Anything malformed raises ``ParseError`` carrying the status to answer with; the parser is dead
  afterwards and the connection must be closed after that answer.  Nothing malformed is ever
  returned as an event.
* Limits (all checked while bytes trickle in, never only once a line is complete):
  request line > ``limit_request_line`` → 414; head > ``limit_request_head`` → 431; more than
  ``limit_request_fields`` fields → 431; one field (name + value) > ``limit_request_field_size``
  → 431; Content-Length or chunked data beyond ``limit_request_body`` → 413; chunk extensions
  beyond ``CHUNK_EXTENSIONS_LIMIT`` bytes per body → 400.
* Lines end in CRLF only: a bare CR or a bare LF anywhere in a head, size line or trailer is 400.
* Framing: Content-Length is ``1*DIGIT`` (identical repeats merged); Transfer-Encoding must end
  in ``chunked`` (400) and esg decodes no other coding (501); both together → 400; a
  Transfer-Encoding in HTTP/1.0 → 400.  Framing never falls back from one to the other.
  A chunk size has at most 15 significant hex digits (400 above), so no size or total
  overflows.
* The verdict never depends on how the bytes were cut: a limit is checked the same way on a
  line that is still arriving (a final CR may start its CRLF) as on a complete one.
* Body bytes are copied as little as possible: a received ``bytes`` object that is all body
  becomes the ``Data`` as it is, without a copy; a large read that starts with a head has
  only its head copied into the buffer (see ``feed()``).
"""

from __future__ import annotations

import re

from esg._compiled import is_compiled, load
from esg.http.errors import ParseError
from esg.http.headscan import FIELD_BLOCK, FIELD_PARTS, TOKEN

# The head scanner of this build: the hand-written C pass for the compiled parser, regular
# expressions for the pure one (esg/http/headscan.py explains the contract they share).
_scan_head = load("esg.http.headscan", is_compiled(__name__)).scan_head

__all__ = [
    "CHUNK_EXTENSIONS_LIMIT",
    "Data",
    "EndOfMessage",
    "ParseError",
    "Request",
    "RequestParser",
]

CHUNK_EXTENSIONS_LIMIT = 16384

# Parser states.
_HEAD = 0
_BODY_LENGTH = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_CHUNK_DATA_END = 4
_TRAILERS = 5
_END = 6  # the body is complete; the next call returns EndOfMessage
_PAUSED = 7  # EndOfMessage was returned; waiting for start_next_request()

_DIGITS = re.compile(rb"[0-9]{1,18}")
_HOST = re.compile(
    rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"  # reg-name or IPv4
    rb"|\[[0-9A-Fa-f:.]+\]"  # IPv6 literal
    rb"|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"  # IPvFuture
)
_PORT = re.compile(rb"[0-9]*")
_ABSOLUTE_FORM = re.compile(rb"([Hh][Tt][Tt][Pp][Ss]?)://([^/?#]*)(.*)")
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[%s]+(?:[ \t]*=[ \t]*(?:[%s]+|%s))?)*)"
    % (_TCHAR, _TCHAR, _QUOTED)
)
_SUPPORTED_CODINGS = frozenset([b"chunked"])
# A read at least this large is kept as it came when it is all body or starts a head (see
# feed()): smaller ones (plaintext GETs, small POSTs) cost less copied than kept.
_LARGE_READ = 16384


class Request:
    """A request head.  ``headers`` carry lowercased names and values as sent (OWS trimmed)."""

    # Exactly the C fields of _parser_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "method",
        "target",
        "raw_path",
        "query_string",
        "http_version",
        "headers",
        "keep_alive",
        "expect_continue",
        "content_length",
        "chunked",
        "upgrade",
        "forwarded",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        raw_path: bytes,
        query_string: bytes,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.method = method
        self.target = target
        self.raw_path = raw_path
        self.query_string = query_string
        self.http_version = http_version
        self.headers = headers
        self.keep_alive = True
        self.expect_continue = False
        self.content_length: int | None = None
        self.chunked = False
        self.upgrade: bytes | None = None
        self.forwarded = False  # some field name starts with x-forwarded-

    def __repr__(self) -> str:
        return f"<Request {self.method!r} {self.target!r} HTTP/{self.http_version}>"


class Data:
    """A piece of a request body."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<Data {len(self.data)} bytes>"


class EndOfMessage:
    """The request body is complete (trailers, if any, were validated and dropped)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<EndOfMessage>"


END_OF_MESSAGE = EndOfMessage()

Event = Request | Data | EndOfMessage


class RequestParser:
    """Turns the bytes of one connection into request events; see the module docstring."""

    # Exactly the C fields of _parser_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "_limit_line",
        "_limit_fields",
        "_limit_field_size",
        "_limit_head",
        "_limit_body",
        "_buf",
        "_pending",
        "_pending_size",
        "_state",
        "_scanned",
        "_line_seen",
        "_remaining",
        "_body_size",
        "_extension_bytes",
        "_eof",
        "_error",
    )

    def __init__(
        self,
        *,
        limit_request_line: int = 8190,
        limit_request_fields: int = 100,
        limit_request_field_size: int = 8190,
        limit_request_head: int = 65536,
        limit_request_body: int | None = None,
    ) -> None:
        self._limit_line = limit_request_line
        self._limit_fields = limit_request_fields
        self._limit_field_size = limit_request_field_size
        self._limit_head = limit_request_head
        self._limit_body = -1 if limit_request_body is None else limit_request_body
        self._buf = bytearray()
        # Received bytes objects kept whole (see feed()); non-empty only while _buf is empty
        # and a head (_HEAD) or a body's data (_BODY_LENGTH, _CHUNK_DATA) is being read.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._state = _HEAD
        self._scanned = 0  # head bytes already checked for terminators and bare CR/LF
        self._line_seen = False  # the request line's CRLF has arrived
        self._remaining = 0  # body bytes left (Content-Length) or left in the current chunk
        self._body_size = 0  # chunked body bytes so far, for limit_request_body
        self._extension_bytes = 0
        self._eof = False
        self._error: ParseError | None = None

    # -- feeding -------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if len(data) < _LARGE_READ and not self._pending:  # most reads: as they always went
            if data and self._error is None:
                self._buf += data
            return
        if not data or self._error is not None:
            return
        if not self._pending and (
            self._buf or self._state not in (_HEAD, _BODY_LENGTH, _CHUNK_DATA)
        ):
            self._buf += data
            return
        # A large read with nothing before it, all body or starting with a head: kept as the
        # object it is instead of copied into _buf, so that a read that is all body reaches
        # the app as the very bytes the loop gave us (large uploads would otherwise be copied
        # in here and out again), and a head's read has only its head copied
        # (_head_from_read).  Once one read waits here, the reads after it must too.
        if type(data) is not bytes:
            data = bytes(data)  # a caller's bytearray or memoryview may change later
        self._pending.append(data)
        self._pending_size += len(data)

    def feed_eof(self) -> None:
        self._eof = True

    def buffered(self) -> int:
        """Bytes received but not yet turned into events."""
        return len(self._buf) + self._pending_size

    def take_buffered(self) -> bytes:
        """Hand over the bytes not parsed yet: the connection is switching protocols."""
        error = self._error
        if error is not None:
            # HTTP/2's preface, refused as a request line: the new protocol keeps this parser
            # for the connection's life, and the refusal's traceback would pin the frames of
            # the read that failed (and the bytes they held) as long.
            error.__traceback__ = None
        pending = self._pending
        data = bytes(self._buf)
        if pending:  # (_buf is empty then)
            data = b"".join(pending)
            pending.clear()
            self._pending_size = 0
        self._buf.clear()
        return data

    def body_complete(self) -> bool:
        """The current body has been returned whole; ``EndOfMessage`` is next."""
        return self._state == _END

    def paused(self) -> bool:
        """``EndOfMessage`` was returned and ``start_next_request()`` wasn't called yet."""
        return self._state == _PAUSED

    def start_next_request(self) -> None:
        """Leave the pause after ``EndOfMessage``: the next event is the next request's head."""
        if self._state == _PAUSED:
            self._state = _HEAD
            self._scanned = 0
            self._line_seen = False

    # -- events --------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed (or while paused)."""
        if self._error is not None:
            raise self._error
        try:
            state = self._state
            if state == _HEAD:
                return self._next_head()
            if state == _BODY_LENGTH:
                return self._next_length_data()
            if state == _END:
                self._state = _PAUSED
                return END_OF_MESSAGE
            if state == _PAUSED:
                return None
            return self._next_chunked()
        except ParseError as exc:
            self._error = exc
            raise

    # -- the head ------------------------------------------------------------------------

    def _next_head(self) -> Request | None:
        if self._pending:
            return self._head_from_read()
        buf = self._buf
        scanned = self._scanned
        # (Tests inlined, no max(): each call is a cost on every request in the pure build.)
        if scanned == 0 and buf and buf[0] == 13:
            self._skip_leading_empty_lines()
            if buf == b"\r":
                return None  # maybe the start of another empty line: wait for its LF
        end = buf.find(b"\r\n\r\n", scanned - 3 if scanned > 3 else 0)
        if end < 0:
            self._check_partial_head()
            self._scanned = len(buf)
            return None
        if end + 4 > self._limit_head:
            raise ParseError(431, "Request header section too large", "header_too_large")
        request = self._parse_head(buf, end)
        del buf[: end + 4]
        self._scanned = 0
        self._start_body(request)
        return request

    def _head_from_read(self) -> Request | None:
        """The head at the start of a large read that feed() kept as it came (``_buf`` is empty).

        When the head is whole in that read, only the head is copied into ``_buf`` and the
        bytes after it are sliced once: a Content-Length body's first bytes then reach the app
        with one copy, not two.  Any other case (head incomplete or too large, empty lines
        first) takes the usual path with everything moved into ``_buf``, so the verdict is the
        same either way.
        """
        chunk = self._pending[0]
        end = chunk.find(b"\r\n\r\n")
        if end < 0 or end + 4 > self._limit_head or chunk[0] == 13:
            self._spill(0, 0)
            return self._next_head()
        buf = self._buf
        size = end + 4
        buf += memoryview(chunk)[:size]
        request = self._parse_head(buf, end)
        buf.clear()
        self._scanned = 0
        self._start_body(request)
        if self._state != _BODY_LENGTH:
            self._spill(0, size)  # chunk-size lines and next requests are parsed from _buf
        elif size == len(chunk):
            del self._pending[0]
            self._pending_size -= size
        else:
            self._pending[0] = chunk[size:]
            self._pending_size -= size
        return request

    def _skip_leading_empty_lines(self) -> None:
        # RFC 9112 section 2.2: a server SHOULD ignore empty lines before the request line
        # (some clients send an extra CRLF after a POST body).
        buf = self._buf
        if not buf or buf[0] != 13:
            return
        skip = 0
        while buf[skip : skip + 2] == b"\r\n":
            skip += 2
        if skip:
            del buf[:skip]

    def _check_partial_head(self) -> None:
        """Reject what can already be rejected before the whole head has arrived."""
        buf = self._buf
        start = max(0, self._scanned - 1)
        _reject_bare_line_ends(buf, start)
        if not self._line_seen:
            line_end = buf.find(b"\r\n", start)
            if line_end >= 0:
                self._line_seen = True
                if line_end > self._limit_line:
                    # The same verdict as below, when the line arrived whole in one read.
                    raise ParseError(414, "Request line too long", "request_line_too_long")
            elif _unfinished_line(buf) > self._limit_line:
                raise ParseError(414, "Request line too long", "request_line_too_long")
        if len(buf) > self._limit_head:
            raise ParseError(431, "Request header section too large", "header_too_large")

    def _parse_head(self, buf: bytearray, end: int) -> Request:
        method, target, minor, fields, forwarded = _scan_head(
            buf, end, self._limit_line, self._limit_fields, self._limit_field_size
        )
        request = Request(method, target, b"", b"", "1.1" if minor == 1 else "1.0", fields)
        request.forwarded = forwarded
        authority = self._parse_target(request)
        _apply_semantics(request, self._limit_body)
        if authority is not None:
            # RFC 9112 section 3.2.2: the target's authority replaces the Host field's value.
            request.headers = [
                (name, authority if name == b"host" else value) for name, value in request.headers
            ]
        return request

    def _parse_target(self, request: Request) -> bytes | None:
        """Split the target; returns the authority of an absolute-form target."""
        target = request.target
        if target[0] == 47:  # "/": origin-form, the usual case
            path, _, query = target.partition(b"?")
            request.raw_path = path
            request.query_string = query
            return None
        if request.method == b"CONNECT":
            raise ParseError(501, "CONNECT is not supported", "not_implemented")
        if target == b"*":
            if request.method != b"OPTIONS":
                raise ParseError(400, "Asterisk-form target outside OPTIONS", "bad_request_line")
            request.raw_path = b"*"
            return None
        match = _ABSOLUTE_FORM.fullmatch(target)
        if match is None:
            raise ParseError(400, "Invalid request target", "bad_request_line")
        authority, rest = match.group(2), match.group(3)
        if not authority or not _valid_host(authority):
            raise ParseError(400, "Invalid authority in absolute-form target", "bad_request_line")
        if rest[:1] not in (b"", b"/", b"?"):
            raise ParseError(400, "Invalid request target", "bad_request_line")
        path, _, query = rest.partition(b"?")
        request.raw_path = path or b"/"
        request.query_string = query
        return authority

    # -- bodies --------------------------------------------------------------------------

    def _start_body(self, request: Request) -> None:
        if request.chunked:
            self._state = _CHUNK_SIZE
            self._body_size = 0
            self._extension_bytes = 0
        elif request.content_length:
            self._state = _BODY_LENGTH
            self._remaining = request.content_length
        else:
            self._state = _END

    def _next_length_data(self) -> Data | None:
        remaining = self._remaining
        if self._pending:
            data = self._take_pending(remaining)
        else:
            buf = self._buf
            available = len(buf)
            if available == 0:
                return None
            if available <= remaining:
                data = bytes(buf)
                buf.clear()
            else:
                data = _take_front(buf, remaining)
        remaining -= len(data)
        self._remaining = remaining
        if remaining == 0:
            self._state = _END
        return Data(data)

    def _take_pending(self, limit: int) -> bytes:
        """Up to ``limit`` body bytes off the front of ``_pending`` (``_buf`` is empty then).

        Everything pending goes into one piece, as bytes from ``_buf`` always did (the same
        events whatever the reads): one chunk is returned as it came (no copy), several are
        joined once.  Usually there is one: the connection stops reading at 64 KiB unread and
        a read is up to 256 KiB.  One ``Data`` per chunk would save the join but hand apps
        more, smaller messages.  Measured (callgrind, 1 MiB POST in 16 KiB reads, four per
        loop turn, an app joining its parts once): per-chunk Data costs 17% fewer
        instructions per request compiled (3.69M vs 4.46M), 11% pure; but an app that
        collects with ``body += data`` copies its whole body so far per message, and four
        times the messages would copy an estimated 24 MiB more per MiB: joined it is.
        When the body (or chunk) ends inside the pending bytes, what follows it is moved into
        ``_buf`` for the head and chunk-size parsing, so ``_pending`` is then empty.
        """
        pending = self._pending
        if self._pending_size <= limit:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            self._pending_size = 0
            return data
        # The body ends inside the chunk at `index`: whole chunks before it, a slice of it.
        taken = 0
        index = 0
        while taken + len(pending[index]) <= limit:
            taken += len(pending[index])
            index += 1
        chunk = pending[index]
        cut = limit - taken
        if index == 0:
            data = chunk[:cut]
        else:
            parts: list[bytes | memoryview] = [*pending[:index], memoryview(chunk)[:cut]]
            data = b"".join(parts)
        self._spill(index, cut)
        return data

    def _spill(self, index: int, start: int) -> None:
        """Move the pending reads into ``_buf`` (empty), from byte ``start`` of the one at
        ``index``: what follows a body or a head is parsed there."""
        pending = self._pending
        buf = self._buf
        first = pending[index]
        if start < len(first):
            buf += memoryview(first)[start:] if start else first
        for rest in pending[index + 1 :]:
            buf += rest
        pending.clear()
        self._pending_size = 0

    def _next_chunked(self) -> Data | EndOfMessage | None:
        # Collect every chunk already buffered into one Data so a flood of tiny chunks costs one
        # event, not one per chunk.
        pieces: list[bytes] = []
        while True:
            state = self._state
            if state == _CHUNK_SIZE:
                progressed = self._read_chunk_size()
            elif state == _CHUNK_DATA:
                progressed = self._read_chunk_data(pieces)
            elif state == _CHUNK_DATA_END:
                progressed = self._read_chunk_data_end()
            elif state == _TRAILERS:
                progressed = self._read_trailers()
            else:  # _END
                break
            if not progressed:
                break
        if pieces:
            return Data(b"".join(pieces))
        if self._state == _END:
            self._state = _PAUSED
            return END_OF_MESSAGE
        return None

    def _read_chunk_size(self) -> bool:
        buf = self._buf
        line_end = buf.find(b"\r\n")
        if line_end < 0:
            _reject_bare_line_ends(buf, 0)
            if _unfinished_line(buf) > CHUNK_EXTENSIONS_LIMIT + 64:
                raise ParseError(400, "Chunk size line too long", "bad_chunked_body")
            return False
        if line_end > CHUNK_EXTENSIONS_LIMIT + 64:
            # The same verdict as above, when the whole line arrived in one read.
            raise ParseError(400, "Chunk size line too long", "bad_chunked_body")
        line = bytes(buf[:line_end])
        del buf[: line_end + 2]
        match = _CHUNK_SIZE_LINE.fullmatch(line)
        if match is None:
            raise ParseError(400, "Invalid chunk size line", "bad_chunked_body")
        digits = match.group(1).lstrip(b"0")
        if len(digits) > 15:
            # Under 2**60, as Content-Length's 18 digits are under 10**18: the size and the
            # body's running total fit the compiled build's signed 64-bit counters.
            raise ParseError(400, "Chunk size too large", "bad_chunked_body")
        self._extension_bytes += len(match.group(2))
        if self._extension_bytes > CHUNK_EXTENSIONS_LIMIT:
            raise ParseError(400, "Chunk extensions too long", "bad_chunked_body")
        size = int(digits, 16) if digits else 0
        if size == 0:
            self._state = _TRAILERS
            self._scanned = 0
            return True
        self._body_size += size
        if 0 <= self._limit_body < self._body_size:
            raise ParseError(413, "Request body too large", "body_too_large")
        self._remaining = size
        self._state = _CHUNK_DATA
        return True

    def _read_chunk_data(self, pieces: list[bytes]) -> bool:
        remaining = self._remaining
        if self._pending:
            data = self._take_pending(remaining)
        else:
            buf = self._buf
            if not buf:
                return False
            if len(buf) <= remaining:
                data = bytes(buf)
                buf.clear()
            else:
                data = _take_front(buf, remaining)
        pieces.append(data)
        self._remaining = remaining - len(data)
        if self._remaining == 0:
            self._state = _CHUNK_DATA_END
        return True

    def _read_chunk_data_end(self) -> bool:
        buf = self._buf
        if len(buf) < 2:
            if buf and buf[0] != 13:
                raise ParseError(400, "Chunk data not followed by CRLF", "bad_chunked_body")
            return False
        if buf[0] != 13 or buf[1] != 10:
            raise ParseError(400, "Chunk data not followed by CRLF", "bad_chunked_body")
        del buf[:2]
        self._state = _CHUNK_SIZE
        return True

    def _read_trailers(self) -> bool:
        buf = self._buf
        if buf[:2] == b"\r\n":
            del buf[:2]
            self._state = _END
            return True
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            _reject_bare_line_ends(buf, max(0, self._scanned - 1))
            # The fields so far, counted as _validate_trailers will: without the final CRLF,
            # whose CR may be the last byte here.
            if len(buf) - 1 > self._limit_head:
                raise ParseError(431, "Trailer section too large", "header_too_large")
            self._scanned = len(buf)
            # A lone CR is a valid start of the final CRLF; anything else needs more bytes.
            return False
        block = bytes(buf[: end + 2])
        del buf[: end + 4]
        self._scanned = 0
        if block.count(b"\n") != block.count(b"\r\n") or block.count(b"\r") != block.count(b"\r\n"):
            raise ParseError(400, "Bare CR or LF in trailers", "bad_line_ending")
        self._validate_trailers(block)
        self._state = _END
        return True

    def _validate_trailers(self, block: bytes) -> None:
        if len(block) > self._limit_head:
            raise ParseError(431, "Trailer section too large", "header_too_large")
        if FIELD_BLOCK.fullmatch(block) is None:
            raise ParseError(400, "Invalid trailer field", "bad_chunked_body")
        pairs = FIELD_PARTS.findall(block)
        if len(pairs) > self._limit_fields:
            raise ParseError(431, "Too many trailer fields", "header_too_large")
        for name, value in pairs:
            if len(name) + len(value) > self._limit_field_size:
                raise ParseError(431, "Trailer field too large", "header_too_large")


# -- helpers (module level so both builds share them without attribute lookups) -----------


def _take_front(buf: bytearray, size: int) -> bytes:
    """The first ``size`` bytes of ``buf``, removed from it: one copy (``bytes(buf[:size])``
    would copy twice, through a bytearray slice)."""
    with memoryview(buf) as view:
        data = bytes(view[:size])
    del buf[:size]  # the views are released: the bytearray may shrink
    return data


def _unfinished_line(buf: bytearray) -> int:
    """The length of a line whose CRLF hasn't arrived: a final CR may be the start of it."""
    size = len(buf)
    if size and buf[size - 1] == 13:
        return size - 1
    return size


def _reject_bare_line_ends(buf: bytearray, start: int) -> None:
    """400 for a LF not preceded by CR, or a CR followed by anything but LF, from ``start``."""
    index = buf.find(b"\n", start)
    while index >= 0:
        if index == 0 or buf[index - 1] != 13:
            raise ParseError(400, "Bare LF in the request head", "bad_line_ending")
        index = buf.find(b"\n", index + 1)
    last = len(buf) - 1
    index = buf.find(b"\r", start)
    while index >= 0:
        if index < last and buf[index + 1] != 10:
            raise ParseError(400, "Bare CR in the request head", "bad_line_ending")
        index = buf.find(b"\r", index + 1)


def _valid_host(value: bytes) -> bool:
    host, colon, port = value.rpartition(b":") if not value.endswith(b"]") else (value, b"", b"")
    if not colon:
        host, port = value, b""
    elif host.startswith(b"[") and not host.endswith(b"]"):
        host, port = value, b""  # a colon inside an IPv6 literal
    return _HOST.fullmatch(host) is not None and _PORT.fullmatch(port) is not None


_SEMANTIC_NAMES = frozenset(
    [b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"]
)
# Clients send the same Host on every request: remember the valid ones (bounded, so hostile
# clients can't grow it) instead of running two regular expressions per request.
_valid_hosts: set[bytes] = set()
_VALID_HOSTS_LIMIT = 1024


def _valid_host_field(value: bytes) -> None:
    if not _valid_host(value):
        raise ParseError(400, "Invalid Host header", "bad_header")
    if len(_valid_hosts) < _VALID_HOSTS_LIMIT and len(value) <= 256:
        _valid_hosts.add(value)


def _parse_content_length(values: list[bytes]) -> int:
    lengths = set()
    for value in values:
        for member in value.split(b","):
            member = member.strip(b" \t")
            if _DIGITS.fullmatch(member) is None:
                raise ParseError(400, "Invalid Content-Length", "bad_framing")
            lengths.add(int(member))
    if len(lengths) != 1:
        raise ParseError(400, "Conflicting Content-Length values", "bad_framing")
    return lengths.pop()


def _check_transfer_coding(values: list[bytes]) -> None:
    codings = []
    for value in values:
        for member in value.split(b","):
            coding = member.strip(b" \t").lower()
            if TOKEN.fullmatch(coding) is None:
                raise ParseError(400, "Invalid Transfer-Encoding", "bad_framing")
            codings.append(coding)
    if codings[-1] != b"chunked":
        raise ParseError(400, "Transfer-Encoding must end with chunked", "bad_framing")
    if codings.count(b"chunked") > 1:
        raise ParseError(400, "Transfer-Encoding chunked applied twice", "bad_framing")
    for coding in codings:
        if coding not in _SUPPORTED_CODINGS:
            raise ParseError(501, "Transfer coding not implemented", "not_implemented")


def _apply_semantics(request: Request, limit_body: int) -> None:
    """Read the fields that decide framing, keep-alive and expectations."""
    hosts = 0
    lengths: list[bytes] = []
    codings: list[bytes] = []
    connection: list[bytes] = []
    for name, value in request.headers:
        if name not in _SEMANTIC_NAMES:
            continue  # most fields: one set lookup, no comparisons
        if name == b"host":
            hosts += 1
            if value not in _valid_hosts:
                _valid_host_field(value)
        elif name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            codings.append(value)
        elif name == b"connection":
            connection.append(value.lower())
        elif name == b"expect":
            _check_expectation(request, value)
        else:
            request.upgrade = value
    http11 = request.http_version == "1.1"
    if hosts > 1 or (http11 and hosts == 0):
        raise ParseError(400, "HTTP/1.1 requests need exactly one Host header", "bad_header")
    if codings:
        if lengths:
            raise ParseError(400, "Both Content-Length and Transfer-Encoding", "bad_framing")
        if not http11:
            raise ParseError(400, "Transfer-Encoding in an HTTP/1.0 request", "bad_framing")
        _check_transfer_coding(codings)
        request.chunked = True
    elif lengths:
        length = _parse_content_length(lengths)
        if 0 <= limit_body < length:
            raise ParseError(413, "Request body too large", "body_too_large")
        request.content_length = length
    if connection:
        tokens = {token.strip(b" \t") for value in connection for token in value.split(b",")}
        request.keep_alive = b"close" not in tokens and (http11 or b"keep-alive" in tokens)
    else:
        request.keep_alive = http11


def _check_expectation(request: Request, value: bytes) -> None:
    if value.lower() != b"100-continue":
        raise ParseError(417, "Unsupported expectation", "expectation_failed")
    # RFC 9110 section 10.1.1: an HTTP/1.0 client's 100-continue is ignored.
    request.expect_continue = request.http_version == "1.1"
