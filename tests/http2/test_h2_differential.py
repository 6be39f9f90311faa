"""esg's verdicts on malformed client bytes against the ``h2`` package as a server (an oracle).

Each case is the same byte stream (after the client preface and SETTINGS) fed to esg's codec
(both builds) and to ``h2.connection.H2Connection(client_side=False)``; the verdict is the
connection error's code (GOAWAY / h2's ``ProtocolError``), the first stream error's code
(RST_STREAM), or "accepted".  The expected verdicts are esg's, from RFC 9113; where h2 answers
differently the case is marked xfail (strict) for h2 with the clause and what h2 does, so the
disagreements are listed here and esg's expectations are never weakened to fit the library.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import h2.config
import h2.connection
import h2.exceptions
import pytest

from tests.http2 import wire
from tests.http2.wire import GET, Wire, data, frame, resets, settings

NO, PROTOCOL, FLOW, CLOSED, SIZE, REFUSED, COMPRESSION = 0, 1, 3, 5, 6, 7, 9
POST = [(":method", "POST"), (":scheme", "https"), (":path", "/"), (":authority", "a")]

Verdict = tuple[str, int]
ACCEPTED: Verdict = ("accepted", 0)


def conn_error(code: int) -> Verdict:
    return ("connection", code)


def stream_error(code: int) -> Verdict:
    return ("stream", code)


def bad(*fields: tuple[str, str]) -> Callable[[Wire], bytes]:
    return lambda w: w.headers(1, list(fields))


def get_with(*extra: tuple[str, str]) -> Callable[[Wire], bytes]:
    return lambda w: w.headers(1, [*GET, *extra])


def raw(payload: bytes) -> Callable[[Wire], bytes]:
    return lambda w: payload


# name: (the client's bytes after its preface, esg's verdict)
CASES: dict[str, tuple[Callable[[Wire], bytes], Verdict]] = {
    "a plain GET": (lambda w: w.headers(1), ACCEPTED),
    "unknown frame type": (raw(frame(0x42, 0xFF, 0, b"xyz")), ACCEPTED),
    "frame above MAX_FRAME_SIZE": (raw(frame(wire.DATA, 0, 1, b"x" * 16385)), conn_error(SIZE)),
    "HEADERS on stream 0": (raw(frame(wire.HEADERS, 5, 0, b"\x82")), conn_error(PROTOCOL)),
    "HEADERS on an even stream": (
        raw(frame(wire.HEADERS, 5, 2, b"\x82\x86\x84")),
        conn_error(PROTOCOL),
    ),
    "DATA on an idle stream": (raw(data(1, b"x")), conn_error(PROTOCOL)),
    "DATA on stream 0": (raw(data(0, b"x")), conn_error(PROTOCOL)),
    "CONTINUATION without HEADERS": (
        raw(frame(wire.CONTINUATION, 4, 1, b"\x82")),
        conn_error(PROTOCOL),
    ),
    "PING inside a header block": (
        lambda w: frame(wire.HEADERS, 1, 1, w.block(GET)) + wire.ping(),
        conn_error(PROTOCOL),
    ),
    "PUSH_PROMISE from a client": (
        raw(frame(wire.PUSH_PROMISE, 4, 1, b"\0\0\0\2\x82")),
        conn_error(PROTOCOL),
    ),
    "SETTINGS on a stream": (raw(frame(wire.SETTINGS, 0, 1)), conn_error(PROTOCOL)),
    "SETTINGS of 5 bytes": (raw(frame(wire.SETTINGS, 0, 0, b"\0" * 5)), conn_error(SIZE)),
    "SETTINGS ACK with a payload": (raw(frame(wire.SETTINGS, 1, 0, b"\0" * 6)), conn_error(SIZE)),
    "ENABLE_PUSH = 2": (raw(settings((2, 2))), conn_error(PROTOCOL)),
    "INITIAL_WINDOW_SIZE = 2^31": (raw(settings((4, 1 << 31))), conn_error(FLOW)),
    "MAX_FRAME_SIZE below 16384": (raw(settings((5, 16383))), conn_error(PROTOCOL)),
    "MAX_FRAME_SIZE above 2^24-1": (raw(settings((5, 1 << 24))), conn_error(PROTOCOL)),
    "unknown setting": (raw(settings((0x99, 5))), ACCEPTED),
    "PING of 7 bytes": (raw(frame(wire.PING, 0, 0, b"1234567")), conn_error(SIZE)),
    "PING on a stream": (raw(frame(wire.PING, 0, 1, b"12345678")), conn_error(PROTOCOL)),
    "GOAWAY on a stream": (raw(frame(wire.GOAWAY, 0, 1, b"\0" * 8)), conn_error(PROTOCOL)),
    "WINDOW_UPDATE of 0 on the connection": (raw(wire.window_update(0, 0)), conn_error(PROTOCOL)),
    "WINDOW_UPDATE of 0 on a stream": (
        lambda w: w.headers(1, POST, end_stream=False) + wire.window_update(1, 0),
        stream_error(PROTOCOL),
    ),
    "WINDOW_UPDATE of 3 bytes": (raw(frame(wire.WINDOW_UPDATE, 0, 0, b"\0\0\1")), conn_error(SIZE)),
    "WINDOW_UPDATE on an idle stream": (raw(wire.window_update(1, 1)), conn_error(PROTOCOL)),
    "connection window overflow": (raw(wire.window_update(0, (1 << 31) - 1)), conn_error(FLOW)),
    "stream window overflow": (
        lambda w: w.headers(1, POST, end_stream=False) + wire.window_update(1, (1 << 31) - 1),
        stream_error(FLOW),
    ),
    "RST_STREAM on an idle stream": (raw(wire.rst(1)), conn_error(PROTOCOL)),
    "RST_STREAM on stream 0": (raw(wire.rst(0)), conn_error(PROTOCOL)),
    "RST_STREAM of 3 bytes": (raw(frame(wire.RST_STREAM, 0, 1, b"\0\0\0")), conn_error(SIZE)),
    "PRIORITY on stream 0": (raw(wire.priority(0)), conn_error(PROTOCOL)),
    "PRIORITY on an idle stream": (raw(wire.priority(5, 3)), ACCEPTED),
    "PRIORITY of 4 bytes on an open stream": (
        lambda w: w.headers(1, POST, end_stream=False) + frame(wire.PRIORITY, 0, 1, b"\0\0\0\0"),
        stream_error(SIZE),
    ),
    "PRIORITY depending on itself": (
        lambda w: w.headers(1, POST, end_stream=False) + wire.priority(1, 1),
        stream_error(PROTOCOL),
    ),
    "HEADERS depending on itself": (lambda w: w.headers(1, depends_on=1), stream_error(PROTOCOL)),
    "broken HPACK": (
        raw(frame(wire.HEADERS, 5, 1, b"\xff\xff\xff\xff\xff\xff")),
        conn_error(COMPRESSION),
    ),
    "HEADERS padding too long": (
        raw(frame(wire.HEADERS, 5 | 8, 1, b"\x05\x82")),
        conn_error(PROTOCOL),
    ),
    "DATA padding too long": (
        lambda w: w.headers(1, POST, end_stream=False) + frame(wire.DATA, 8, 1, b"\x03ab"),
        conn_error(PROTOCOL),
    ),
    "padded HEADERS and DATA": (
        lambda w: w.headers(1, POST, end_stream=False, pad=7) + data(1, b"ab", True, pad=5),
        ACCEPTED,
    ),
    "DATA after END_STREAM": (lambda w: w.headers(1) + data(1, b"x"), stream_error(CLOSED)),
    "HEADERS after END_STREAM": (lambda w: w.headers(1) + w.headers(1), stream_error(CLOSED)),
    "a decreasing stream id": (lambda w: w.headers(5) + w.headers(3), conn_error(PROTOCOL)),
    "HEADERS on a stream that ended": (
        lambda w: w.headers(1) + w.headers(3) + data(1, b"x"),
        stream_error(CLOSED),
    ),
    "second HEADERS without END_STREAM": (
        lambda w: (
            w.headers(1, POST, end_stream=False) + w.headers(1, [("x", "y")], end_stream=False)
        ),
        stream_error(PROTOCOL),
    ),
    "trailers": (
        lambda w: w.headers(1, POST, end_stream=False) + data(1, b"x") + w.headers(1, [("x", "y")]),
        ACCEPTED,
    ),
    "trailers with a pseudo-header": (
        lambda w: w.headers(1, POST, end_stream=False) + w.headers(1, [(":path", "/")]),
        stream_error(PROTOCOL),
    ),
    "content-length too small": (
        lambda w: (
            w.headers(1, [*POST, ("content-length", "1")], end_stream=False) + data(1, b"ab", True)
        ),
        stream_error(PROTOCOL),
    ),
    "content-length too large": (
        lambda w: (
            w.headers(1, [*POST, ("content-length", "3")], end_stream=False) + data(1, b"ab", True)
        ),
        stream_error(PROTOCOL),
    ),
    "DATA beyond the stream window": (
        lambda w: (
            w.headers(1, POST, end_stream=False)
            + b"".join(data(1, b"x" * 16384) for _ in range(4))
            + data(1, b"x" * 16384)
        ),
        stream_error(FLOW),
    ),
    "no :method": (
        bad((":scheme", "https"), (":path", "/"), (":authority", "a")),
        stream_error(PROTOCOL),
    ),
    "no :path": (
        bad((":method", "GET"), (":scheme", "https"), (":authority", "a")),
        stream_error(PROTOCOL),
    ),
    "empty :path": (
        bad((":method", "GET"), (":scheme", "https"), (":path", ""), (":authority", "a")),
        stream_error(PROTOCOL),
    ),
    "no :scheme": (
        bad((":method", "GET"), (":path", "/"), (":authority", "a")),
        stream_error(PROTOCOL),
    ),
    "two :method": (get_with((":method", "GET")), stream_error(PROTOCOL)),
    "pseudo-header after a regular field": (
        bad(
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "a"),
            ("a", "b"),
            (":path", "/"),
        ),
        stream_error(PROTOCOL),
    ),
    ":status in a request": (get_with((":status", "200")), stream_error(PROTOCOL)),
    "unknown pseudo-header": (get_with((":foo", "x")), stream_error(PROTOCOL)),
    "uppercase field name": (get_with(("X-Foo", "x")), stream_error(PROTOCOL)),
    "space in a field name": (get_with(("x foo", "x")), stream_error(PROTOCOL)),
    "connection field": (get_with(("connection", "close")), stream_error(PROTOCOL)),
    "keep-alive field": (get_with(("keep-alive", "5")), stream_error(PROTOCOL)),
    "proxy-connection field": (get_with(("proxy-connection", "x")), stream_error(PROTOCOL)),
    "transfer-encoding field": (get_with(("transfer-encoding", "chunked")), stream_error(PROTOCOL)),
    "upgrade field": (get_with(("upgrade", "h2c")), stream_error(PROTOCOL)),
    "te: gzip": (get_with(("te", "gzip")), stream_error(PROTOCOL)),
    "te: trailers": (get_with(("te", "trailers")), ACCEPTED),
    "NUL in a value": (get_with(("x", "a\0b")), stream_error(PROTOCOL)),
    "CR in a value": (get_with(("x", "a\rb")), stream_error(PROTOCOL)),
    "LF in a value": (get_with(("x", "a\nb")), stream_error(PROTOCOL)),
    "leading space in a value": (get_with(("x", " a")), stream_error(PROTOCOL)),
    "trailing tab in a value": (get_with(("x", "a\t")), stream_error(PROTOCOL)),
    "CONNECT": (bad((":method", "CONNECT"), (":authority", "a:443")), ACCEPTED),
    "CONNECT with :path": (
        bad((":method", "CONNECT"), (":authority", "a:443"), (":path", "/")),
        stream_error(PROTOCOL),
    ),
    "CONNECT without :authority": (bad((":method", "CONNECT")), stream_error(PROTOCOL)),
    ":protocol without ENABLE_CONNECT_PROTOCOL": (
        bad(
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", "/"),
            (":authority", "a"),
        ),
        stream_error(PROTOCOL),
    ),
    "path not in origin form": (
        bad((":method", "GET"), (":scheme", "https"), (":path", "x"), (":authority", "a")),
        stream_error(PROTOCOL),
    ),
    "OPTIONS *": (
        bad((":method", "OPTIONS"), (":scheme", "https"), (":path", "*"), (":authority", "a")),
        ACCEPTED,
    ),
    "userinfo in :authority": (
        bad((":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "u@h")),
        stream_error(PROTOCOL),
    ),
    "content-length not a number": (get_with(("content-length", "1x")), stream_error(PROTOCOL)),
    "content-length with END_STREAM and no data": (
        lambda w: w.headers(1, [*POST, ("content-length", "3")]),
        stream_error(PROTOCOL),
    ),
    "no :authority and no host": (
        bad((":method", "GET"), (":scheme", "https"), (":path", "/")),
        ACCEPTED,
    ),
    "split cookies": (get_with(("cookie", "a=1"), ("cookie", "b=2")), ACCEPTED),
}

# Where h2 (4.x, as a server) answers differently: h2's verdict and the clause esg follows.
_MALFORMED = (
    "section 8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR (the other"
    " streams carry on); h2 raises a connection-level ProtocolError"
)
H2_DIFFERS: dict[str, tuple[Verdict, str]] = {
    "second HEADERS without END_STREAM": (conn_error(PROTOCOL), _MALFORMED),
    "trailers with a pseudo-header": (conn_error(PROTOCOL), _MALFORMED),
    "content-length too small": (conn_error(PROTOCOL), _MALFORMED),
    "content-length too large": (conn_error(PROTOCOL), _MALFORMED),
    "no :method": (conn_error(PROTOCOL), _MALFORMED),
    "no :path": (conn_error(PROTOCOL), _MALFORMED),
    "empty :path": (conn_error(PROTOCOL), _MALFORMED),
    "no :scheme": (conn_error(PROTOCOL), _MALFORMED),
    "two :method": (conn_error(PROTOCOL), _MALFORMED),
    "pseudo-header after a regular field": (conn_error(PROTOCOL), _MALFORMED),
    ":status in a request": (conn_error(PROTOCOL), _MALFORMED),
    "unknown pseudo-header": (conn_error(PROTOCOL), _MALFORMED),
    "uppercase field name": (conn_error(PROTOCOL), _MALFORMED),
    "space in a field name": (conn_error(PROTOCOL), _MALFORMED),
    "connection field": (conn_error(PROTOCOL), _MALFORMED),
    "keep-alive field": (conn_error(PROTOCOL), _MALFORMED),
    "proxy-connection field": (conn_error(PROTOCOL), _MALFORMED),
    "transfer-encoding field": (conn_error(PROTOCOL), _MALFORMED),
    "upgrade field": (conn_error(PROTOCOL), _MALFORMED),
    "te: gzip": (conn_error(PROTOCOL), _MALFORMED),
    "NUL in a value": (conn_error(PROTOCOL), _MALFORMED),
    "CR in a value": (conn_error(PROTOCOL), _MALFORMED),
    "LF in a value": (conn_error(PROTOCOL), _MALFORMED),
    "leading space in a value": (conn_error(PROTOCOL), _MALFORMED),
    "trailing tab in a value": (conn_error(PROTOCOL), _MALFORMED),
    "CONNECT with :path": (conn_error(PROTOCOL), _MALFORMED),
    "CONNECT without :authority": (conn_error(PROTOCOL), _MALFORMED),
    "content-length not a number": (conn_error(PROTOCOL), _MALFORMED),
    "SETTINGS ACK with a payload": (
        conn_error(PROTOCOL),
        "section 6.5: a SETTINGS ACK with a payload is a connection error FRAME_SIZE_ERROR",
    ),
    "WINDOW_UPDATE of 0 on a stream": (
        conn_error(PROTOCOL),
        "section 6.9: an increment of 0 on a stream is a stream error PROTOCOL_ERROR",
    ),
    "PRIORITY of 4 bytes on an open stream": (
        conn_error(SIZE),
        "section 6.3: a PRIORITY frame of a length other than 5 is a stream error",
    ),
    "PRIORITY depending on itself": (
        conn_error(PROTOCOL),
        "section 5.3.1 (RFC 7540's rule, kept): a stream depending on itself is a stream error",
    ),
    "HEADERS depending on itself": (
        conn_error(PROTOCOL),
        "section 5.3.1 (RFC 7540's rule, kept): a stream depending on itself is a stream error",
    ),
    "broken HPACK": (
        conn_error(PROTOCOL),
        "section 4.3: a field block that can't be decompressed is COMPRESSION_ERROR",
    ),
    "DATA beyond the stream window": (
        conn_error(FLOW),
        "section 6.9.1 allows a stream or a connection error FLOW_CONTROL_ERROR: esg resets"
        " only the stream",
    ),
    ":protocol without ENABLE_CONNECT_PROTOCOL": (
        ACCEPTED,
        "RFC 8441 section 3 and RFC 9113 section 8.3: :protocol is undefined unless esg sent"
        " SETTINGS_ENABLE_CONNECT_PROTOCOL, and an undefined pseudo-header is malformed",
    ),
    "path not in origin form": (
        ACCEPTED,
        "section 8.3.1: :path of an http(s) request is origin-form (or * for OPTIONS)",
    ),
    "userinfo in :authority": (
        ACCEPTED,
        "section 8.3.1: :authority MUST NOT include userinfo for http(s) URIs",
    ),
    "content-length with END_STREAM and no data": (
        ACCEPTED,
        "section 8.1.1: content-length must equal the DATA received; END_STREAM on HEADERS"
        " means none",
    ),
    "no :authority and no host": (
        conn_error(PROTOCOL),
        "section 8.3.1: :authority is optional (RFC 9113 asks a server for no Host either);"
        " h2 demands one of them",
    ),
}


def esg_verdict(h2mod: ModuleType, payload: bytes) -> Verdict:
    conn = h2mod.ServerConnection(initial_window_size=65535)  # h2's default window
    conn.data_to_send()
    events = conn.receive_data(Wire.start() + payload)
    for event in events:
        if type(event).__name__ == "ConnectionTerminated":
            return conn_error(event.error_code)
    sent = resets(conn.data_to_send())
    return stream_error(sent[0][1]) if sent else ACCEPTED


def h2_verdict(payload: bytes) -> Verdict:
    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    conn.data_to_send()
    try:
        conn.receive_data(Wire.start() + payload)
    except h2.exceptions.ProtocolError as exc:
        return conn_error(int(exc.error_code))
    sent = resets(conn.data_to_send())
    return stream_error(sent[0][1]) if sent else ACCEPTED


@pytest.mark.parametrize("case", list(CASES))
def test_esg(h2mod: ModuleType, case: str) -> None:
    make, expected = CASES[case]
    assert esg_verdict(h2mod, make(Wire())) == expected


@pytest.mark.parametrize("case", list(CASES))
def test_h2_agrees(request: pytest.FixtureRequest, case: str) -> None:
    make, expected = CASES[case]
    verdict = h2_verdict(make(Wire()))
    if case in H2_DIFFERS:
        h2_says, clause = H2_DIFFERS[case]
        assert verdict == h2_says, f"h2 now says {verdict}: update the table"
        request.applymarker(
            pytest.mark.xfail(reason=f"h2 answers {h2_says}; {clause}", strict=True)
        )
    assert verdict == expected


def test_every_listed_difference_is_a_case() -> None:
    assert set(H2_DIFFERS) <= set(CASES)
