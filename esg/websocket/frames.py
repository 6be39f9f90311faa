# cython: annotation_typing=False
"""A sans-IO WebSocket frame codec for the server side (RFC 6455, RFC 7692 compression).

Compiled twin ``esg.websocket._frames_c``, typed by ``_frames_c.pxd``.

Bytes from the client go in with ``FrameReader.feed()``; whole messages and control frames come
out of ``next_event()``.  ``FrameWriter`` and ``encode_frame()`` turn outgoing messages into
bytes.  Nothing here touches a socket, asyncio or the clock, and the same file is compiled by
Cython too.

Rules of this module, in one place (each violation raises ``ProtocolError`` carrying the close
code to answer with; the reader is dead afterwards and raises the same error again):

* Every client frame is masked (RFC 6455 5.1) → else 1002.
* RSV2 and RSV3 are never set; RSV1 only on the first frame of a data message and only when
  permessage-deflate was negotiated (an ``Inflater`` was given) → else 1002.
* Opcodes 3-7 and 11-15 are reserved → 1002.
* Control frames have FIN set and at most 125 payload bytes (5.5) → else 1002.  They may arrive
  between the fragments of a data message and are returned at once.
* A continuation frame needs an open data message, a text or binary frame needs none → else 1002.
* The payload length uses the minimal encoding (5.2) and a 64-bit length has its top bit clear
  → else 1002.
* Text is valid UTF-8, checked as the bytes arrive, so a message fails on the fragment where it
  becomes invalid; a sequence left incomplete at the end of the message is invalid → 1007.
* A message larger than ``max_size`` → 1009.  For an uncompressed message this is decided from
  the frame headers (the sum of the fragments' declared lengths), before any payload is stored.
  A compressed message is inflated piece by piece as it arrives with a bound of what is left of
  ``max_size``, so a decompression bomb never allocates much more than ``max_size``; its wire
  size is also bounded (``max_size`` plus DEFLATE's worst-case expansion) from the headers.
* Corrupt compressed data → 1007 (the data isn't consistent with the message; RFC 7692 8.2.3
  names no code).
* Close frames: no payload → ``Close(1005, "")``; a 1-byte payload or a code outside
  1000-1003, 1007-1014, 3000-4999 → 1002; a reason that isn't UTF-8 → 1007.

The reader keeps reading after a Close frame: stopping (RFC 6455 5.5.1: nothing follows a
Close) is the connection's decision.

A frame's payload is consumed as it arrives (unmasked, inflated, validated, then stored), so the
input buffer holds at most one partial header or control frame besides the bytes of the latest
``feed()``.  ``buffered()`` reports those plus the message assembled so far, so the connection
can pause reading.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from esg._compiled import is_compiled, load
from esg.websocket.deflate import DecompressionError, MessageTooBig

if TYPE_CHECKING:
    from esg.websocket.deflate import Deflater, Inflater

__all__ = [
    "CLOSE_ABNORMAL",
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_NORMAL",
    "CLOSE_NO_STATUS",
    "CLOSE_POLICY",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TOO_BIG",
    "CLOSE_UNSUPPORTED",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "BytesMessage",
    "Close",
    "FrameReader",
    "FrameWriter",
    "Ping",
    "Pong",
    "ProtocolError",
    "TextMessage",
    "encode_close",
    "encode_frame",
    "valid_close_code",
]

OP_CONTINUATION = 0
OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED = 1003
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

# Private copies of the opcodes and states: the compiled build types them as C ints.
_CONT = OP_CONTINUATION
_TEXT = OP_TEXT
_BINARY = OP_BINARY
_CLOSE = OP_CLOSE
_PING = OP_PING
_PONG = OP_PONG
_HEADER = 0  # waiting for the next frame header
_PAYLOAD = 1  # inside the payload of a data frame
_CONTINUE = object()  # returned by a step that made progress but has no event yet

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
_PACK_SHORT = struct.Struct("!BB").pack
_PACK_MEDIUM = struct.Struct("!BBH").pack
_PACK_LONG = struct.Struct("!BBQ").pack
_PACK_CODE = struct.Struct("!H").pack


class ProtocolError(Exception):
    """The client broke RFC 6455: close the connection with ``code`` (1002, 1007 or 1009)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"


class TextMessage:
    """A complete text message, reassembled from its fragments and decoded."""

    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<TextMessage {len(self.data)} chars>"


class BytesMessage:
    """A complete binary message, reassembled from its fragments."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<BytesMessage {len(self.data)} bytes>"


class Ping:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"<Ping {self.payload!r}>"


class Pong:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"<Pong {self.payload!r}>"


class Close:
    """A close frame; ``code`` is 1005 when the frame carried no payload."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Close {self.code} {self.reason!r}>"


Event = TextMessage | BytesMessage | Ping | Pong | Close


# -- unmasking ---------------------------------------------------------------------------------

# The unmasking of this build: the hand-written C loop (_mask_c.pyx, 8 bytes per step) for the
# compiled reader, the big-integer XOR of mask.py for the pure one, so the test suite exercises
# both.
_unmask: Callable[[bytes, int, int, bytes], bytes] = load(
    "esg.websocket.mask", is_compiled(__name__)
).unmask


# -- reading -----------------------------------------------------------------------------------


def valid_close_code(code: int) -> bool:
    """A code a peer may put in a close frame (RFC 6455 7.4, the IANA registry)."""
    if code < 1000:
        return False
    if code < 1016:
        return code not in (1004, 1005, 1006, 1015)
    return 3000 <= code < 5000


def _parse_close(payload: bytes) -> Close:
    n = len(payload)
    if n == 0:
        return Close(CLOSE_NO_STATUS, "")
    if n == 1:
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Close frame with a 1-byte payload")
    code = payload[0] << 8 | payload[1]
    if not valid_close_code(code):
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Invalid close code")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(CLOSE_INVALID_DATA, "Close reason is not UTF-8") from None
    return Close(code, reason)


def _invalid_text() -> ProtocolError:
    return ProtocolError(CLOSE_INVALID_DATA, "Invalid UTF-8 in a text message")


def _too_big() -> ProtocolError:
    return ProtocolError(CLOSE_TOO_BIG, "Message too big")


class FrameReader:
    """Turns the bytes a client sends into messages and control frames; see the module doc."""

    # Exactly the C fields of _frames_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "_max_size",
        "_wire_limit",
        "_inflater",
        "_buf",
        "_pos",
        "_state",
        "_fin",
        "_mask",
        "_remaining",
        "_offset",
        "_message",
        "_compressed",
        "_wire_size",
        "_size",
        "_parts",
        "_decoder",
        "_error",
    )

    def __init__(self, max_size: int = 16 * 1024 * 1024, inflater: Inflater | None = None) -> None:
        max_size = min(max_size, 1 << 60)  # "unlimited" still fits the compiled build's C ints
        self._max_size = max_size
        # DEFLATE expands incompressible data by a few bytes per block at worst; 1/8 more is
        # far above any real encoder and still bounds what a compressed message may declare.
        self._wire_limit = max_size + (max_size >> 3) + 1024
        self._inflater = inflater
        self._buf = b""
        self._pos = 0  # unread input starts here
        self._state = _HEADER
        # The data frame being read (state _PAYLOAD).
        self._fin = False
        self._mask = b""
        self._remaining = 0  # payload bytes still to come
        self._offset = 0  # payload bytes already read, for the mask's phase
        # The open data message: its opcode, or 0 when no message is open.
        self._message = 0
        self._compressed = False
        self._wire_size = 0  # payload bytes on the wire so far (compressed messages)
        self._size = 0  # message bytes so far (after inflating)
        self._parts: list[Any] = []
        self._decoder: Any = None
        self._error: ProtocolError | None = None

    def feed(self, data: bytes) -> None:
        if not data or self._error is not None:
            return
        if type(data) is not bytes:
            data = bytes(data)  # a bytearray or memoryview: take a copy the caller can't change
        if self._pos >= len(self._buf):
            self._buf = data  # the usual case: nothing left over, keep the caller's bytes
        else:
            self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def buffered(self) -> int:
        """Bytes held: unread input plus the message assembled so far."""
        return len(self._buf) - self._pos + self._size

    def next_event(self) -> Event | None:
        """The next message or control frame, or None when more bytes are needed."""
        if self._error is not None:
            raise self._error
        try:
            while True:
                event = self._next_frame() if self._state == _HEADER else self._next_payload()
                if event is not _CONTINUE:
                    result: Event | None = event
                    return result
        except ProtocolError as exc:
            self._error = exc
            self._buf = b""
            self._pos = 0
            self._parts = []
            self._size = 0
            self._decoder = None
            raise

    # -- frames ----------------------------------------------------------------------------

    def _next_frame(self) -> Any:
        """Read a frame header; returns an event, _CONTINUE, or None for "need more bytes"."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 2:
            return None
        b0 = buf[pos]
        b1 = buf[pos + 1]
        opcode = b0 & 0x0F
        self._check_first_bytes(b0, b1, opcode)
        length = b1 & 0x7F
        if length < 126:
            head = 6
        elif length == 126:
            if avail < 8:
                return None
            length = buf[pos + 2] << 8 | buf[pos + 3]
            if length < 126:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Payload length not minimally encoded")
            head = 8
        else:
            if avail < 14:
                return None
            if buf[pos + 2] & 0x80:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Payload length has its top bit set")
            length = 0
            for i in range(pos + 2, pos + 10):
                length = length << 8 | buf[i]
            if length < 65536:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Payload length not minimally encoded")
            head = 14
        if avail < head:
            return None
        mask = buf[pos + head - 4 : pos + head]
        if opcode >= _CLOSE:
            if avail < head + length:
                return None  # control frames are small: wait until the whole frame is here
            self._pos = pos + head + length
            return _control_event(opcode, _unmask(buf, pos + head, length, mask))
        # Subtract rather than add: a declared length near 2**63 must not overflow a C integer.
        compressed = bool(b0 & 0x40) if opcode != _CONT else self._compressed
        if compressed:
            if length > self._wire_limit - self._wire_size:
                raise _too_big()
        elif length > self._max_size - self._size:
            raise _too_big()
        if self._message == 0 and (b0 & 0xC0) == 0x80 and avail >= head + length:
            # The hot path: a whole, unfragmented, uncompressed message is in the buffer.
            self._pos = pos + head + length
            payload = _unmask(buf, pos + head, length, mask)
            if opcode == _TEXT:
                try:
                    return TextMessage(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    raise _invalid_text() from None
            return BytesMessage(payload)
        if opcode != _CONT:
            self._start_message(opcode, compressed)
        self._pos = pos + head
        self._state = _PAYLOAD
        self._fin = bool(b0 & 0x80)
        self._mask = mask
        self._remaining = length
        self._offset = 0
        self._wire_size += length
        return _CONTINUE

    def _check_first_bytes(self, b0: int, b1: int, opcode: int) -> None:
        if b0 & 0x70:
            if b0 & 0x30:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Reserved bit RSV2 or RSV3 set")
            if self._inflater is None:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "RSV1 set without compression")
            if opcode != _TEXT and opcode != _BINARY:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "RSV1 set outside a message's start")
        if opcode >= _CLOSE:
            if opcode > _PONG:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Reserved opcode")
            if not b0 & 0x80:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Fragmented control frame")
            if b1 & 0x7F > 125:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Control frame payload over 125 bytes")
        elif opcode > _BINARY:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Reserved opcode")
        elif opcode == _CONT:
            if self._message == 0:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Continuation frame without a message")
        elif self._message != 0:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "New message inside a fragmented message")
        if not b1 & 0x80:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "Unmasked client frame")

    def _next_payload(self) -> Any:
        """Consume what has arrived of a data frame's payload."""
        remaining = self._remaining
        avail = len(self._buf) - self._pos
        n = remaining if remaining <= avail else avail
        if n:
            mask = self._mask
            phase = self._offset & 3
            if phase:
                mask = mask[phase:] + mask[:phase]
            chunk = _unmask(self._buf, self._pos, n, mask)
            self._pos += n
            self._offset += n
            self._remaining = remaining = remaining - n
            self._add(chunk)
        if remaining:
            return None
        self._state = _HEADER
        if not self._fin:
            return _CONTINUE
        return self._finish_message()

    # -- messages --------------------------------------------------------------------------

    def _start_message(self, opcode: int, compressed: bool) -> None:
        self._message = opcode
        self._compressed = compressed
        self._wire_size = 0
        self._size = 0
        self._parts = []
        self._decoder = _Utf8Decoder("strict") if opcode == _TEXT else None

    def _add(self, chunk: bytes) -> None:
        if self._compressed:
            chunk = self._inflate(chunk, False)
        self._store(chunk)

    def _store(self, chunk: bytes) -> None:
        if chunk:
            self._size += len(chunk)
            if self._decoder is not None:
                self._parts.append(self._decode(chunk, False))
            else:
                self._parts.append(chunk)

    def _inflate(self, chunk: bytes, final: bool) -> bytes:
        inflater = self._inflater
        assert inflater is not None
        limit = self._max_size - self._size
        try:
            if final:
                return inflater.finish(limit)
            return inflater.decompress(chunk, limit)
        except MessageTooBig:
            raise _too_big() from None
        except DecompressionError:
            raise ProtocolError(CLOSE_INVALID_DATA, "Invalid compressed data") from None

    def _decode(self, chunk: bytes, final: bool) -> str:
        decoder = self._decoder
        try:
            text: str = decoder.decode(chunk, final)
        except UnicodeDecodeError:
            raise _invalid_text() from None
        if not final:
            # CPython's incremental decoder holds back ED A0..ED BF (a UTF-16 surrogate) until
            # the third byte arrives; it is invalid as soon as the second byte is seen.
            pending: bytes = decoder.getstate()[0]
            if len(pending) > 1 and pending[0] == 0xED and pending[1] > 0x9F:
                raise _invalid_text()
        return text

    def _finish_message(self) -> Event:
        if self._compressed:
            self._store(self._inflate(b"", True))
        parts = self._parts
        self._parts = []
        self._message = 0
        self._size = 0
        self._wire_size = 0
        if self._decoder is not None:
            last = self._decode(b"", True)
            self._decoder = None
            if last:
                parts.append(last)
            return TextMessage(parts[0] if len(parts) == 1 else "".join(parts))
        return BytesMessage(parts[0] if len(parts) == 1 else b"".join(parts))


def _control_event(opcode: int, payload: bytes) -> Event:
    if opcode == _PING:
        return Ping(payload)
    if opcode == _PONG:
        return Pong(payload)
    return _parse_close(payload)


# -- writing -----------------------------------------------------------------------------------


def encode_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """One server frame (servers never mask).  Control frames must be whole and ≤ 125 bytes."""
    n = len(payload)
    if opcode & ~0x0F or (opcode >= _CLOSE and (n > 125 or not fin)):
        raise ValueError("Invalid opcode or control frame")
    b0 = opcode
    if fin:
        b0 |= 0x80
    if rsv1:
        b0 |= 0x40
    if n < 126:
        return _PACK_SHORT(b0, n) + payload
    if n < 65536:
        return _PACK_MEDIUM(b0, 126, n) + payload
    return _PACK_LONG(b0, 127, n) + payload


def encode_close(code: int | None = CLOSE_NORMAL, reason: str = "") -> bytes:
    """A whole close frame; code None or 1005 sends no payload (and so no reason).

    A reason too long for a control frame is cut to 123 bytes at a UTF-8 character boundary.
    Codes a peer would reject (``valid_close_code``) raise ValueError.
    """
    if code is None or code == CLOSE_NO_STATUS:
        return b"\x88\x00"
    if not valid_close_code(code):
        raise ValueError(f"{code} can't be sent in a close frame")
    data = reason.encode("utf-8")
    if len(data) > 123:
        data = data[:123].decode("utf-8", "ignore").encode("utf-8")
    return encode_frame(_CLOSE, _PACK_CODE(code) + data)


class FrameWriter:
    """Builds server frames; compresses data messages when a ``Deflater`` was negotiated.

    Messages shorter than ``min_compress_size`` bytes go out uncompressed (RSV1 clear), which
    RFC 7692 section 6 allows: compressing a few bytes costs more CPU than it saves on the wire.
    """

    # Exactly the C fields of _frames_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "_deflater",
        "_min_compress_size",
    )

    def __init__(self, deflater: Deflater | None = None, *, min_compress_size: int = 32) -> None:
        self._deflater = deflater
        self._min_compress_size = min_compress_size

    def text(self, data: str) -> bytes:
        return self._message(_TEXT, data.encode("utf-8"))

    def binary(self, data: bytes) -> bytes:
        return self._message(_BINARY, data)

    def ping(self, payload: bytes = b"") -> bytes:
        return encode_frame(_PING, payload)

    def pong(self, payload: bytes = b"") -> bytes:
        return encode_frame(_PONG, payload)

    def close(self, code: int | None = CLOSE_NORMAL, reason: str = "") -> bytes:
        return encode_close(code, reason)

    def _message(self, opcode: int, payload: bytes) -> bytes:
        if type(payload) is not bytes:
            payload = bytes(payload)  # a bytearray or memoryview from the app
        deflater = self._deflater
        if deflater is None or len(payload) < self._min_compress_size:
            return encode_frame(opcode, payload)
        return encode_frame(opcode, deflater.compress(payload), True, True)
