"""HTTP/2's wire vocabulary (RFC 9113 sections 4, 6, 7, 11): frame types, flags, error codes,
setting identifiers and their defaults and limits.

Names only: the frames themselves are read and written by ``esg.http2.connection``, whose
compiled twin keeps private C-typed copies of the numbers it needs, so parsing a frame header
is arithmetic on the input bytes rather than a call into this module.  The ``IntEnum`` classes
are for people and logs (``ErrorCode(7).name``); the codec compares plain integers.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CONNECTION_PREFACE",
    "DEFAULT_INITIAL_WINDOW_SIZE",
    "DEFAULT_MAX_FRAME_SIZE",
    "FRAME_HEADER_SIZE",
    "MAX_FRAME_SIZE_LIMIT",
    "MAX_STREAM_ID",
    "MAX_WINDOW_SIZE",
    "ErrorCode",
    "Flag",
    "FrameType",
    "SettingCode",
    "error_name",
]

# The client's connection preface (section 3.4), before its first SETTINGS frame.
CONNECTION_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER_SIZE = 9  # length (24 bits), type, flags, R + stream id (31 bits)

DEFAULT_MAX_FRAME_SIZE = 16384  # 2^14, section 4.2: every peer accepts at least this
MAX_FRAME_SIZE_LIMIT = (1 << 24) - 1  # the largest SETTINGS_MAX_FRAME_SIZE allowed
DEFAULT_INITIAL_WINDOW_SIZE = 65535  # section 6.9.2, for streams and the connection alike
MAX_WINDOW_SIZE = (1 << 31) - 1  # a flow-control window never exceeds it (section 6.9.1)
MAX_STREAM_ID = (1 << 31) - 1


class FrameType(IntEnum):
    """Frame types (section 6); any other type is ignored (section 4.1)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class Flag(IntEnum):
    """Frame flags; their meaning depends on the frame type, undefined ones are ignored."""

    END_STREAM = 0x1  # DATA, HEADERS
    ACK = 0x1  # SETTINGS, PING
    END_HEADERS = 0x4  # HEADERS, CONTINUATION
    PADDED = 0x8  # DATA, HEADERS
    PRIORITY = 0x20  # HEADERS: 5 bytes of RFC 7540 priority precede the field block


class ErrorCode(IntEnum):
    """Error codes of RST_STREAM and GOAWAY (section 7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class SettingCode(IntEnum):
    """SETTINGS parameters (section 6.5.2, RFC 8441 and RFC 9218); unknown ones are ignored."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 8441: extended CONNECT (WebSockets over HTTP/2)
    NO_RFC7540_PRIORITIES = 0x9  # RFC 9218


def error_name(code: int) -> str:
    """``PROTOCOL_ERROR`` for 1; an unknown code (allowed on the wire) as ``0x2a``."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"{code:#x}"
