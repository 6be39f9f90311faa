# cython: annotation_typing=False
"""The server side of an HTTP/2 connection (RFC 9113), sans-IO: bytes in, events out.

Compiled twin ``esg.http2._connection_c``, typed by ``_connection_c.pxd``.

``ServerConnection.receive_data(data)`` parses the client's bytes and returns a list of events
(``RequestReceived``, ``DataReceived``, ``TrailersReceived``, ``StreamReset``, ``WindowOpened``
...); the response goes out through ``send_headers()``, ``send_data()``, ``send_trailers()``
and ``reset_stream()``; ``data_to_send()`` hands over every byte the codec wants written.
Nothing here touches a socket, asyncio or (except the optional flood clock) time.  The asyncio
layer hosts one ``RequestCycle`` per stream on top of it.

How it is built, and why:

* **One pass over the input, no frame objects.**  ``receive_data`` reads each 9-byte frame
  header as integers straight from the buffer and calls the handler of its type with
  ``(stream id, flags, payload)``; the only objects made per request are its event and the
  stream's state record.  A frame longer than our SETTINGS_MAX_FRAME_SIZE is refused from its
  header, before its payload is buffered, so the input buffer never holds more than one frame
  plus the latest read.
* **Errors are exceptions inside, events outside.**  A connection error (section 5.4.1) is
  raised as ``H2ProtocolError`` from wherever it is found and caught once in
  ``receive_data``, which writes GOAWAY (with the last stream id we saw) and returns
  ``ConnectionTerminated``; the connection then ignores further input.  A stream error (section
  5.4.2) writes RST_STREAM, forgets the stream and returns ``StreamReset(remote=False)`` if the
  application knew the stream; the other streams carry on.  A malformed request (section 8.1.1)
  is a stream error PROTOCOL_ERROR.
* **HPACK is decoded for every header block**, also for streams refused, reset or past our
  GOAWAY, because the compression context is shared by the whole connection (section 4.3).
  ``HeaderListTooLarge`` refuses only the stream: it opens and ``RequestHeadersTooLarge`` lets
  the layer answer 431.
* **Closed streams** (section 5.1).  The codec keeps the ids of the last
  ``RECENTLY_CLOSED`` closed streams with how they closed.  Frames on a stream esg reset are
  ignored (the client may have sent them before our RST_STREAM arrived; DATA still counts
  against the connection window and is credited back at once).  DATA or HEADERS on a stream
  the client reset is a stream error STREAM_CLOSED; on a stream that ended normally (END_STREAM
  both ways), or DATA on one closed so long ago that it was forgotten, a connection error
  STREAM_CLOSED; HEADERS on a stream id never opened (or forgotten) is an id that doesn't
  increase, a connection error PROTOCOL_ERROR (section 5.1.1).  WINDOW_UPDATE, RST_STREAM
  and PRIORITY on any closed stream are ignored (section 5.1 allows them after our END_STREAM
  or RST_STREAM; ignoring them for a stream the client reset costs nothing and sends nothing
  back).
* **Flow control** (sections 5.2 and 6.9).  Received DATA consumes the connection's and the
  stream's receive windows; the window is given back only when the application calls
  ``acknowledge_received_data()`` (padding at once), in WINDOW_UPDATEs batched until half of
  the window was consumed.  So the DATA a connection holds unread is bounded by its receive
  window, and a slow application back-pressures its client.  ``send_data()`` sends only what
  the stream's and the connection's send windows and the peer's MAX_FRAME_SIZE allow, and
  returns how much; ``WindowOpened`` says when a stream (or, with id 0, the connection) that
  was left short has room again.  The codec never buffers data it may not send.
* **Attacks** are bounded and counted in ``counters`` (one key per reason, for metrics):
  Rapid Reset and MadeYouReset share one budget of resets (by the client, and by esg for the
  client's stream errors) of streams whose request was delivered, per window of delivered
  streams; control frames that cost work but carry no request (SETTINGS, PING, PRIORITY,
  WINDOW_UPDATE, empty DATA, unknown types) spend a credit that requests and sent DATA frames
  earn back, with a slow refill over time; a header block is capped in bytes and in
  CONTINUATION frames.  Each ends the connection with ENHANCE_YOUR_CALM.  A client stream id
  near 2^31 starts a graceful GOAWAY.
* **Server push is not implemented**: SETTINGS_ENABLE_PUSH is the client's setting and is only
  validated, PUSH_PROMISE is never sent (and one from a client is a PROTOCOL_ERROR).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from esg._compiled import is_compiled, load
from esg.http2.errors import H2ProtocolError, HeaderListTooLarge, HPACKError, StreamClosedError
from esg.http2.frames import (
    CONNECTION_PREFACE,
    DEFAULT_INITIAL_WINDOW_SIZE,
    DEFAULT_MAX_FRAME_SIZE,
    MAX_FRAME_SIZE_LIMIT,
    MAX_STREAM_ID,
    MAX_WINDOW_SIZE,
    ErrorCode,
    FrameType,
    SettingCode,
)

_COMPILED = is_compiled(__name__)  # which twin this is: neighbours come from the same build

if TYPE_CHECKING:
    from esg.http2.hpack import Decoder, Encoder
else:  # the HPACK codec of this build
    _hpack = load("esg.http2.hpack", _COMPILED)
    Decoder = _hpack.Decoder
    Encoder = _hpack.Encoder

__all__ = [
    "RECENTLY_CLOSED",
    "ConnectionTerminated",
    "DataReceived",
    "Event",
    "GoAwayReceived",
    "PingAcked",
    "RequestHeadersTooLarge",
    "RequestReceived",
    "ServerConnection",
    "SettingsAcknowledged",
    "StreamReset",
    "TrailersReceived",
    "WindowOpened",
]

# How many closed streams the codec remembers, with how each closed (see the docstring).
RECENTLY_CLOSED = 512
# A header block (HEADERS + CONTINUATIONs) may hold at most this many CONTINUATION frames; a
# legitimate block of the largest header list we accept needs a handful.
MAX_CONTINUATIONS = 128
# A client stream id from here on starts the graceful GOAWAY: about a million ids before the
# end, so the client learns to open a new connection while it still can use this one.
STREAM_ID_HIGH_WATER = MAX_STREAM_ID - (1 << 21)

# Every counter a connection keeps, all present from the start so that metrics can add them up.
COUNTERS = (
    "client_resets",  # RST_STREAM from the client on a stream whose request was delivered
    "server_resets",  # RST_STREAM esg sent for a client's stream error on such a stream
    "stream_errors",  # every stream error esg answered with RST_STREAM
    "malformed_requests",  # section 8.1.1: stream error PROTOCOL_ERROR
    "refused_streams",  # beyond SETTINGS_MAX_CONCURRENT_STREAMS: REFUSED_STREAM
    "header_lists_too_large",  # an HPACK bomb or just large headers: refused with 431
    "reset_flood",  # Rapid Reset / MadeYouReset: GOAWAY(ENHANCE_YOUR_CALM)
    "continuation_flood",
    "settings_flood",
    "ping_flood",
    "priority_flood",
    "window_update_flood",
    "empty_data_flood",
    "unknown_frame_flood",
    "stream_id_exhaustion",  # graceful GOAWAY: the client ran out of stream ids
)

# -- private C-typed copies of the wire constants (_connection_c.pxd types them) ---------------
_DATA = int(FrameType.DATA)
_HEADERS = int(FrameType.HEADERS)
_PRIORITY = int(FrameType.PRIORITY)
_RST_STREAM = int(FrameType.RST_STREAM)
_SETTINGS = int(FrameType.SETTINGS)
_PUSH_PROMISE = int(FrameType.PUSH_PROMISE)
_PING = int(FrameType.PING)
_GOAWAY = int(FrameType.GOAWAY)
_WINDOW_UPDATE = int(FrameType.WINDOW_UPDATE)
_CONTINUATION = int(FrameType.CONTINUATION)
_END_STREAM = 0x1
_ACK = 0x1
_END_HEADERS = 0x4
_PADDED = 0x8
_PRIORITY_FLAG = 0x20

_NO_ERROR = int(ErrorCode.NO_ERROR)
_PROTOCOL_ERROR = int(ErrorCode.PROTOCOL_ERROR)
_FLOW_CONTROL_ERROR = int(ErrorCode.FLOW_CONTROL_ERROR)
_STREAM_CLOSED = int(ErrorCode.STREAM_CLOSED)
_FRAME_SIZE_ERROR = int(ErrorCode.FRAME_SIZE_ERROR)
_REFUSED_STREAM = int(ErrorCode.REFUSED_STREAM)
_CANCEL = int(ErrorCode.CANCEL)
_COMPRESSION_ERROR = int(ErrorCode.COMPRESSION_ERROR)
_ENHANCE_YOUR_CALM = int(ErrorCode.ENHANCE_YOUR_CALM)

_HEADER_TABLE_SIZE = int(SettingCode.HEADER_TABLE_SIZE)
_ENABLE_PUSH = int(SettingCode.ENABLE_PUSH)
_MAX_CONCURRENT_STREAMS = int(SettingCode.MAX_CONCURRENT_STREAMS)
_INITIAL_WINDOW_SIZE = int(SettingCode.INITIAL_WINDOW_SIZE)
_MAX_FRAME_SIZE = int(SettingCode.MAX_FRAME_SIZE)
_MAX_HEADER_LIST_SIZE = int(SettingCode.MAX_HEADER_LIST_SIZE)
_ENABLE_CONNECT_PROTOCOL = int(SettingCode.ENABLE_CONNECT_PROTOCOL)
_NO_RFC7540_PRIORITIES = int(SettingCode.NO_RFC7540_PRIORITIES)

_PREFACE = CONNECTION_PREFACE
_PREFACE_LENGTH = len(CONNECTION_PREFACE)
_MAX_WINDOW = MAX_WINDOW_SIZE
_MAX_STREAM_ID = MAX_STREAM_ID
_DEFAULT_WINDOW = DEFAULT_INITIAL_WINDOW_SIZE
_MIN_FRAME_SIZE = DEFAULT_MAX_FRAME_SIZE
_MAX_FRAME_LIMIT = MAX_FRAME_SIZE_LIMIT
_RECENTLY_CLOSED = RECENTLY_CLOSED
_MAX_CONTINUATIONS = MAX_CONTINUATIONS
_HIGH_WATER = STREAM_ID_HIGH_WATER

# Connection states.
_AWAIT_PREFACE = 0  # the 24 bytes of the client's magic
_AWAIT_SETTINGS = 1  # its first frame, which must be SETTINGS
_OPEN = 2
_CLOSED = 3  # GOAWAY sent after an error or close_connection(): input is ignored

# How a remembered stream closed.
_RESET_BY_US = 1  # later frames on it are ignored
_RESET_BY_PEER = 2
_ENDED = 3  # END_STREAM both ways
_IGNORED = 4  # opened past our final GOAWAY: ignored like _RESET_BY_US, without a RST_STREAM

# 8 opaque bytes of the PING that ends the first phase of a graceful shutdown.
_SHUTDOWN_PING = b"esg-gone"
# Flow-control credit a delivered request and a sent DATA frame earn back for control frames.
_CREDIT_PER_REQUEST = 8.0
_CREDIT_PER_DATA_FRAME = 2.0

# length (24 bits as 16 + 8), type, flags, stream id.
_pack_u32 = struct.Struct(">L").pack
_pack_setting = struct.Struct(">HL").pack
_pack_goaway = struct.Struct(">LL").pack

# 1 for the bytes a regular field name may hold (section 8.2.1): visible ASCII except
# uppercase letters and the colon (a pseudo-header's colon is checked separately).
_NAME_CHARS = bytes(
    1 if 0x21 <= byte <= 0x7E and not 0x41 <= byte <= 0x5A and byte != 0x3A else 0
    for byte in range(256)
)
# Connection-specific fields (section 8.2.2); `te` is allowed with the value "trailers" only.
_CONNECTION_FIELDS = frozenset(
    [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"]
)


# -- events ------------------------------------------------------------------------------------


class RequestReceived:
    """A request's header block arrived on a new stream (HEADERS, with any CONTINUATIONs).

    The pseudo-header fields come as attributes (``authority`` and ``protocol`` may be None:
    the ASGI layer makes ``authority`` the ``host`` header when the request has none);
    ``headers`` are the regular fields in order, as ``(name, value)`` byte pairs with names
    lowercase, ``cookie`` fields joined into one with ``"; "`` (section 8.2.3).
    ``content_length`` is -1 when the request has none.  ``end_stream``: no body follows.
    """

    __slots__ = (
        "stream_id",
        "method",
        "scheme",
        "path",
        "authority",
        "protocol",
        "headers",
        "content_length",
        "end_stream",
    )

    def __init__(
        self,
        stream_id: int,
        method: bytes,
        scheme: bytes | None,
        path: bytes | None,
        authority: bytes | None,
        protocol: bytes | None,
        headers: list[tuple[bytes, bytes]],
        content_length: int,
        end_stream: bool,
    ) -> None:
        self.stream_id = stream_id
        self.method = method
        self.scheme = scheme
        self.path = path
        self.authority = authority
        self.protocol = protocol
        self.headers = headers
        self.content_length = content_length
        self.end_stream = end_stream

    def __repr__(self) -> str:
        return (
            f"<RequestReceived {self.stream_id} {self.method!r} {self.path!r}"
            f" end_stream={self.end_stream}>"
        )


class RequestHeadersTooLarge:
    """A request's header list was larger than our SETTINGS_MAX_HEADER_LIST_SIZE.

    The stream is open (the block was decoded to keep HPACK in step): answer 431 on it, or
    ``reset_stream()`` it.  Its body, if any, still arrives as ``DataReceived``.
    """

    __slots__ = ("stream_id", "end_stream")

    def __init__(self, stream_id: int, end_stream: bool) -> None:
        self.stream_id = stream_id
        self.end_stream = end_stream

    def __repr__(self) -> str:
        return f"<RequestHeadersTooLarge {self.stream_id}>"


class DataReceived:
    """Request body bytes.  Hand ``len(data)`` to ``acknowledge_received_data()`` once the
    application consumed them; ``flow_controlled_length`` (the frame's whole payload, padding
    included) is informational: the codec credits the padding back itself."""

    __slots__ = ("stream_id", "data", "flow_controlled_length", "end_stream")

    def __init__(
        self, stream_id: int, data: bytes, flow_controlled_length: int, end_stream: bool
    ) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow_controlled_length = flow_controlled_length
        self.end_stream = end_stream

    def __repr__(self) -> str:
        return f"<DataReceived {self.stream_id} {len(self.data)} end_stream={self.end_stream}>"


class TrailersReceived:
    """The request's trailer fields (a last HEADERS with END_STREAM); the body is complete."""

    __slots__ = ("stream_id", "headers")

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.stream_id = stream_id
        self.headers = headers

    def __repr__(self) -> str:
        return f"<TrailersReceived {self.stream_id} {len(self.headers)} fields>"


class StreamReset:
    """A stream whose request was delivered is gone: reset by the client (``remote``) or by
    esg for a stream error of the client's.  Nothing more can be sent on it."""

    __slots__ = ("stream_id", "error_code", "remote")

    def __init__(self, stream_id: int, error_code: int, remote: bool) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote = remote

    def __repr__(self) -> str:
        return f"<StreamReset {self.stream_id} code={self.error_code} remote={self.remote}>"


class WindowOpened:
    """A stream that ``send_data()`` left short has send window again; stream id 0: the
    connection's window opened, every stream waiting for it may retry."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return f"<WindowOpened {self.stream_id}>"


class ConnectionTerminated:
    """esg ended the connection for a connection error: GOAWAY is in ``data_to_send()``;
    write it, then close the transport.  ``reason`` is for the log."""

    __slots__ = ("error_code", "last_stream_id", "reason")

    def __init__(self, error_code: int, last_stream_id: int, reason: str) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.reason = reason

    def __repr__(self) -> str:
        return f"<ConnectionTerminated code={self.error_code} {self.reason!r}>"


class GoAwayReceived:
    """The client sent GOAWAY: it opens no more streams.  With NO_ERROR the streams up to
    ``last_stream_id`` may finish; with an error code, close the connection."""

    __slots__ = ("error_code", "last_stream_id", "additional_data")

    def __init__(self, error_code: int, last_stream_id: int, additional_data: bytes) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.additional_data = additional_data

    def __repr__(self) -> str:
        return f"<GoAwayReceived code={self.error_code} last={self.last_stream_id}>"


class SettingsAcknowledged:
    """The client acknowledged our SETTINGS: they are in force."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<SettingsAcknowledged>"


class PingAcked:
    """The answer to a ``ping()`` of ours arrived."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"<PingAcked {self.payload!r}>"


Event = (
    RequestReceived
    | RequestHeadersTooLarge
    | DataReceived
    | TrailersReceived
    | StreamReset
    | WindowOpened
    | ConnectionTerminated
    | GoAwayReceived
    | SettingsAcknowledged
    | PingAcked
)


# -- field checks (section 8.2.1) ----------------------------------------------------------------


def _bad_name(name: bytes) -> bool:
    """A regular field name that is empty or holds a byte section 8.2.1 forbids."""
    if not name:
        return True
    for byte in name:  # noqa: SIM110 - a C loop in the compiled build; any() would not be
        if not _NAME_CHARS[byte]:
            return True
    return False


def _bad_value(value: bytes) -> bool:
    """A field value with NUL, CR or LF, or leading or trailing whitespace."""
    size = len(value)
    if size == 0:
        return False
    byte = value[0]
    if byte == 0x20 or byte == 0x09:
        return True
    byte = value[size - 1]
    if byte == 0x20 or byte == 0x09:
        return True
    return b"\n" in value or b"\r" in value or b"\0" in value


def _parse_length(value: bytes) -> int:
    """A content-length value as an integer, or -1 if it isn't 1 to 18 digits."""
    size = len(value)
    if size == 0 or size > 18:
        return -1
    result = 0
    for byte in value:
        if byte < 0x30 or byte > 0x39:
            return -1
        result = result * 10 + (byte - 0x30)
    return result


def _forbidden(name: bytes, value: bytes) -> bool:
    """A connection-specific field (section 8.2.2), or `te` with anything but "trailers"."""
    first = name[0]
    if first == 0x74:  # t
        if name == b"te":
            return value != b"trailers"
        return name == b"transfer-encoding"
    if first == 0x63 or first == 0x6B or first == 0x70 or first == 0x75:  # c k p u
        return name in _CONNECTION_FIELDS
    return False


def _has_upper(name: bytes) -> bool:
    for byte in name:  # noqa: SIM110 - a C loop in the compiled build
        if 0x41 <= byte <= 0x5A:
            return True
    return False


# -- streams -------------------------------------------------------------------------------------


class _Stream:
    """One open (or half-closed) stream's state; closed streams are dropped from the table."""

    __slots__ = (
        "stream_id",
        "remote_closed",
        "local_closed",
        "headers_sent",
        "blocked",
        "send_window",
        "recv_window",
        "recv_credit",
        "unacked",
        "content_length",
        "received",
    )

    def __init__(self, stream_id: int, send_window: int, recv_window: int) -> None:
        self.stream_id = stream_id
        self.remote_closed = False  # END_STREAM received: half-closed (remote)
        self.local_closed = False  # END_STREAM sent: half-closed (local)
        self.headers_sent = False  # the final (not 1xx) response head went: DATA may follow
        self.blocked = False  # send_data() was left short: WindowOpened is owed
        self.send_window = send_window
        self.recv_window = recv_window  # how much DATA the client may still send
        self.recv_credit = 0  # consumed by the application, not yet given back
        self.unacked = 0  # delivered to the application, not yet acknowledged
        self.content_length = -1
        self.received = 0  # DATA bytes received (without padding)


class ServerConnection:
    """The server side of one HTTP/2 connection; see the module docstring.

    Our SETTINGS (and the connection WINDOW_UPDATE) are queued at construction: write
    ``data_to_send()`` as soon as the connection is made.
    """

    # Exactly the C fields of _connection_c.pxd (tests/test_twins.py checks).
    __slots__ = (
        "counters",
        "max_concurrent_streams",
        "enable_connect_protocol",
        "_initial_window",
        "_max_frame_size",
        "_max_header_list_size",
        "_header_table_size",
        "_connection_window",
        "_block_limit",
        "_reset_limit",
        "_reset_window",
        "_flood_burst",
        "_flood_rate",
        "_clock",
        "_state",
        "_buf",
        "_out",
        "_decoder",
        "_encoder",
        "_streams",
        "_closed",
        "_highest_id",
        "_goaway_last",
        "_shutdown_phase",
        "_settings_acked",
        "_recv_initial",
        "_peer_initial_window",
        "_peer_max_frame_size",
        "_peer_max_header_list_size",
        "_conn_send_window",
        "_conn_recv_window",
        "_conn_recv_credit",
        "_conn_blocked",
        "_cont_sid",
        "_cont_end_stream",
        "_cont_bad_priority",
        "_cont_parts",
        "_cont_size",
        "_cont_frames",
        "_opened",
        "_resets",
        "_flood_credit",
        "_flood_time",
    )

    def __init__(
        self,
        *,
        max_concurrent_streams: int = 100,
        initial_window_size: int = 1 << 20,
        connection_window_size: int = 1 << 24,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_header_list_size: int = 65536,
        header_table_size: int = 4096,
        enable_connect_protocol: bool = False,
        reset_limit: int = 200,
        reset_window: int = 1000,
        flood_burst: int = 1000,
        flood_rate: float = 100.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``initial_window_size``: each stream's receive window; ``connection_window_size``:
        the connection's, which bounds the request body data held unread.  Rapid Reset:
        more than ``reset_limit`` resets per ``reset_window`` delivered streams end the
        connection.  Floods: ``flood_burst`` control frames at once, refilled at
        ``flood_rate`` per second of ``clock`` and by requests and sent DATA."""
        if not 0 <= max_concurrent_streams <= _MAX_WINDOW:
            raise ValueError(f"max_concurrent_streams={max_concurrent_streams}")
        if not 0 <= initial_window_size <= _MAX_WINDOW:
            raise ValueError(f"initial_window_size={initial_window_size}")
        if not _DEFAULT_WINDOW <= connection_window_size <= _MAX_WINDOW:
            raise ValueError(f"connection_window_size={connection_window_size}")
        if not _MIN_FRAME_SIZE <= max_frame_size <= _MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame_size={max_frame_size}")
        if max_header_list_size < 1 or header_table_size < 0 or reset_limit < 0:
            raise ValueError("a negative limit")
        if reset_window < 1 or flood_burst < 1 or flood_rate < 0:
            raise ValueError("a flood limit below 1")
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.max_concurrent_streams = max_concurrent_streams
        self.enable_connect_protocol = enable_connect_protocol
        self._initial_window = initial_window_size
        self._max_frame_size = max_frame_size
        self._max_header_list_size = max_header_list_size
        self._header_table_size = header_table_size
        self._connection_window = connection_window_size
        # The compressed block can't usefully exceed the decoded list it encodes; one frame of
        # slack for encoders that don't bother compressing.
        self._block_limit = max_header_list_size + max_frame_size
        self._reset_limit = reset_limit
        self._reset_window = reset_window
        self._flood_burst = float(flood_burst)
        self._flood_rate = float(flood_rate)
        self._clock = clock
        self._state = _AWAIT_PREFACE
        self._buf = b""
        self._out = bytearray()
        # 4096 until the client acknowledged our SETTINGS (hpack.py's docstring says why).
        self._decoder = Decoder(4096, max_header_list_size)
        self._encoder = Encoder(4096)
        self._streams: dict[int, _Stream] = {}
        self._closed: dict[int, int] = {}
        self._highest_id = 0
        self._goaway_last = _MAX_STREAM_ID  # our final GOAWAY's last stream id
        self._shutdown_phase = 0  # 1: first GOAWAY and PING sent, 2: final GOAWAY sent
        self._settings_acked = False
        # Until our SETTINGS are acknowledged the client may use the default window (section
        # 6.9.2), so the receive check allows the larger of the two.
        self._recv_initial = max(initial_window_size, _DEFAULT_WINDOW)
        self._peer_initial_window = _DEFAULT_WINDOW
        self._peer_max_frame_size = _MIN_FRAME_SIZE
        self._peer_max_header_list_size = -1  # unlimited
        self._conn_send_window = _DEFAULT_WINDOW
        self._conn_recv_window = connection_window_size
        self._conn_recv_credit = 0
        self._conn_blocked = False
        self._cont_sid = 0  # the stream whose header block is open (0: none)
        self._cont_end_stream = False
        self._cont_bad_priority = False
        self._cont_parts: list[bytes] = []
        self._cont_size = 0
        self._cont_frames = 0
        self._opened = 0  # delivered streams in the current reset window
        self._resets = 0  # resets counted against the budget in that window
        self._flood_credit = float(flood_burst)
        self._flood_time = clock()
        self._send_preface()

    # -- public state ------------------------------------------------------------------------

    @property
    def open_streams(self) -> int:
        """Streams open or half-closed; each counts against SETTINGS_MAX_CONCURRENT_STREAMS."""
        return len(self._streams)

    @property
    def closed(self) -> bool:
        """GOAWAY went out for an error or ``close_connection()``: nothing more is processed."""
        return self._state == _CLOSED

    @property
    def drained(self) -> bool:
        """The graceful shutdown is complete (final GOAWAY sent, no stream left): close."""
        return self._state == _CLOSED or (self._shutdown_phase == 2 and not self._streams)

    @property
    def awaiting_headers(self) -> bool:
        """The preface and the client's SETTINGS are still due, or a header block (HEADERS
        and its CONTINUATIONs) is open: what the layer's header timeout bounds."""
        return self._state < _OPEN or self._cont_sid != 0

    @property
    def highest_stream_id(self) -> int:
        return self._highest_id

    def send_window(self, stream_id: int) -> int:
        """How many DATA bytes ``send_data()`` could send on the stream now (0 if closed)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed or self._state == _CLOSED:
            return 0
        window = stream.send_window
        if self._conn_send_window < window:
            window = self._conn_send_window
        return window if window > 0 else 0

    # -- input ---------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes from the client; the events they complete, in order."""
        events: list[Event] = []
        if self._state == _CLOSED:
            return events
        buf = data if type(data) is bytes else bytes(data)
        if self._buf:
            buf = self._buf + buf
        end = len(buf)
        pos = 0
        try:
            if self._state == _AWAIT_PREFACE:
                if end < _PREFACE_LENGTH:
                    if not _PREFACE.startswith(buf):
                        raise H2ProtocolError(_PROTOCOL_ERROR, "not the HTTP/2 preface")
                    self._buf = buf
                    return events
                if buf[:_PREFACE_LENGTH] != _PREFACE:
                    raise H2ProtocolError(_PROTOCOL_ERROR, "not the HTTP/2 preface")
                pos = _PREFACE_LENGTH
                self._state = _AWAIT_SETTINGS
            while end - pos >= 9:
                length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
                if length > self._max_frame_size:
                    raise H2ProtocolError(
                        _FRAME_SIZE_ERROR, f"a frame of {length} bytes, above SETTINGS"
                    )
                if end - pos - 9 < length:
                    break
                ftype = buf[pos + 3]
                flags = buf[pos + 4]
                sid = (
                    ((buf[pos + 5] & 0x7F) << 24)
                    | (buf[pos + 6] << 16)
                    | (buf[pos + 7] << 8)
                    | buf[pos + 8]
                )
                start = pos + 9
                pos = start + length
                payload = buf[start:pos]
                if self._cont_sid:
                    # Section 6.10: nothing but the block's CONTINUATIONs until END_HEADERS.
                    if ftype != _CONTINUATION or sid != self._cont_sid:
                        raise H2ProtocolError(_PROTOCOL_ERROR, "a frame inside a header block")
                    self._continuation(flags, payload, events)
                    continue
                if self._state != _OPEN:
                    if ftype != _SETTINGS or flags & _ACK:
                        raise H2ProtocolError(
                            _PROTOCOL_ERROR, "the client's first frame is not SETTINGS"
                        )
                    self._state = _OPEN
                if ftype == _HEADERS:
                    self._on_headers(sid, flags, payload, events)
                elif ftype == _DATA:
                    self._on_data(sid, flags, payload, events)
                elif ftype == _WINDOW_UPDATE:
                    self._on_window_update(sid, payload, events)
                elif ftype == _SETTINGS:
                    self._on_settings(sid, flags, payload, events)
                elif ftype == _RST_STREAM:
                    self._on_rst_stream(sid, payload, events)
                elif ftype == _PING:
                    self._on_ping(sid, flags, payload, events)
                elif ftype == _PRIORITY:
                    self._on_priority(sid, payload, events)
                elif ftype == _GOAWAY:
                    self._on_goaway(sid, payload, events)
                elif ftype == _CONTINUATION:
                    raise H2ProtocolError(_PROTOCOL_ERROR, "CONTINUATION without a header block")
                elif ftype == _PUSH_PROMISE:
                    raise H2ProtocolError(_PROTOCOL_ERROR, "PUSH_PROMISE from a client")
                else:
                    self._charge("unknown_frame_flood")  # unknown types are ignored (4.1)
                if self._state == _CLOSED:  # close_connection() from within: stop here
                    return events
        except H2ProtocolError as exc:
            self._terminate(exc.error_code, exc.reason, events)
            return events
        self._buf = buf[pos:] if pos < end else b""
        return events

    def _on_headers(self, sid: int, flags: int, payload: bytes, events: list[Event]) -> None:
        if sid == 0:
            raise H2ProtocolError(_PROTOCOL_ERROR, "HEADERS on stream 0")
        end = len(payload)
        start = 0
        pad = 0
        if flags & _PADDED:
            if end < 1:
                raise H2ProtocolError(_FRAME_SIZE_ERROR, "HEADERS too short for its padding")
            pad = payload[0]
            start = 1
        bad_priority = False
        if flags & _PRIORITY_FLAG:
            if end - start < 5:
                raise H2ProtocolError(_FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            dependency = (
                ((payload[start] & 0x7F) << 24)
                | (payload[start + 1] << 16)
                | (payload[start + 2] << 8)
                | payload[start + 3]
            )
            bad_priority = dependency == sid  # a stream can't depend on itself (5.3.1)
            start += 5
        if pad > end - start:
            raise H2ProtocolError(_PROTOCOL_ERROR, "HEADERS padding longer than the frame")
        fragment = payload if start == 0 and pad == 0 else payload[start : end - pad]
        if flags & _END_HEADERS:
            self._header_block(sid, fragment, flags & _END_STREAM != 0, bad_priority, events)
            return
        self._cont_sid = sid
        self._cont_end_stream = flags & _END_STREAM != 0
        self._cont_bad_priority = bad_priority
        self._cont_parts = [fragment]
        self._cont_size = len(fragment)
        self._cont_frames = 0

    def _continuation(self, flags: int, payload: bytes, events: list[Event]) -> None:
        # CONTINUATION flood (CVE-2024-27316 class): bound the bytes and the frames of a block.
        self._cont_size += len(payload)
        self._cont_frames += 1
        if self._cont_size > self._block_limit or self._cont_frames > _MAX_CONTINUATIONS:
            self.counters["continuation_flood"] += 1
            raise H2ProtocolError(_ENHANCE_YOUR_CALM, "a header block too large or too split")
        self._cont_parts.append(payload)
        if flags & _END_HEADERS:
            block = b"".join(self._cont_parts)
            sid = self._cont_sid
            self._cont_sid = 0
            self._cont_parts = []
            self._header_block(sid, block, self._cont_end_stream, self._cont_bad_priority, events)

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]] | None:
        """The block's header list; None when it is larger than our limit."""
        try:
            headers: list[tuple[bytes, bytes]] = self._decoder.decode(block)
            return headers
        except HeaderListTooLarge:
            self.counters["header_lists_too_large"] += 1
            return None
        except HPACKError as exc:
            raise H2ProtocolError(_COMPRESSION_ERROR, str(exc)) from None

    def _header_block(
        self, sid: int, block: bytes, end_stream: bool, bad_priority: bool, events: list[Event]
    ) -> None:
        if not sid & 1:
            raise H2ProtocolError(_PROTOCOL_ERROR, f"HEADERS on even stream {sid}")
        stream = self._streams.get(sid)
        if stream is not None:
            self._trailers(stream, block, end_stream, events)
            return
        if sid <= self._highest_id:
            kind = self._closed.get(sid, 0)
            if kind in (_RESET_BY_US, _IGNORED):
                self._decode(block)  # keep the HPACK context in step; ignore the stream
                return
            if kind == _RESET_BY_PEER:
                self._decode(block)
                self._stream_error(sid, _STREAM_CLOSED, events)
                return
            if kind == _ENDED:
                raise H2ProtocolError(_STREAM_CLOSED, f"HEADERS on closed stream {sid}")
            # Never opened (implicitly closed) or forgotten: an id that doesn't increase.
            raise H2ProtocolError(_PROTOCOL_ERROR, f"stream id {sid} is not increasing (5.1.1)")
        # A new stream; every lower idle one is now closed (section 5.1.1).
        self._highest_id = sid
        headers = self._decode(block)
        if sid > self._goaway_last:
            self._remember(sid, _IGNORED)  # past our GOAWAY: discarded (section 6.8)
            return
        if bad_priority:
            self._stream_error(sid, _PROTOCOL_ERROR, events)
            return
        if len(self._streams) >= self.max_concurrent_streams:
            self.counters["refused_streams"] += 1
            self._stream_error(sid, _REFUSED_STREAM, events)
            return
        stream = _Stream(sid, self._peer_initial_window, self._recv_initial)
        if headers is None:
            stream.remote_closed = end_stream
            self._open(stream)
            events.append(RequestHeadersTooLarge(sid, end_stream))
            return
        event = self._request(stream, headers, end_stream)
        if event is None:
            self.counters["malformed_requests"] += 1
            self._stream_error(sid, _PROTOCOL_ERROR, events)
            return
        stream.remote_closed = end_stream
        self._open(stream)
        events.append(event)

    def _open(self, stream: _Stream) -> None:
        self._streams[stream.stream_id] = stream
        self._opened += 1
        if self._opened >= self._reset_window:  # a new window of the reset budget
            self._opened = 0
            self._resets = 0
        credit = self._flood_credit + _CREDIT_PER_REQUEST
        self._flood_credit = credit if credit < self._flood_burst else self._flood_burst
        if stream.stream_id >= _HIGH_WATER and self._shutdown_phase < 2:
            self.counters["stream_id_exhaustion"] += 1
            self._final_goaway()

    def _request(
        self, stream: _Stream, headers: list[tuple[bytes, bytes]], end_stream: bool
    ) -> RequestReceived | None:
        """The request's event, or None if it is malformed (sections 8.2 and 8.3)."""
        method = scheme = path = authority = protocol = None
        count = len(headers)
        index = 0
        while index < count:
            field = headers[index]
            name = field[0]
            if not name or name[0] != 0x3A:  # the pseudo-header fields come first
                break
            value = field[1]
            if _bad_value(value):
                return None
            if name == b":method":
                if method is not None:
                    return None
                method = value
            elif name == b":path":
                if path is not None:
                    return None
                path = value
            elif name == b":scheme":
                if scheme is not None:
                    return None
                scheme = value
            elif name == b":authority":
                if authority is not None:
                    return None
                authority = value
            elif name == b":protocol":
                if protocol is not None:
                    return None
                protocol = value
            else:  # :status or an unknown pseudo-header
                return None
            index += 1
        pseudo = index
        cookies = 0
        content_length = -1
        while index < count:
            field = headers[index]
            name = field[0]
            value = field[1]
            # A pseudo-header after a regular field fails here: a colon is no name byte.
            if _bad_name(name) or _bad_value(value) or _forbidden(name, value):
                return None
            if name == b"content-length":
                if content_length >= 0:
                    return None
                content_length = _parse_length(value)
                if content_length < 0:
                    return None
            elif name == b"cookie":
                cookies += 1
            index += 1
        if method is None or not method:
            return None
        if method == b"CONNECT":
            if protocol is None:
                # Section 8.5: only :method and :authority.
                if scheme is not None or path is not None or not authority:
                    return None
            elif not self.enable_connect_protocol or not scheme or not path or not authority:
                return None  # RFC 8441 section 4
        else:
            if protocol is not None or not scheme or not path:
                return None
            if scheme == b"http" or scheme == b"https":
                # Section 8.3.1: an origin-form path, or "*" for OPTIONS; no userinfo.
                if path[0] != 0x2F and not (path == b"*" and method == b"OPTIONS"):
                    return None
                if authority is not None and b"@" in authority:
                    return None
        if end_stream and content_length > 0:
            return None  # section 8.1.1: content-length promises data that can't come
        fields = headers[pseudo:] if pseudo else headers
        if cookies > 1:
            fields = _join_cookies(fields)
        stream.content_length = content_length
        return RequestReceived(
            stream.stream_id,
            method,
            scheme,
            path,
            authority,
            protocol,
            fields,
            content_length,
            end_stream,
        )

    def _trailers(
        self, stream: _Stream, block: bytes, end_stream: bool, events: list[Event]
    ) -> None:
        headers = self._decode(block)
        sid = stream.stream_id
        if stream.remote_closed:
            self._stream_error(sid, _STREAM_CLOSED, events)  # section 5.1, half-closed
            return
        if headers is None:
            self._stream_error(sid, _ENHANCE_YOUR_CALM, events)
            return
        if not end_stream:  # section 8.1: only trailers may follow the request's header block
            self.counters["malformed_requests"] += 1
            self._stream_error(sid, _PROTOCOL_ERROR, events)
            return
        for field in headers:
            name = field[0]
            value = field[1]
            if _bad_name(name) or _bad_value(value) or _forbidden(name, value):
                self.counters["malformed_requests"] += 1
                self._stream_error(sid, _PROTOCOL_ERROR, events)
                return
        if stream.content_length >= 0 and stream.received != stream.content_length:
            self.counters["malformed_requests"] += 1
            self._stream_error(sid, _PROTOCOL_ERROR, events)
            return
        stream.remote_closed = True
        events.append(TrailersReceived(sid, _join_cookies(headers)))
        if stream.local_closed:
            self._close(stream, _ENDED)

    def _on_data(self, sid: int, flags: int, payload: bytes, events: list[Event]) -> None:
        if sid == 0:
            raise H2ProtocolError(_PROTOCOL_ERROR, "DATA on stream 0")
        length = len(payload)  # all of it counts against flow control, padding too (6.9.1)
        start = 0
        pad = 0
        if flags & _PADDED:
            if length < 1:
                raise H2ProtocolError(_FRAME_SIZE_ERROR, "DATA too short for its padding")
            pad = payload[0]
            if pad >= length:
                raise H2ProtocolError(_PROTOCOL_ERROR, "DATA padding longer than the frame")
            start = 1
        stream = self._streams.get(sid)
        if stream is None and (sid > self._highest_id or not sid & 1):
            raise H2ProtocolError(_PROTOCOL_ERROR, f"DATA on idle stream {sid}")
        if length > self._conn_recv_window:
            raise H2ProtocolError(_FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self._conn_recv_window -= length
        if stream is None:
            self._credit_connection(length)  # discarded: its window comes back at once
            kind = self._closed.get(sid, 0)
            if kind in (_RESET_BY_US, _IGNORED):
                return
            if kind == _RESET_BY_PEER:
                self._stream_error(sid, _STREAM_CLOSED, events)
                return
            raise H2ProtocolError(_STREAM_CLOSED, f"DATA on closed stream {sid}")
        if stream.remote_closed:
            self._credit_connection(length)
            self._stream_error(sid, _STREAM_CLOSED, events)
            return
        if length > stream.recv_window:
            self._credit_connection(length)
            self._stream_error(sid, _FLOW_CONTROL_ERROR, events)
            return
        stream.recv_window -= length
        size = length - start - pad
        data = payload if start == 0 else payload[start : start + size]
        end_stream = flags & _END_STREAM != 0
        received = stream.received + size
        stream.received = received
        if stream.content_length >= 0 and (
            received > stream.content_length or (end_stream and received != stream.content_length)
        ):
            self.counters["malformed_requests"] += 1
            self._credit_connection(length)
            self._stream_error(sid, _PROTOCOL_ERROR, events)
            return
        if size == 0 and not end_stream:
            self._charge("empty_data_flood")  # no data, no end: it only costs us work
        stream.unacked += size
        if end_stream:
            stream.remote_closed = True
        events.append(DataReceived(sid, data, length, end_stream))
        if length != size:  # the padding (and its length byte) is credited back at once
            self._credit_connection(length - size)
            self._credit_stream(stream, length - size)
        if end_stream and stream.local_closed:
            self._close(stream, _ENDED)

    def _on_window_update(self, sid: int, payload: bytes, events: list[Event]) -> None:
        if len(payload) != 4:
            raise H2ProtocolError(_FRAME_SIZE_ERROR, "WINDOW_UPDATE of a length other than 4")
        self._charge("window_update_flood")
        increment = (
            ((payload[0] & 0x7F) << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]
        )
        if sid == 0:
            if increment == 0:
                raise H2ProtocolError(_PROTOCOL_ERROR, "a connection WINDOW_UPDATE of 0")
            window = self._conn_send_window + increment
            if window > _MAX_WINDOW:
                raise H2ProtocolError(_FLOW_CONTROL_ERROR, "the connection window overflows")
            self._conn_send_window = window
            if self._conn_blocked and window > 0:
                self._conn_blocked = False
                events.append(WindowOpened(0))
            return
        stream = self._streams.get(sid)
        if stream is None:
            if sid > self._highest_id or not sid & 1:
                raise H2ProtocolError(_PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {sid}")
            return  # a closed stream: allowed to arrive late (section 5.1), ignored
        if increment == 0:
            self._stream_error(sid, _PROTOCOL_ERROR, events)
            return
        window = stream.send_window + increment
        if window > _MAX_WINDOW:
            self._stream_error(sid, _FLOW_CONTROL_ERROR, events)
            return
        stream.send_window = window
        if stream.blocked and window > 0:
            stream.blocked = False
            events.append(WindowOpened(sid))

    def _on_settings(self, sid: int, flags: int, payload: bytes, events: list[Event]) -> None:
        if sid != 0:
            raise H2ProtocolError(_PROTOCOL_ERROR, "SETTINGS on a stream")
        length = len(payload)
        if flags & _ACK:
            if length:
                raise H2ProtocolError(_FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload")
            if not self._settings_acked:
                self._apply_own_settings()
            events.append(SettingsAcknowledged())
            return
        if length % 6:
            raise H2ProtocolError(_FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6 bytes")
        self._charge("settings_flood")
        for offset in range(0, length, 6):
            ident = (payload[offset] << 8) | payload[offset + 1]
            value = payload[offset + 2]  # a 64-bit C integer in the compiled build: no overflow
            value = (value << 24) | (payload[offset + 3] << 16) | (payload[offset + 4] << 8)
            value |= payload[offset + 5]
            if ident == _INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise H2ProtocolError(_FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large")
                self._change_initial_window(value, events)
            elif ident == _MAX_FRAME_SIZE:
                if value < _MIN_FRAME_SIZE or value > _MAX_FRAME_LIMIT:
                    raise H2ProtocolError(_PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
                self._peer_max_frame_size = value
            elif ident == _HEADER_TABLE_SIZE:
                self._encoder.set_max_table_size(value)
            elif ident == _MAX_HEADER_LIST_SIZE:
                self._peer_max_header_list_size = value
            elif (
                ident in (_ENABLE_PUSH, _ENABLE_CONNECT_PROTOCOL, _NO_RFC7540_PRIORITIES)
                and value > 1
            ):
                raise H2ProtocolError(_PROTOCOL_ERROR, f"setting {ident} is not 0 or 1")
            # MAX_CONCURRENT_STREAMS limits streams we'd open (we open none); others: 6.5.2.
        self._write_frame(_SETTINGS, _ACK, 0, b"")

    def _change_initial_window(self, value: int, events: list[Event]) -> None:
        """Section 6.9.2: every stream's send window moves by the change, maybe below 0."""
        delta = value - self._peer_initial_window
        self._peer_initial_window = value
        if not delta:
            return
        for stream in self._streams.values():
            window = stream.send_window + delta
            if window > _MAX_WINDOW:
                raise H2ProtocolError(_FLOW_CONTROL_ERROR, "a stream window overflows")
            stream.send_window = window
            if delta > 0 and stream.blocked and window > 0:
                stream.blocked = False
                events.append(WindowOpened(stream.stream_id))

    def _apply_own_settings(self) -> None:
        """Our SETTINGS are acknowledged: the values we announced are in force."""
        self._settings_acked = True
        if self._header_table_size != 4096:
            self._decoder.set_max_table_size(self._header_table_size)
        delta = self._initial_window - self._recv_initial
        if delta:
            for stream in self._streams.values():
                stream.recv_window += delta
            self._recv_initial = self._initial_window

    def _on_rst_stream(self, sid: int, payload: bytes, events: list[Event]) -> None:
        if sid == 0:
            raise H2ProtocolError(_PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise H2ProtocolError(_FRAME_SIZE_ERROR, "RST_STREAM of a length other than 4")
        stream = self._streams.get(sid)
        if stream is None:
            if sid > self._highest_id or not sid & 1:
                raise H2ProtocolError(_PROTOCOL_ERROR, f"RST_STREAM on idle stream {sid}")
            return  # closed: it crossed our END_STREAM or RST_STREAM (section 5.1)
        code = payload[0]  # 64-bit in the compiled build: codes may use all 32 bits
        code = (code << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]
        self.counters["client_resets"] += 1
        self._close(stream, _RESET_BY_PEER)
        events.append(StreamReset(sid, code, True))
        self._count_reset()

    def _on_ping(self, sid: int, flags: int, payload: bytes, events: list[Event]) -> None:
        if sid != 0:
            raise H2ProtocolError(_PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise H2ProtocolError(_FRAME_SIZE_ERROR, "PING of a length other than 8")
        if flags & _ACK:
            if payload == _SHUTDOWN_PING and self._shutdown_phase == 1:
                self._final_goaway()
            else:
                events.append(PingAcked(payload))
            return
        self._charge("ping_flood")
        self._write_frame(_PING, _ACK, 0, payload)

    def _on_priority(self, sid: int, payload: bytes, events: list[Event]) -> None:
        if sid == 0:
            raise H2ProtocolError(_PROTOCOL_ERROR, "PRIORITY on stream 0")
        self._charge("priority_flood")
        stream = self._streams.get(sid)
        if len(payload) != 5:
            # A stream error (section 6.3), but no RST_STREAM may go to an idle stream (5.1).
            if stream is None:
                raise H2ProtocolError(_FRAME_SIZE_ERROR, "PRIORITY of a length other than 5")
            self._stream_error(sid, _FRAME_SIZE_ERROR, events)
            return
        dependency = (
            ((payload[0] & 0x7F) << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]
        )
        if dependency == sid and stream is not None:
            self._stream_error(sid, _PROTOCOL_ERROR, events)
        # Otherwise ignored: RFC 9113 section 5.3 deprecates these signals.

    def _on_goaway(self, sid: int, payload: bytes, events: list[Event]) -> None:
        if sid != 0:
            raise H2ProtocolError(_PROTOCOL_ERROR, "GOAWAY on a stream")
        if len(payload) < 8:
            raise H2ProtocolError(_FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
        last = ((payload[0] & 0x7F) << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]
        code = payload[4]
        code = (code << 24) | (payload[5] << 16) | (payload[6] << 8) | payload[7]
        events.append(GoAwayReceived(code, last, payload[8:]))

    # -- budgets ---------------------------------------------------------------------------------

    def _charge(self, kind: str) -> None:
        """One control frame that costs work without carrying a request (see the docstring)."""
        credit = self._flood_credit - 1.0
        if credit < 0.0:
            now = self._clock()
            credit += (now - self._flood_time) * self._flood_rate
            self._flood_time = now
            if credit > self._flood_burst:
                credit = self._flood_burst
            if credit < 0.0:
                self.counters[kind] += 1
                raise H2ProtocolError(_ENHANCE_YOUR_CALM, f"too many frames ({kind})")
        self._flood_credit = credit

    def _count_reset(self) -> None:
        """Rapid Reset (CVE-2023-44487) and MadeYouReset: one budget for both."""
        self._resets += 1
        if self._resets > self._reset_limit:
            self.counters["reset_flood"] += 1
            raise H2ProtocolError(_ENHANCE_YOUR_CALM, "too many streams reset")

    # -- stream bookkeeping ----------------------------------------------------------------------

    def _stream_error(self, sid: int, code: int, events: list[Event]) -> None:
        """Section 5.4.2: RST_STREAM; the application hears of it if it knew the stream."""
        self._write_frame(_RST_STREAM, 0, sid, _pack_u32(code))
        self.counters["stream_errors"] += 1
        stream = self._streams.get(sid)
        if stream is None:
            self._remember(sid, _RESET_BY_US)
            return
        self._close(stream, _RESET_BY_US)
        events.append(StreamReset(sid, code, False))
        self.counters["server_resets"] += 1
        self._count_reset()

    def _close(self, stream: _Stream, kind: int) -> None:
        del self._streams[stream.stream_id]
        if stream.unacked:
            # Delivered but never acknowledged: the connection window comes back now, and a
            # late acknowledgement for this stream is ignored.
            self._credit_connection(stream.unacked)
        self._remember(stream.stream_id, kind)

    def _remember(self, sid: int, kind: int) -> None:
        closed = self._closed
        closed[sid] = kind
        if len(closed) > _RECENTLY_CLOSED:
            del closed[next(iter(closed))]

    def _credit_connection(self, size: int) -> None:
        credit = self._conn_recv_credit + size
        if credit >= self._connection_window >> 1:
            self._write_frame(_WINDOW_UPDATE, 0, 0, _pack_u32(credit))
            self._conn_recv_window += credit
            credit = 0
        self._conn_recv_credit = credit

    def _credit_stream(self, stream: _Stream, size: int) -> None:
        if stream.remote_closed:
            return  # no more DATA can come: no window to give back
        credit = stream.recv_credit + size
        if credit >= self._recv_initial >> 1:
            self._write_frame(_WINDOW_UPDATE, 0, stream.stream_id, _pack_u32(credit))
            stream.recv_window += credit
            credit = 0
        stream.recv_credit = credit

    def acknowledge_received_data(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` bytes of the stream's DATA: give the window back
        (batched).  Acknowledging a closed stream's data is harmless: it was credited when the
        stream closed."""
        stream = self._streams.get(stream_id)
        if stream is None or size <= 0 or self._state == _CLOSED:
            return
        if size > stream.unacked:
            size = stream.unacked
        stream.unacked -= size
        self._credit_connection(size)
        self._credit_stream(stream, size)

    # -- output ----------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Every byte the codec has to send, once; b"" when there is none."""
        out = self._out
        if not out:
            return b""
        data = bytes(out)
        del out[:]
        return data

    def _write_frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        length = len(payload)
        out = self._out
        # The 9-byte frame header (section 4.1) a byte at a time: in the compiled build each
        # append is a C call, where packing a struct makes and frees a bytes object per frame.
        out.append(length >> 16)
        out.append((length >> 8) & 0xFF)
        out.append(length & 0xFF)
        out.append(ftype)
        out.append(flags)
        out.append(sid >> 24)
        out.append((sid >> 16) & 0xFF)
        out.append((sid >> 8) & 0xFF)
        out.append(sid & 0xFF)
        out += payload

    def _send_preface(self) -> None:
        """Section 3.4: our SETTINGS first; then a WINDOW_UPDATE opens the connection's
        receive window beyond the 65535 bytes every connection starts with (6.9.2)."""
        settings = [
            _pack_setting(_MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            _pack_setting(_INITIAL_WINDOW_SIZE, self._initial_window),
            _pack_setting(_MAX_HEADER_LIST_SIZE, self._max_header_list_size),
        ]
        if self._max_frame_size != _MIN_FRAME_SIZE:
            settings.append(_pack_setting(_MAX_FRAME_SIZE, self._max_frame_size))
        if self._header_table_size != 4096:
            settings.append(_pack_setting(_HEADER_TABLE_SIZE, self._header_table_size))
        if self.enable_connect_protocol:
            settings.append(_pack_setting(_ENABLE_CONNECT_PROTOCOL, 1))
        self._write_frame(_SETTINGS, 0, 0, b"".join(settings))
        if self._connection_window > _DEFAULT_WINDOW:
            increment = self._connection_window - _DEFAULT_WINDOW
            self._write_frame(_WINDOW_UPDATE, 0, 0, _pack_u32(increment))

    def _sendable(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed or self._state == _CLOSED:
            raise StreamClosedError(stream_id)
        return stream

    def send_headers(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]], end_stream: bool = False
    ) -> None:
        """A response's header block (``:status`` first), or 1xx informational ones; names
        must be lowercase (``ValueError``).  Connection-specific fields (section 8.2.2) that
        an HTTP/1.1 application may set are dropped."""
        stream = self._sendable(stream_id)
        fields = headers if type(headers) is list else list(headers)
        drop = False
        for field in fields:
            name = field[0]
            if _has_upper(name):
                raise ValueError(f"an uppercase field name: {name!r}")
            if name and name[0] != 0x3A and _forbidden(name, b""):
                drop = True
        if drop:
            fields = [
                field for field in fields if field[0][:1] == b":" or not _forbidden(field[0], b"")
            ]
        block = self._encoder.encode(fields)
        self._write_block(stream_id, block, end_stream)
        if not stream.headers_sent and (
            end_stream or not fields or fields[0][0] != b":status" or fields[0][1][:1] != b"1"
        ):
            stream.headers_sent = True  # the final response head: DATA may follow (not a 1xx)
        if end_stream:
            self._end_local(stream)

    def send_trailers(self, stream_id: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """The response's trailer fields; they end the stream.  No pseudo-header fields."""
        fields = headers if type(headers) is list else list(headers)
        for field in fields:
            if field[0][:1] == b":":
                raise ValueError("pseudo-header fields in trailers")
        self.send_headers(stream_id, fields, True)

    def _write_block(self, sid: int, block: bytes, end_stream: bool) -> None:
        """HEADERS, with CONTINUATIONs when the block is longer than the peer's frames."""
        limit = self._peer_max_frame_size
        flags = _END_STREAM if end_stream else 0
        size = len(block)
        if size <= limit:
            self._write_frame(_HEADERS, flags | _END_HEADERS, sid, block)
            return
        self._write_frame(_HEADERS, flags, sid, block[:limit])
        offset = limit
        while offset < size:
            piece = block[offset : offset + limit]
            offset += limit
            self._write_frame(_CONTINUATION, _END_HEADERS if offset >= size else 0, sid, piece)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> int:
        """Send as much of ``data`` as the windows allow, in frames the peer accepts; how many
        bytes went.  ``end_stream`` takes effect only if all of them went; after a short send,
        wait for ``WindowOpened`` (the stream's, or 0) and send the rest.  DATA before the
        final response HEADERS (section 8.1) is a caller's bug: ``ValueError``."""
        stream = self._sendable(stream_id)
        if not stream.headers_sent:
            raise ValueError(f"DATA on stream {stream_id} before its response HEADERS")
        size = len(data)
        window = stream.send_window
        if self._conn_send_window < window:
            window = self._conn_send_window
        if window < 0:
            window = 0
        count = size if size <= window else window
        finish = end_stream and count == size
        if count == 0 and not finish:
            if size:
                stream.blocked = True
                if self._conn_send_window <= 0:
                    self._conn_blocked = True
            return 0
        limit = self._peer_max_frame_size
        frames = 0
        if count <= limit:
            self._write_frame(
                _DATA,
                _END_STREAM if finish else 0,
                stream_id,
                data if count == size else data[:count],
            )
            frames = 1
        else:
            offset = 0
            while offset < count:
                stop = offset + limit if offset + limit < count else count
                self._write_frame(
                    _DATA,
                    _END_STREAM if finish and stop == count else 0,
                    stream_id,
                    data[offset:stop],
                )
                offset = stop
                frames += 1
        stream.send_window -= count
        self._conn_send_window -= count
        credit = self._flood_credit + frames * _CREDIT_PER_DATA_FRAME
        self._flood_credit = credit if credit < self._flood_burst else self._flood_burst
        if count < size:
            stream.blocked = True
            if self._conn_send_window <= 0:
                self._conn_blocked = True
        if finish:
            self._end_local(stream)
        return count

    def _end_local(self, stream: _Stream) -> None:
        stream.local_closed = True
        if stream.remote_closed:
            self._close(stream, _ENDED)

    def reset_stream(self, stream_id: int, error_code: int = _CANCEL) -> None:
        """Abandon a stream (RST_STREAM); e.g. NO_ERROR after a complete response to stop an
        upload the response didn't need (section 8.1).  A closed stream: nothing to do."""
        stream = self._streams.get(stream_id)
        if stream is None or self._state == _CLOSED:
            return
        self._write_frame(_RST_STREAM, 0, stream_id, _pack_u32(error_code))
        self._close(stream, _RESET_BY_US)

    def ping(self, payload: bytes = b"\0" * 8) -> None:
        """A keep-alive PING; ``PingAcked`` brings its 8-byte payload back."""
        if len(payload) != 8:
            raise ValueError("a PING payload is 8 bytes")
        if self._state != _CLOSED:
            self._write_frame(_PING, 0, 0, payload)

    def close_connection(
        self, error_code: int = _NO_ERROR, last_stream_id: int = -1, additional_data: bytes = b""
    ) -> None:
        """GOAWAY at once and stop; ``last_stream_id`` defaults to the highest stream seen."""
        if self._state == _CLOSED:
            return
        last = self._highest_id if last_stream_id < 0 else last_stream_id
        self._write_frame(_GOAWAY, 0, 0, _pack_goaway(last, error_code) + additional_data)
        self._state = _CLOSED
        self._streams.clear()

    def begin_graceful_shutdown(self) -> None:
        """Section 6.8's two-phase shutdown: GOAWAY with the largest stream id and a PING now;
        when the PING comes back, every stream the client had sent is here, and the final
        GOAWAY names the last one.  Streams up to it finish; ``drained`` then says close.
        A second call sends the final GOAWAY without waiting (a timeout of the layer)."""
        if self._state == _CLOSED or self._shutdown_phase == 2:
            return
        if self._shutdown_phase == 1:
            self._final_goaway()
            return
        self._shutdown_phase = 1
        self._write_frame(_GOAWAY, 0, 0, _pack_goaway(_MAX_STREAM_ID, _NO_ERROR))
        self._write_frame(_PING, 0, 0, _SHUTDOWN_PING)

    def _final_goaway(self) -> None:
        self._shutdown_phase = 2
        self._goaway_last = self._highest_id
        self._write_frame(_GOAWAY, 0, 0, _pack_goaway(self._highest_id, _NO_ERROR))

    def _terminate(self, code: int, reason: str, events: list[Event]) -> None:
        """A connection error: GOAWAY with the last stream we saw, then ignore the input."""
        self._write_frame(_GOAWAY, 0, 0, _pack_goaway(self._highest_id, code))
        self._state = _CLOSED
        self._streams.clear()
        self._buf = b""
        events.append(ConnectionTerminated(code, self._highest_id, reason))


def _join_cookies(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Section 8.2.3: the cookie fields joined into one with "; ", after the others."""
    cookies = [field[1] for field in fields if field[0] == b"cookie"]
    if len(cookies) < 2:
        return fields
    joined = [field for field in fields if field[0] != b"cookie"]
    joined.append((b"cookie", b"; ".join(cookies)))
    return joined
