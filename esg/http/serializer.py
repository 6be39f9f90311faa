"""Response bytes: status lines, validated header blocks and chunked framing (sans-IO).

Compiled twin ``esg.http._serializer_c``, typed by ``_serializer_c.pxd``.

The ASGI cycle hands this module what the app sent in ``http.response.start``; it returns the
header block as one bytes object (or, for HTTP/2, the checked fields) plus the facts framing
depends on.  A header the app sends with
a name that isn't a token, or a value holding CR, LF or NUL, raises ``InvalidResponse``: the
response must then never reach the wire, because a CR/LF in a header is a response split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

__all__ = [
    "InvalidResponse",
    "InvalidStatus",
    "ResponseHead",
    "accepts_trailers",
    "chunk",
    "date_line",
    "inspect_response_headers",
    "is_final_status",
    "not_a_final_status",
    "status_line",
    "trailer_section",
    "LAST_CHUNK",
    "CONTINUE_RESPONSE",
]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\r\n\x00]")

LAST_CHUNK = b"0\r\n\r\n"
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _build_status_lines() -> dict[int, bytes]:
    lines = {}
    for status in HTTPStatus:
        lines[status.value] = b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
    return lines


STATUS_LINES = _build_status_lines()


def status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``; esg answers HTTP/1.0 clients with its own version too."""
    line = STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def date_line(now: float | None = None) -> bytes:
    """The ``date`` header line for ``now`` (seconds since the epoch), IMF-fixdate."""
    return b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"


def chunk(body: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(body), body)


# Fields that frame or route a message: never sent as trailers (RFC 9110 section 6.5.1); an app's
# trailer with one of these names is dropped.
_NOT_TRAILERS = frozenset(
    [
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"upgrade",
        b"te",
        b"trailer",
        b"host",
    ]
)


def accepts_trailers(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's ``TE`` field lists ``trailers`` (RFC 9110 section 10.1.4): only
    then may an HTTP/1.1 response carry trailer fields.  ``headers``: lowercased names."""
    for name, value in headers:
        if name == b"te":
            for coding in value.split(b","):
                if coding.strip().lower() == b"trailers":
                    return True
    return False


def trailer_section(fields: Iterable[Any]) -> bytes:
    """The end of a chunked body with trailer fields: the last chunk, the fields, CRLF.

    The fields are checked as response headers are (``InvalidResponse``); framing fields are
    left out."""
    block = inspect_response_headers(200, _without_framing(fields), frozenset()).block
    return b"0\r\n" + block + b"\r\n"


def _without_framing(fields: Iterable[Any]) -> list[Any]:
    kept = []
    for field in fields:
        name = field[0]
        if isinstance(name, (bytes, bytearray)) and bytes(name).lower() in _NOT_TRAILERS:
            continue
        kept.append(field)
    return kept


class InvalidResponse(Exception):
    """The app sent something that must not reach the wire."""


class InvalidStatus(InvalidResponse):
    """The app's status is not one a response can have.

    Unlike a bad header, nothing of the response was written: the server can still answer 500.
    """


def is_final_status(status: Any) -> bool:
    """Whether ``status`` can be a response's: an int (an IntEnum too, a bool not) from 200 to
    599."""
    return isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599


def not_a_final_status(status: Any, message_type: str) -> InvalidStatus:
    """The error for ``status`` in ``message_type``, which needs a final status: an int from 200
    to 599.  A 1xx is informational: it is never the answer to a request, only a note before
    it, and a client that got one would go on waiting for the real response."""
    return InvalidStatus(
        f"Invalid HTTP status code {status!r} in '{message_type}': a response needs an int "
        "from 200 to 599."
    )


class ResponseHead:
    """What ``http.response.start`` said, checked and encoded."""

    __slots__ = (
        "status",
        "block",
        "fields",
        "content_length",
        "chunked",
        "close",
        "has_server",
        "has_date",
        "overridden",
    )

    def __init__(self, status: int) -> None:
        self.status = status
        self.block = b""  # "name: value\r\n" for every app header
        # For a structured host (HTTP/2) instead of the block: (lowercased name, value) bytes
        # pairs, without Transfer-Encoding; None when the block was made.
        self.fields: list[tuple[bytes, bytes]] | None = None
        self.content_length = -1  # -1: the app gave none
        self.chunked = False  # the app set Transfer-Encoding itself
        self.close = False  # the app asked for Connection: close
        self.has_server = False
        self.has_date = False
        self.overridden: set[bytes] | None = None  # names of default headers the app replaced


def inspect_response_headers(
    status: Any, headers: Iterable[Any], default_names: frozenset[bytes], structured: bool = False
) -> ResponseHead:
    """Validate ``http.response.start`` and encode its header block (``structured``: list its
    fields with their names lowercased instead, for HTTP/2, which has no use for the block).

    ``status`` may be any status code (100 to 599: the 101 of a WebSocket handshake too); the
    callers answering a request reject a 1xx themselves (``not_a_final_status``).
    ``default_names`` are the lowercased names of the server's ``--header`` defaults; an app
    header with one of those names replaces the default.
    """
    if type(status) is not int:
        if not isinstance(status, int) or isinstance(status, bool):
            raise InvalidStatus(f"Invalid HTTP status code {status!r} in response.")
        status = int(status)  # an IntEnum such as HTTPStatus.CREATED
    if not 100 <= status <= 599:  # RFC 9110 section 15: no status code lies outside
        raise InvalidStatus(f"Invalid HTTP status code {status!r} in response.")
    head = ResponseHead(status)
    parts: list[bytes] = []
    fields: list[tuple[bytes, bytes]] = []
    for header in headers:
        name, value = header
        if type(name) is not bytes or type(value) is not bytes:
            name, value = _coerce_header(name, value)
        lowered = _checked_names.get(name)
        if lowered is None:
            lowered = _check_name(name)
        if value not in _checked_values:
            _check_value(value)
        if lowered in _SPECIAL_NAMES:
            _note_special(head, lowered, value)
            if lowered == b"transfer-encoding":
                continue  # esg frames the body itself and writes its own header
        if lowered in default_names:
            if head.overridden is None:
                head.overridden = set()
            head.overridden.add(lowered)
        if structured:
            fields.append((lowered, value))
        else:
            parts += (name, b": ", value, b"\r\n")
    if head.chunked and head.content_length >= 0:
        # RFC 9112 section 6.2: never both; a client could frame the body either way.
        raise InvalidResponse("Response has both content-length and transfer-encoding.")
    if structured:
        head.fields = fields
    else:
        head.block = b"".join(parts)
    return head


# Apps send the same few header names and many of the same values on every response; once a
# name or value has been checked it is remembered, up to a bound, so a hostile app can't grow it.
_CHECKED_LIMIT = 4096
_checked_names: dict[bytes, bytes] = {}
_checked_values: set[bytes] = set()


def _check_name(name: bytes) -> bytes:
    """Validate a header name; returns it lowercased."""
    if _TOKEN.fullmatch(name) is None:
        raise InvalidResponse(f"Invalid HTTP header name {name!r} in response.")
    lowered = name.lower()
    if len(_checked_names) < _CHECKED_LIMIT:
        _checked_names[name] = lowered
    return lowered


def _check_value(value: bytes) -> None:
    if _FORBIDDEN_IN_VALUE.search(value) is not None:
        raise InvalidResponse(f"Invalid HTTP header value {value!r} in response.")
    if len(value) <= 256 and len(_checked_values) < _CHECKED_LIMIT:
        _checked_values.add(value)


_SPECIAL_NAMES = frozenset(
    [b"content-length", b"transfer-encoding", b"connection", b"server", b"date"]
)


def _note_special(head: ResponseHead, name: bytes, value: bytes) -> None:
    if name == b"content-length":
        text = value.strip()
        if not text.isdigit() or (head.content_length not in (-1, int(text))):
            raise InvalidResponse(f"Invalid content-length {value!r} in response.")
        head.content_length = int(text)
    elif name == b"transfer-encoding":
        # Only "chunked" means something esg can honour; a coding such as gzip would have to
        # be applied by esg, which it doesn't do.
        if value.strip().lower() != b"chunked":
            raise InvalidResponse(f"Unsupported transfer-encoding {value!r} in response.")
        head.chunked = True
    elif name == b"connection":
        head.close = b"close" in value.lower()
    elif name == b"server":
        head.has_server = True
    else:
        head.has_date = True


def _coerce_header(name: object, value: object) -> tuple[bytes, bytes]:
    """Accept bytearray/memoryview like bytes; anything else is the app's error."""
    if isinstance(name, (bytearray, memoryview)):
        name = bytes(name)
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if type(name) is not bytes or type(value) is not bytes:
        raise InvalidResponse(
            f"Response headers must be (bytes, bytes) pairs, got ({name!r}, {value!r})."
        )
    return name, value
