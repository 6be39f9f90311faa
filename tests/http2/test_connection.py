"""esg's HTTP/2 server codec (esg.http2.connection) on raw client bytes, both builds.

Every conversation is fed whole, one byte at a time and cut at seeded random points, and must
give the same events and the same bytes back each way.  The clauses cited are RFC 9113's.
"""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import pytest

from tests.http2 import wire
from tests.http2.wire import GET, Wire, data, feed, frame, read_frames, resets, settings

PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR = 1, 3, 5, 6
REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 7, 8, 9, 11


@pytest.fixture(params=wire.FEEDING_MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def server(h2mod: ModuleType, **options: Any) -> Any:
    conn = h2mod.ServerConnection(**options)
    conn.data_to_send()
    return conn


def converse(
    h2mod: ModuleType, payload: bytes, mode: str, **options: Any
) -> tuple[list[Any], bytes]:
    """Feed ``payload`` after the preface; the events (described) and the bytes sent back."""
    conn = server(h2mod, **options)
    events = feed(conn, Wire.start() + payload, mode)
    return [wire.describe(event) for event in events], conn.data_to_send()


def terminated(events: list[Any]) -> int | None:
    for event in events:
        if event[0] == "ConnectionTerminated":
            return int(event[1])
    return None


def test_our_preface_is_settings_then_a_connection_window_update(h2mod: ModuleType) -> None:
    conn = h2mod.ServerConnection(max_concurrent_streams=7, connection_window_size=1 << 20)
    frames = read_frames(conn.data_to_send())
    assert [f[0] for f in frames] == [wire.SETTINGS, wire.WINDOW_UPDATE]
    values = dict(struct.iter_unpack(">HI", frames[0][3]))
    assert values[3] == 7 and values[4] == 1 << 20 and values[6] == 65536
    assert 2 not in values  # ENABLE_PUSH is the client's setting
    assert struct.unpack(">I", frames[1][3])[0] == (1 << 20) - 65535


def test_a_get_request(h2mod: ModuleType, mode: str) -> None:
    w = Wire()
    fields = [*GET, ("user-agent", "t"), ("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")]
    events, out = converse(h2mod, settings(ack=True) + w.headers(1, fields), mode)
    assert events[0] == ("SettingsAcknowledged",)
    name, sid, method, scheme, path, authority, protocol, headers, length, end = events[1]
    assert (name, sid, method, scheme, path, authority, protocol) == (
        "RequestReceived",
        1,
        b"GET",
        b"https",
        b"/",
        b"example.com",
        None,
    )
    assert headers == [(b"user-agent", b"t"), (b"accept", b"*/*"), (b"cookie", b"a=1; b=2")]
    assert (length, end) == (-1, True)
    assert [f[0:2] for f in read_frames(out)] == [(wire.SETTINGS, wire.ACK)]


def test_a_post_with_padding_content_length_and_trailers(h2mod: ModuleType, mode: str) -> None:
    w = Wire()
    fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/up"),
        ("content-length", "5"),
        ("te", "trailers"),
    ]
    payload = (
        w.headers(1, fields, end_stream=False, pad=3)
        + data(1, b"he", pad=4)
        + data(1, b"llo")
        + w.headers(1, [("grpc-status", "0")], end_stream=True)
    )
    events, _ = converse(h2mod, payload, mode)
    assert events[0][0] == "RequestReceived" and events[0][8] == 5 and events[0][9] is False
    assert events[1] == ("DataReceived", 1, b"he", 7, False)
    assert events[2] == ("DataReceived", 1, b"llo", 3, False)
    assert events[3] == ("TrailersReceived", 1, [(b"grpc-status", b"0")])


def test_the_preface_must_be_the_magic(h2mod: ModuleType, mode: str) -> None:
    conn = server(h2mod)
    events = feed(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", mode)
    assert [type(e).__name__ for e in events] == ["ConnectionTerminated"]
    assert events[0].error_code == PROTOCOL_ERROR
    assert wire.goaway_code(conn.data_to_send()) == PROTOCOL_ERROR
    assert conn.closed and conn.receive_data(Wire.start()) == []


def test_the_first_frame_must_be_settings(h2mod: ModuleType, mode: str) -> None:
    conn = server(h2mod)
    events = feed(conn, wire.PREFACE + wire.ping(), mode)
    assert terminated([wire.describe(e) for e in events]) == PROTOCOL_ERROR


@pytest.mark.parametrize(
    ("case", "payload", "code"),
    [
        ("frame above MAX_FRAME_SIZE", frame(wire.DATA, 0, 1, b"x" * 16385), FRAME_SIZE_ERROR),
        ("HEADERS on stream 0", frame(wire.HEADERS, 4, 0, b"\x82"), PROTOCOL_ERROR),
        ("DATA on idle stream", data(1, b"x"), PROTOCOL_ERROR),
        ("DATA on stream 0", data(0, b"x"), PROTOCOL_ERROR),
        ("CONTINUATION alone", frame(wire.CONTINUATION, 4, 1, b"\x82"), PROTOCOL_ERROR),
        (
            "PUSH_PROMISE from a client",
            frame(wire.PUSH_PROMISE, 4, 1, b"\0\0\0\2\x82"),
            PROTOCOL_ERROR,
        ),
        ("SETTINGS on a stream", frame(wire.SETTINGS, 0, 1), PROTOCOL_ERROR),
        ("SETTINGS of 5 bytes", frame(wire.SETTINGS, 0, 0, b"\0" * 5), FRAME_SIZE_ERROR),
        ("SETTINGS ACK with payload", frame(wire.SETTINGS, 1, 0, b"\0" * 6), FRAME_SIZE_ERROR),
        ("ENABLE_PUSH 2", settings((2, 2)), PROTOCOL_ERROR),
        ("INITIAL_WINDOW_SIZE 2^31", settings((4, 1 << 31)), FLOW_CONTROL_ERROR),
        ("MAX_FRAME_SIZE too small", settings((5, 16383)), PROTOCOL_ERROR),
        ("MAX_FRAME_SIZE too large", settings((5, 1 << 24)), PROTOCOL_ERROR),
        ("PING of 7 bytes", frame(wire.PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR),
        ("PING on a stream", frame(wire.PING, 0, 1, b"12345678"), PROTOCOL_ERROR),
        ("WINDOW_UPDATE 0 on the connection", wire.window_update(0, 0), PROTOCOL_ERROR),
        ("WINDOW_UPDATE of 3 bytes", frame(wire.WINDOW_UPDATE, 0, 0, b"\0\0\1"), FRAME_SIZE_ERROR),
        ("connection window overflow", wire.window_update(0, (1 << 31) - 1), FLOW_CONTROL_ERROR),
        ("RST_STREAM on idle stream", wire.rst(1), PROTOCOL_ERROR),
        ("RST_STREAM on stream 0", wire.rst(0), PROTOCOL_ERROR),
        ("RST_STREAM of 3 bytes", frame(wire.RST_STREAM, 0, 1, b"\0\0\0"), FRAME_SIZE_ERROR),
        ("GOAWAY on a stream", frame(wire.GOAWAY, 0, 1, b"\0" * 8), PROTOCOL_ERROR),
        ("PRIORITY on stream 0", wire.priority(0), PROTOCOL_ERROR),
        ("WINDOW_UPDATE on idle stream", wire.window_update(1, 1), PROTOCOL_ERROR),
        ("bad HPACK", frame(wire.HEADERS, 5, 1, b"\xff\xff\xff\xff\xff\xff"), COMPRESSION_ERROR),
        ("HEADERS on an even stream", frame(wire.HEADERS, 5, 2, b"\x82\x86\x84"), PROTOCOL_ERROR),
        ("HEADERS padding too long", frame(wire.HEADERS, 5 | 8, 1, b"\x05\x82"), PROTOCOL_ERROR),
        (
            "DATA padding too long",
            Wire().headers(1, end_stream=False) + frame(0, 8, 1, b"\x03ab"),
            PROTOCOL_ERROR,
        ),
    ],
)
def test_connection_errors(
    h2mod: ModuleType, mode: str, case: str, payload: bytes, code: int
) -> None:
    events, out = converse(h2mod, payload, mode)
    assert terminated(events) == code, case
    assert wire.goaway_code(out) == code


def test_unknown_frames_and_flags_are_ignored(h2mod: ModuleType, mode: str) -> None:
    w = Wire()
    payload = frame(0x42, 0xFF, 0, b"x" * 10) + frame(0x43, 0, 3, b"") + w.headers(1)
    events, _ = converse(h2mod, payload, mode)
    assert [e[0] for e in events] == ["RequestReceived"]


def test_continuation(h2mod: ModuleType, mode: str) -> None:
    w = Wire()
    block = w.block([*GET, ("x-long", "v" * 300)])
    payload = (
        frame(wire.HEADERS, wire.END_STREAM, 1, block[:10])
        + frame(wire.CONTINUATION, 0, 1, block[10:20])
        + frame(wire.CONTINUATION, wire.END_HEADERS, 1, block[20:])
    )
    events, _ = converse(h2mod, payload, mode)
    assert events[0][0] == "RequestReceived" and events[0][7] == [(b"x-long", b"v" * 300)]


@pytest.mark.parametrize(
    "interloper",
    [wire.ping(), data(1, b"x"), frame(0x42, 0, 0), frame(wire.CONTINUATION, 4, 3, b"")],
)
def test_nothing_may_interrupt_a_header_block(
    h2mod: ModuleType, mode: str, interloper: bytes
) -> None:
    w = Wire()
    block = w.block(GET)
    payload = (
        frame(wire.HEADERS, 1, 1, block[:2])
        + interloper
        + frame(wire.CONTINUATION, 4, 1, block[2:])
    )
    events, _ = converse(h2mod, payload, mode)
    assert terminated(events) == PROTOCOL_ERROR


MALFORMED = {
    "no :method": [(":scheme", "https"), (":path", "/")],
    "no :path": [(":method", "GET"), (":scheme", "https")],
    "empty :path": [(":method", "GET"), (":scheme", "https"), (":path", "")],
    "no :scheme": [(":method", "GET"), (":path", "/")],
    "two :method": [*GET, (":method", "GET")],
    "pseudo after regular": [(":method", "GET"), (":scheme", "https"), ("a", "b"), (":path", "/")],
    ":status in a request": [*GET, (":status", "200")],
    "unknown pseudo": [*GET, (":foo", "x")],
    "uppercase name": [*GET, ("X-Foo", "x")],
    "space in name": [*GET, ("x foo", "x")],
    "colon in name": [*GET, ("x:foo", "x")],
    "connection": [*GET, ("connection", "close")],
    "keep-alive": [*GET, ("keep-alive", "5")],
    "proxy-connection": [*GET, ("proxy-connection", "x")],
    "transfer-encoding": [*GET, ("transfer-encoding", "chunked")],
    "upgrade": [*GET, ("upgrade", "h2c")],
    "te gzip": [*GET, ("te", "gzip")],
    "NUL in value": [*GET, ("x", "a\0b")],
    "CR in value": [*GET, ("x", "a\rb")],
    "LF in value": [*GET, ("x", "a\nb")],
    "leading space": [*GET, ("x", " a")],
    "trailing tab": [*GET, ("x", "a\t")],
    "CONNECT with :path": [(":method", "CONNECT"), (":authority", "a:443"), (":path", "/")],
    "CONNECT without :authority": [(":method", "CONNECT")],
    ":protocol not enabled": [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":path", "/"),
        (":authority", "a"),
    ],
    ":protocol on GET": [*GET, (":protocol", "websocket")],
    "path not origin-form": [(":method", "GET"), (":scheme", "https"), (":path", "x")],
    "userinfo in :authority": [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/"),
        (":authority", "u@h"),
    ],
    "content-length not a number": [*GET, ("content-length", "1x")],
    "two content-lengths": [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/"),
        ("content-length", "0"),
        ("content-length", "0"),
    ],
    "content-length with END_STREAM": [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/"),
        ("content-length", "3"),
    ],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_request_is_a_stream_error(h2mod: ModuleType, case: str) -> None:
    w = Wire()
    conn = server(h2mod)
    events = conn.receive_data(Wire.start() + w.headers(1, MALFORMED[case]) + w.headers(3))
    assert [type(e).__name__ for e in events] == ["RequestReceived"], case
    assert events[0].stream_id == 3  # the next stream carries on
    assert resets(conn.data_to_send()) == [(1, PROTOCOL_ERROR)]
    assert conn.counters["malformed_requests"] == 1


def test_extended_connect_when_enabled(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod, enable_connect_protocol=True)
    fields = MALFORMED[":protocol not enabled"]
    events = conn.receive_data(Wire.start() + w.headers(1, fields, end_stream=False))
    assert events[0].protocol == b"websocket" and events[0].method == b"CONNECT"
    plain = [(":method", "CONNECT"), (":authority", "a:443")]
    events = conn.receive_data(w.headers(3, plain, end_stream=False))
    assert events[0].path is None and events[0].authority == b"a:443"


@pytest.mark.parametrize(
    ("case", "body", "length"),
    [
        ("too much", [b"abcd"], "3"),
        ("too little", [b"ab"], "3"),
        ("too much over frames", [b"ab", b"cd"], "3"),
    ],
)
def test_content_length_must_match_the_data(
    h2mod: ModuleType, case: str, body: list[bytes], length: str
) -> None:
    w = Wire()
    fields = [(":method", "POST"), (":scheme", "https"), (":path", "/"), ("content-length", length)]
    payload = w.headers(1, fields, end_stream=False)
    for index, piece in enumerate(body):
        payload += data(1, piece, end_stream=index == len(body) - 1)
    conn = server(h2mod)
    events = conn.receive_data(Wire.start() + payload)
    assert events[-1].__class__.__name__ == "StreamReset", case
    assert (events[-1].stream_id, events[-1].error_code, events[-1].remote) == (
        1,
        PROTOCOL_ERROR,
        False,
    )
    assert resets(conn.data_to_send()) == [(1, PROTOCOL_ERROR)]


def test_frames_after_end_stream(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(1))
    # Half-closed (remote): DATA is a stream error STREAM_CLOSED (section 5.1).
    events = conn.receive_data(data(1, b"x"))
    assert [(type(e).__name__, e.error_code) for e in events] == [("StreamReset", STREAM_CLOSED)]
    # ... and the stream esg reset ignores what follows.
    assert conn.receive_data(data(1, b"y") + wire.window_update(1, 5) + wire.rst(1)) == []
    # A stream that ended both ways: DATA is a connection error STREAM_CLOSED.
    conn.receive_data(w.headers(3))
    conn.send_headers(3, [(b":status", b"204")], end_stream=True)
    conn.data_to_send()
    events = conn.receive_data(wire.window_update(3, 1) + wire.priority(3) + wire.rst(3))
    assert events == []  # allowed on closed streams
    events = conn.receive_data(data(3, b"x"))
    assert events[0].error_code == STREAM_CLOSED and conn.closed


def test_a_stream_the_client_reset(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    events = conn.receive_data(Wire.start() + w.headers(1, end_stream=False) + wire.rst(1, CANCEL))
    assert [(type(e).__name__) for e in events] == ["RequestReceived", "StreamReset"]
    assert (events[1].error_code, events[1].remote) == (CANCEL, True)
    with pytest.raises(Exception, match="can't send") as info:
        conn.send_headers(1, [(b":status", b"200")])
    assert type(info.value).__name__ == "StreamClosedError"
    conn.data_to_send()
    events = conn.receive_data(data(1, b"x"))  # section 5.1: stream error STREAM_CLOSED
    assert events == [] and resets(conn.data_to_send()) == [(1, STREAM_CLOSED)]
    assert conn.receive_data(data(1, b"x")) == []  # now reset by esg: ignored


def test_stream_ids_must_increase(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(5))
    events = conn.receive_data(w.headers(3))
    assert events[0].error_code == PROTOCOL_ERROR  # 3 after 5: not increasing (5.1.1)
    assert wire.goaway_code(conn.data_to_send()) == PROTOCOL_ERROR


def test_refused_beyond_max_concurrent_streams(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod, max_concurrent_streams=2)
    payload = w.headers(1, end_stream=False) + w.headers(3, end_stream=False) + w.headers(5)
    events = conn.receive_data(Wire.start() + payload)
    assert [e.stream_id for e in events] == [1, 3]
    assert resets(conn.data_to_send()) == [(5, REFUSED_STREAM)]
    assert conn.counters["refused_streams"] == 1
    conn.reset_stream(1)
    events = conn.receive_data(w.headers(7))  # HPACK stayed in step through the refusal
    assert events[0].stream_id == 7 and events[0].path == b"/"


def test_peer_settings_apply(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(
        Wire.start((4, 10), (5, 20000), (1, 0), (0x99, 7)) + w.headers(1, end_stream=True)
    )
    conn.data_to_send()
    conn.send_headers(1, [(b":status", b"200")])
    assert conn.send_data(1, b"x" * 100) == 10  # INITIAL_WINDOW_SIZE 10
    assert conn.send_window(1) == 0
    events = conn.receive_data(settings((4, 50)))  # +40 for the open stream: it may send again
    assert [(type(e).__name__, e.stream_id) for e in events] == [("WindowOpened", 1)]
    assert conn.send_data(1, b"x" * 90) == 40
    events = conn.receive_data(settings((4, 0)))  # negative windows are allowed (6.9.2)
    assert events == [] and conn.send_window(1) == 0
    events = conn.receive_data(wire.window_update(1, 60))
    assert [(type(e).__name__, e.stream_id) for e in events] == [("WindowOpened", 1)]
    assert conn.send_window(1) == 10


def test_send_data_respects_windows_and_frame_size(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(1))
    conn.data_to_send()
    conn.send_headers(1, [(b":status", b"200")])
    body = bytes(range(256)) * 400  # 102400 bytes
    sent = conn.send_data(1, body, end_stream=True)
    assert sent == 65535  # the connection and stream windows start at 65535
    frames = read_frames(conn.data_to_send())
    sizes = [len(f[3]) for f in frames if f[0] == wire.DATA]
    assert max(sizes) == 16384 and sum(sizes) == 65535
    assert not any(f[1] & wire.END_STREAM for f in frames)
    events = conn.receive_data(wire.window_update(0, 100000))
    assert [(type(e).__name__, e.stream_id) for e in events] == [("WindowOpened", 0)]
    assert conn.send_window(1) == 0  # the stream's own window is still empty
    events = conn.receive_data(wire.window_update(1, 100000))
    assert [(type(e).__name__, e.stream_id) for e in events] == [("WindowOpened", 1)]
    assert conn.send_data(1, body[sent:], end_stream=True) == len(body) - sent
    frames = read_frames(conn.data_to_send())
    assert frames[-1][1] & wire.END_STREAM
    assert conn.open_streams == 0


def test_receive_window_credit_comes_from_the_application(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod, initial_window_size=100, connection_window_size=65535)
    conn.receive_data(
        Wire.start()
        + settings(ack=True)
        + w.headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/")], end_stream=False)
    )
    conn.data_to_send()
    events = conn.receive_data(data(1, b"x" * 60, pad=9))  # 70 flow-controlled bytes
    assert events[0].flow_controlled_length == 70
    conn.acknowledge_received_data(1, 40)
    out = read_frames(conn.data_to_send())
    # 10 bytes of padding + 40 acknowledged >= half of 100: one stream WINDOW_UPDATE of 50.
    assert [(f[0], f[2], struct.unpack(">I", f[3])[0]) for f in out] == [
        (wire.WINDOW_UPDATE, 1, 50)
    ]
    events = conn.receive_data(data(1, b"x" * 81))  # 30 left + 50 credited = 80
    assert [(type(e).__name__, e.error_code) for e in events] == [
        ("StreamReset", FLOW_CONTROL_ERROR)
    ]


def test_response_headers_are_split_into_continuations(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(1))
    conn.data_to_send()
    big = [(b":status", b"200"), (b"x-big", bytes(range(256)) * 150)]
    conn.send_headers(1, big, end_stream=True)
    frames = read_frames(conn.data_to_send())
    assert len(frames) >= 3  # a block of some 38 KB: HEADERS and CONTINUATIONs
    assert frames[0][0] == wire.HEADERS and frames[0][1] == wire.END_STREAM
    assert all(f[0] == wire.CONTINUATION for f in frames[1:])
    assert frames[-1][1] == wire.END_HEADERS and all(len(f[3]) <= 16384 for f in frames)
    import hpack

    assert hpack.Decoder().decode(b"".join(f[3] for f in frames), raw=True) == big


def test_response_header_rules(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(1))
    conn.data_to_send()
    with pytest.raises(ValueError, match="uppercase"):
        conn.send_headers(1, [(b":status", b"200"), (b"Content-Type", b"x")])
    conn.send_headers(1, [(b":status", b"200"), (b"connection", b"close"), (b"x", b"y")])
    frames = read_frames(conn.data_to_send())
    import hpack

    assert hpack.Decoder().decode(frames[0][3], raw=True) == [(b":status", b"200"), (b"x", b"y")]
    with pytest.raises(ValueError, match="pseudo"):
        conn.send_trailers(1, [(b":status", b"200")])
    conn.send_trailers(1, [(b"grpc-status", b"0")])
    frames = read_frames(conn.data_to_send())
    assert frames[0][1] == wire.END_STREAM | wire.END_HEADERS
    assert conn.open_streams == 0


def test_no_data_before_the_final_response_headers(h2mod: ModuleType) -> None:
    # Section 8.1: a response is HEADERS (1xx ones first, maybe), then DATA; DATA or an empty
    # END_STREAM before the final HEADERS is the caller's bug, refused before anything is sent.
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(1))
    conn.data_to_send()
    with pytest.raises(ValueError, match="before its response HEADERS"):
        conn.send_data(1, b"", end_stream=True)
    conn.send_headers(1, [(b":status", b"103"), (b"link", b"</a.css>; rel=preload")])
    with pytest.raises(ValueError, match="before its response HEADERS"):
        conn.send_data(1, b"body")
    frames = read_frames(conn.data_to_send())
    assert [f[0] for f in frames] == [wire.HEADERS]  # the 103 only
    conn.send_headers(1, [(b":status", b"200")])
    assert conn.send_data(1, b"body", end_stream=True) == 4
    frames = read_frames(conn.data_to_send())
    assert [(f[0], f[3]) for f in frames[1:]] == [(wire.DATA, b"body")]
    assert frames[1][1] & wire.END_STREAM


def test_ping_and_ping_ack(h2mod: ModuleType) -> None:
    conn = server(h2mod)
    conn.receive_data(Wire.start() + wire.ping(b"abcdefgh"))
    frames = read_frames(conn.data_to_send())
    assert (wire.PING, wire.ACK, 0, b"abcdefgh") in frames
    conn.ping(b"12345678")
    assert read_frames(conn.data_to_send()) == [(wire.PING, 0, 0, b"12345678")]
    events = conn.receive_data(wire.ping(b"12345678", ack=True))
    assert [wire.describe(e) for e in events] == [("PingAcked", b"12345678")]


def test_graceful_shutdown_in_two_phases(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(1, end_stream=False))
    conn.data_to_send()
    conn.begin_graceful_shutdown()
    frames = read_frames(conn.data_to_send())
    assert frames[0][0] == wire.GOAWAY and struct.unpack(">II", frames[0][3]) == (2**31 - 1, 0)
    assert frames[1][0] == wire.PING
    # A stream the client opened before it saw the GOAWAY is still served ...
    events = conn.receive_data(w.headers(3) + wire.ping(frames[1][3], ack=True))
    assert [e.stream_id for e in events] == [3]
    final = read_frames(conn.data_to_send())
    assert final[0][0] == wire.GOAWAY and struct.unpack(">II", final[0][3]) == (3, 0)
    # ... one opened after the final GOAWAY is ignored, but its HPACK block decoded.
    assert conn.receive_data(w.headers(5) + data(5, b"x")) == []
    assert not conn.drained
    conn.send_headers(3, [(b":status", b"200")], end_stream=True)
    conn.receive_data(data(1, b"", end_stream=True))
    conn.send_headers(1, [(b":status", b"200")], end_stream=True)
    assert conn.drained


def test_client_goaway(h2mod: ModuleType) -> None:
    conn = server(h2mod)
    events = conn.receive_data(Wire.start() + wire.goaway(0, 0))
    assert [wire.describe(e) for e in events] == [("GoAwayReceived", 0, 0, b"")]
    assert not conn.closed


def test_close_connection(h2mod: ModuleType) -> None:
    w = Wire()
    conn = server(h2mod)
    conn.receive_data(Wire.start() + w.headers(1, end_stream=False))
    conn.data_to_send()
    conn.close_connection(0)
    frames = read_frames(conn.data_to_send())
    assert frames == [(wire.GOAWAY, 0, 0, struct.pack(">II", 1, 0))]
    assert conn.receive_data(data(1, b"x")) == [] and conn.drained


def test_feeding_modes_agree_on_a_long_conversation(h2mod: ModuleType) -> None:
    w = Wire()
    payload = settings(ack=True)
    for sid in range(1, 60, 2):
        fields = [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", f"/{sid}"),
            ("x-n", str(sid) * sid),
        ]
        payload += w.headers(sid, fields, end_stream=False) + data(
            sid, b"b" * sid, pad=sid % 3 or None
        )
        payload += (
            wire.ping() + w.headers(sid, [("trailer", "t")])
            if sid % 4 == 1
            else data(sid, b"", end_stream=True)
        )
    results = [converse(h2mod, payload, mode) for mode in wire.FEEDING_MODES]
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) > 60
