"""Engines that frame a connection with a library: ``--ws websockets`` and ``--ws wsproto``.

Both implement ``esg.websocket.engine.Engine`` and behave like esg's own codec at that surface:
one event per whole message (the adapters reassemble fragments), control frames as they arrive,
the same close code in every ``ProtocolError`` (1002, 1007, 1009), and server frames compressed
with the permessage-deflate parameters esg negotiated.  esg did the handshake; a library only
frames the OPEN connection.  Each library is imported in its engine's constructor, so esg runs
without either installed.

What each library would do on its own and the adapters undo:

* Both answer pings and close frames, and write a close frame when they fail the connection.
  The esg session does all of that itself, so the adapters never send what a library produced:
  ``websockets`` queues it (``data_to_send()`` is drained and dropped), wsproto's
  ``FrameProtocol`` only produces bytes on request.
* ``websockets`` yields frames and never decodes text; the adapter decodes each message
  incrementally with esg's rules (a message fails on the fragment where it becomes invalid).
* ``websockets`` bounds a compressed message's wire size by ``max_size`` itself; esg allows
  DEFLATE's worst-case expansion on top, so the library gets that larger bound and the adapter
  enforces ``max_size`` on the inflated size.  ``websockets`` treats a close frame inside a
  fragmented message as an error (RFC 6455 5.4 allows control frames there); the adapter
  returns the close frame it had already parsed.
* wsproto has no size limit at all and inflates each chunk without a bound; the adapter hooks a
  wsproto ``Extension`` in front of its ``PerMessageDeflate`` that judges a message's size from
  the frame headers (as esg does) and counts inflated bytes as they come out, and feeds wsproto
  in slices so one ``decompress()`` call stays small.  That hook also keeps the compression state
  of a fragmented message across a control frame between its fragments, which wsproto's
  ``PerMessageDeflate`` forgets (it would hand the rest of the message out still compressed).
"""

from __future__ import annotations

import codecs
import functools
import zlib
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from esg._compiled import load

if TYPE_CHECKING:
    from websockets.frames import Frame as WsFrame
    from wsproto.extensions import Extension as WsprotoExtension
    from wsproto.frame_protocol import Frame as WsprotoFrame

    from esg.websocket.deflate import DeflateParams

__all__ = ["WebsocketsEngine", "WsprotoEngine"]

_NO_STATUS = 1005
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def _wire_limit(max_size: int) -> int:
    """The wire size a compressed message may have (the same bound as esg's reader)."""
    return max_size + (max_size >> 3) + 1024


def _frames_module(frames: ModuleType | None) -> ModuleType:
    return frames if frames is not None else load("esg.websocket.frames")


def _decode(decoder: codecs.IncrementalDecoder, data: bytes, final: bool) -> str | None:
    """The text in ``data``, or None when the message can no longer be valid UTF-8."""
    try:
        text: str = decoder.decode(data, final)
    except UnicodeDecodeError:
        return None
    if not final:
        # As in esg's reader: CPython holds back ED A0..ED BF (a UTF-16 surrogate) until the
        # third byte comes, but it is invalid as soon as the second byte is seen.
        pending: bytes = decoder.getstate()[0]
        if len(pending) > 1 and pending[0] == 0xED and pending[1] > 0x9F:
            return None
    return text


def _ascii(reason: str) -> str:
    """A library's error message as a close reason (esg's reasons are ASCII)."""
    return reason.encode("ascii", "replace").decode("ascii")


def _check_control(payload: bytes) -> None:
    if len(payload) > 125:
        raise ValueError("Invalid opcode or control frame")


def _check_close(frames: ModuleType, code: int) -> None:
    if code != _NO_STATUS and not frames.valid_close_code(code):
        raise ValueError(f"{code} can't be sent in a close frame")


# -- websockets --------------------------------------------------------------------------------


class WebsocketsEngine:
    """Frames a connection with the ``websockets`` library's sans-IO ``Protocol``."""

    def __init__(
        self, max_size: int, deflate: DeflateParams | None, frames: ModuleType | None = None
    ) -> None:
        from websockets.frames import Close, Frame, Opcode
        from websockets.protocol import Protocol, Side, State

        self.frames = _frames_module(frames)
        self._max_size = max_size
        # The library's bound applies to every frame, control frames included, and with
        # compression to each frame's wire size as well as to the inflated size.  esg counts
        # only data and allows DEFLATE's expansion on the wire: give the library room for a
        # control frame (and esg's wire bound) and check max_size on the message bytes here.
        limit = (max_size if deflate is None else _wire_limit(max_size)) + 125
        protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=limit)
        if deflate is not None:
            from websockets.extensions.permessage_deflate import PerMessageDeflate

            # "remote" is the client, "local" is esg.  zlib can't compress with a 256-byte
            # window, so 8 bits means 9, as in esg.websocket.deflate (a 9-bit zlib stream
            # still decodes with 8 bits, and a 9-bit window decodes the client's 8-bit data).
            protocol.extensions = [
                PerMessageDeflate(
                    remote_no_context_takeover=deflate.client_no_context_takeover,
                    local_no_context_takeover=deflate.server_no_context_takeover,
                    remote_max_window_bits=max(deflate.client_max_window_bits, 9),
                    local_max_window_bits=max(deflate.server_max_window_bits, 9),
                )
            ]
        self._protocol = protocol
        self._Frame = Frame
        self._Opcode = Opcode
        self._Close = Close
        self._input: list[bytes] = []  # fed, not yet handed to the library
        self._input_size = 0
        self._queue: deque[WsFrame] = deque()  # parsed by the library, not yet returned
        self._queued = 0  # payload bytes in _queue
        self._parts: list[Any] = []
        self._size = 0  # bytes of the open message so far
        self._decoder: codecs.IncrementalDecoder | None = None
        self._error: Exception | None = None
        self._closed = False  # a close frame was returned: the library discards the rest

    def feed(self, data: bytes) -> None:
        if data and self._error is None and not self._closed:
            self._input.append(data)
            self._input_size += len(data)

    def buffered(self) -> int:
        return self._input_size + len(self._protocol.reader.buffer) + self._queued + self._size

    def next_event(self) -> Any:
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except self.frames.ProtocolError as exc:
            self._error = exc
            self._input = []
            self._input_size = 0
            self._queue.clear()
            self._queued = 0
            self._parts = []
            self._size = 0
            self._decoder = None
            raise

    def _next_event(self) -> Any:
        queue = self._queue
        while True:
            if not queue and not self._receive():
                return self._end_of_input()
            while queue:
                frame = queue.popleft()
                self._queued -= len(frame.data)
                event = self._frame_event(frame)
                if event is not None:
                    return event

    def _receive(self) -> bool:
        """Hand the input to the library; False when there was none."""
        if not self._input or self._closed:
            return False
        data = self._input[0] if len(self._input) == 1 else b"".join(self._input)
        self._input = []
        self._input_size = 0
        protocol = self._protocol
        protocol.receive_data(data)
        # Pongs, close replies and the close frame of a failure: the esg session sends its own.
        protocol.data_to_send()
        # A server protocol created OPEN only ever has frames to report.
        events = cast("list[WsFrame]", protocol.events_received())
        for frame in events:
            self._queued += len(frame.data)
        self._queue.extend(events)
        return True

    def _end_of_input(self) -> Any:
        """Every parsed frame was returned: need more bytes, or report the library's failure."""
        protocol = self._protocol
        exc = protocol.parser_exc
        if exc is None or self._closed:
            return None
        if protocol.close_rcvd is not None:
            # The library parsed a close frame inside a fragmented message and then failed the
            # connection ("incomplete fragmented message"); RFC 6455 5.4 allows control frames
            # between fragments, and esg's reader returns that close frame.
            self._closed = True
            close = protocol.close_rcvd
            return self.frames.Close(int(close.code), close.reason)
        raise self._library_error(exc)

    def _library_error(self, exc: Exception) -> Exception:
        from websockets.exceptions import PayloadTooBig
        from websockets.exceptions import ProtocolError as WsProtocolError

        error: type[Exception] = self.frames.ProtocolError
        if isinstance(exc, PayloadTooBig):
            return error(1009, "Message too big")
        if isinstance(exc, UnicodeDecodeError):  # only a close reason is decoded there
            return error(1007, "Close reason is not UTF-8")
        if isinstance(exc, WsProtocolError):
            if isinstance(exc.__cause__, zlib.error):
                return error(1007, "Invalid compressed data")
            return error(1002, _ascii(str(exc)))
        return error(1011, "Internal error")

    def _frame_event(self, frame: WsFrame) -> Any:
        opcode = frame.opcode
        Opcode = self._Opcode
        frames = self.frames
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            # The library rejects a new message inside an open one, and stray continuations.
            self._decoder = _Utf8Decoder("strict") if opcode is Opcode.TEXT else None
            self._parts = []
            self._size = 0
            return self._add(frame.data, frame.fin)
        if opcode is Opcode.CONT:
            return self._add(frame.data, frame.fin)
        if opcode is Opcode.PING:
            return frames.Ping(bytes(frame.data))
        if opcode is Opcode.PONG:
            return frames.Pong(bytes(frame.data))
        close = self._protocol.close_rcvd  # the library parsed and checked it
        assert close is not None
        self._closed = True
        return frames.Close(int(close.code), close.reason)

    def _add(self, data: Any, fin: bool) -> Any:
        if type(data) is not bytes:
            data = bytes(data)
        frames = self.frames
        self._size += len(data)
        if self._size > self._max_size:
            raise frames.ProtocolError(1009, "Message too big")
        decoder = self._decoder
        if decoder is not None:
            text = _decode(decoder, data, fin)
            if text is None:
                raise frames.ProtocolError(1007, "Invalid UTF-8 in a text message")
            if text:
                self._parts.append(text)
        elif data:
            self._parts.append(data)
        if not fin:
            return None
        parts = self._parts
        self._parts = []
        self._size = 0
        if decoder is not None:
            self._decoder = None
            return frames.TextMessage(parts[0] if len(parts) == 1 else "".join(parts))
        return frames.BytesMessage(parts[0] if len(parts) == 1 else b"".join(parts))

    # -- writing ---------------------------------------------------------------------------

    def _serialize(self, opcode: Any, payload: bytes) -> bytes:
        return self._Frame(opcode, payload).serialize(
            mask=False, extensions=self._protocol.extensions
        )

    def text(self, data: str) -> bytes:
        return self._serialize(self._Opcode.TEXT, data.encode("utf-8"))

    def binary(self, data: bytes) -> bytes:
        return self._serialize(self._Opcode.BINARY, bytes(data))

    def ping(self, payload: bytes) -> bytes:
        _check_control(payload)
        return self._serialize(self._Opcode.PING, payload)

    def pong(self, payload: bytes) -> bytes:
        _check_control(payload)
        return self._serialize(self._Opcode.PONG, payload)

    def close(self, code: int, reason: str) -> bytes:
        _check_close(self.frames, code)
        if code == _NO_STATUS:
            return self._serialize(self._Opcode.CLOSE, b"")
        data = reason.encode("utf-8")
        if len(data) > 123:
            reason = data[:123].decode("utf-8", "ignore")
        return self._serialize(self._Opcode.CLOSE, self._Close(code, reason).serialize())


# -- wsproto -----------------------------------------------------------------------------------


class _Budget:
    """What the engine and its wsproto hooks share about the message being read."""

    __slots__ = ("max_size", "size", "too_big", "wire_limit")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.wire_limit = _wire_limit(max_size)
        self.size = 0  # bytes of the open message so far (after inflating)
        self.too_big = False  # a frame header declared more than the budget allows


@functools.cache
def _wsproto_hooks() -> Callable[[_Budget, DeflateParams | None], WsprotoExtension]:
    """The wsproto ``Extension`` esg puts in front of wsproto's ``PerMessageDeflate``."""
    from wsproto.extensions import Extension, PerMessageDeflate
    from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

    no_bits = RsvBits(False, False, False)

    class Hooks(Extension):
        name = "esg"

        def __init__(self, budget: _Budget, params: DeflateParams | None) -> None:
            self._budget = budget
            self._deflate: PerMessageDeflate | None = None
            if params is not None:
                # wsproto's window bits are 9-15: 8 means 9, as in esg.websocket.deflate.
                self._deflate = PerMessageDeflate(
                    client_no_context_takeover=params.client_no_context_takeover,
                    client_max_window_bits=max(params.client_max_window_bits, 9),
                    server_no_context_takeover=params.server_no_context_takeover,
                    server_max_window_bits=max(params.server_max_window_bits, 9),
                )
            self._control = False  # the frame being read is a control frame
            self._compressed = False  # the open message is compressed
            self._declared = 0  # the payload lengths of the open message's frames so far
            self._frame_end = 0  # _declared once the frame being read is complete

        def enabled(self) -> bool:
            return True

        def offer(self) -> bool | str:
            return False  # esg negotiates; this extension is never offered

        def frame_inbound_header(
            self,
            proto: FrameDecoder | FrameProtocol,
            opcode: Opcode,
            rsv: RsvBits,
            payload_length: int,
        ) -> CloseReason | RsvBits:
            if opcode.iscontrol():
                # PerMessageDeflate never sees control frames: it would end the open
                # message's compression at one.  RSV1 on a control frame stays unclaimed, so
                # wsproto rejects it.
                self._control = True
                return no_bits
            self._control = False
            used = no_bits
            deflate = self._deflate
            if deflate is not None:
                result = deflate.frame_inbound_header(proto, opcode, rsv, payload_length)
                if isinstance(result, CloseReason):
                    return result
                used = result
            budget = self._budget
            if opcode is not Opcode.CONTINUATION:
                self._compressed = deflate is not None and rsv.rsv1
                self._declared = 0
                budget.size = 0
            # wsproto calls this again for the same header while the mask is still missing,
            # so the frame's length is only added to the message's once its payload is read.
            self._frame_end = self._declared + payload_length
            limit = budget.wire_limit if self._compressed else budget.max_size
            if self._frame_end > limit:
                # Reported by the engine once wsproto has checked the rest of the header
                # (a missing mask is a 1002 first, as in esg).
                budget.too_big = True
            return used

        def frame_inbound_payload_data(
            self, proto: FrameDecoder | FrameProtocol, data: bytes
        ) -> bytes | CloseReason:
            if self._control:
                return data
            if self._compressed:
                assert self._deflate is not None
                out = self._deflate.frame_inbound_payload_data(proto, data)
                if isinstance(out, CloseReason):
                    return out
                return self._count(out)
            self._budget.size += len(data)
            return data

        def frame_inbound_complete(
            self, proto: FrameDecoder | FrameProtocol, fin: bool
        ) -> bytes | CloseReason | None:
            if self._control:
                return None
            self._declared = self._frame_end
            out: bytes | CloseReason | None = None
            if self._deflate is not None:
                out = self._deflate.frame_inbound_complete(proto, fin)
                if isinstance(out, bytes):
                    out = self._count(out)
            if fin:
                self._budget.size = 0
            return out

        def frame_outbound(
            self,
            proto: FrameDecoder | FrameProtocol,
            opcode: Opcode,
            rsv: RsvBits,
            data: bytes,
            fin: bool,
        ) -> tuple[RsvBits, bytes]:
            if self._deflate is None:
                return rsv, data
            return self._deflate.frame_outbound(proto, opcode, rsv, data, fin)

        def _count(self, data: bytes) -> bytes | CloseReason:
            budget = self._budget
            budget.size += len(data)
            if budget.size > budget.max_size:
                return CloseReason.MESSAGE_TOO_BIG
            return data

    return Hooks


class WsprotoEngine:
    """Frames a connection with wsproto's ``FrameProtocol`` (no auto-replies at that level)."""

    def __init__(
        self, max_size: int, deflate: DeflateParams | None, frames: ModuleType | None = None
    ) -> None:
        from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

        self.frames = _frames_module(frames)
        self._budget = _Budget(max_size)
        hooks = _wsproto_hooks()(self._budget, deflate)
        self._proto = FrameProtocol(client=False, extensions=[hooks])
        self._Opcode = Opcode
        self._ParseFailed = ParseFailed
        # wsproto inflates whatever it is given in one call: feed it in slices so a
        # decompression bomb can't make much more than max_size before it is caught.
        self._slice = max(1024, min(65536, max_size >> 10)) if deflate is not None else 65536
        self._buf = b""  # fed, not yet handed to wsproto (from _pos on)
        self._pos = 0
        self._parts: list[Any] = []
        self._error: Exception | None = None
        self._closed = False  # a close frame was returned: wsproto parses nothing after it

    def feed(self, data: bytes) -> None:
        if not data or self._error is not None or self._closed:
            return
        if self._pos >= len(self._buf):
            self._buf = data
        else:
            self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def buffered(self) -> int:
        # Plus at most one slice inside wsproto (it holds no more than it was last given).
        return len(self._buf) - self._pos + self._budget.size

    def next_event(self) -> Any:
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except self._ParseFailed as exc:
            code = int(exc.code)
            reason = "Message too big" if code == 1009 else _ascii(str(exc))  # from the hooks
            error: Exception = self.frames.ProtocolError(code, reason)
        except self.frames.ProtocolError as exc:
            error = exc
        self._error = error
        self._buf = b""
        self._pos = 0
        self._parts = []
        raise error

    def _next_event(self) -> Any:
        proto = self._proto
        budget = self._budget
        while True:
            for frame in proto.received_frames():
                if budget.too_big:
                    raise self.frames.ProtocolError(1009, "Message too big")
                event = self._frame_event(frame)
                if event is not None:
                    return event
            if budget.too_big:  # the header is in, its payload isn't
                raise self.frames.ProtocolError(1009, "Message too big")
            if self._closed or self._pos >= len(self._buf):
                return None
            chunk = self._buf[self._pos : self._pos + self._slice]
            proto.receive_bytes(chunk)
            self._pos += len(chunk)

    def _frame_event(self, frame: WsprotoFrame) -> Any:
        opcode = frame.opcode
        Opcode = self._Opcode
        payload = frame.payload
        frames = self.frames
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            # wsproto gives each data frame in pieces as its payload arrives, text decoded.
            if payload:
                self._parts.append(payload)
            if not frame.message_finished:
                return None
            parts = self._parts
            self._parts = []
            if opcode is Opcode.TEXT:
                return frames.TextMessage(parts[0] if len(parts) == 1 else "".join(parts))
            return frames.BytesMessage(parts[0] if len(parts) == 1 else b"".join(parts))
        if opcode is Opcode.PING:
            assert isinstance(payload, bytes)
            return frames.Ping(payload)
        if opcode is Opcode.PONG:
            assert isinstance(payload, bytes)
            return frames.Pong(payload)
        assert opcode is Opcode.CLOSE and isinstance(payload, tuple)
        self._closed = True
        self._buf = b""
        self._pos = 0
        return frames.Close(int(payload[0]), payload[1])

    # -- writing ---------------------------------------------------------------------------

    def text(self, data: str) -> bytes:
        return bytes(self._proto.send_data(data))

    def binary(self, data: bytes) -> bytes:
        return bytes(self._proto.send_data(bytes(data)))

    def ping(self, payload: bytes) -> bytes:
        _check_control(payload)
        return bytes(self._proto.ping(payload))

    def pong(self, payload: bytes) -> bytes:
        _check_control(payload)
        return bytes(self._proto.pong(payload))

    def close(self, code: int, reason: str) -> bytes:
        _check_close(self.frames, code)
        if code == _NO_STATUS:
            return bytes(self._proto.close())
        return bytes(self._proto.close(code, reason))  # cuts the reason to 123 bytes
