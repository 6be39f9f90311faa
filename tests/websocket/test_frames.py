"""The frame codec against the intent of Autobahn|Testsuite groups 1-5 and 7, plus the writer.

Every input goes through ``ws.check``: fed whole, one byte at a time and split at seeded random
points, against both builds, each way reaching the same events and the same close code.
Group 6 (UTF-8) is in test_frames_utf8.py, groups 12-13 (compression) in test_deflate.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from esg.websocket.deflate import DeflateParams

TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0
LENGTHS = [0, 1, 125, 126, 127, 128, 65535, 65536]


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


# -- group 1: framing -------------------------------------------------------------------------


@pytest.mark.parametrize("length", LENGTHS)
def test_text_message_lengths(ws: Any, length: int) -> None:
    text = ("*" * length)[:length]
    ws.check(ws.frame(TEXT, text.encode()), [("text", text)])


@pytest.mark.parametrize("length", LENGTHS)
def test_binary_message_lengths(ws: Any, length: int) -> None:
    data = bytes(i % 251 for i in range(length))
    ws.check(ws.frame(BINARY, data), [("bytes", data)])


def test_several_messages_in_one_read(ws: Any) -> None:
    data = b"".join(ws.frame(TEXT, b"m%d" % i) for i in range(10))
    ws.check(data, [("text", f"m{i}") for i in range(10)])


@pytest.mark.parametrize(
    ("length", "length_bytes"),
    [(0, 2), (125, 2), (0, 8), (125, 8), (126, 8), (65535, 8)],
)
def test_non_minimal_length_encoding_is_a_protocol_error(
    ws: Any, length: int, length_bytes: int
) -> None:
    # RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
    data = ws.frame(BINARY, b"x" * length, length_bytes=length_bytes)
    ws.check(ws.frame(TEXT, b"before") + data, [("text", "before")], 1002)


@pytest.mark.parametrize(("length", "length_bytes"), [(126, 2), (65535, 2), (65536, 8)])
def test_minimal_length_encoding_edges_are_accepted(
    ws: Any, length: int, length_bytes: int
) -> None:
    data = b"y" * length
    ws.check(ws.frame(BINARY, data, length_bytes=length_bytes), [("bytes", data)])


def test_64_bit_length_with_the_top_bit_set_is_a_protocol_error(ws: Any) -> None:
    ws.check(ws.frame(BINARY, b"", length=1 << 63), [], 1002)


def test_unmasked_client_frame_is_a_protocol_error(ws: Any) -> None:
    ws.check(ws.frame(TEXT, b"hi", mask=None), [], 1002)
    ws.check(ws.frame(PING, b"", mask=None), [], 1002)


def test_unmasked_frame_is_rejected_from_its_first_two_bytes(ws: Any) -> None:
    reader = ws.reader()
    reader.feed(b"\x81\x05")
    with pytest.raises(ws.module.ProtocolError) as exc:
        reader.next_event()
    assert exc.value.code == 1002


@pytest.mark.parametrize("mask", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04"])
def test_any_mask_value(ws: Any, mask: bytes) -> None:
    data = bytes(range(256)) * 3
    ws.check(ws.frame(BINARY, data, mask=mask), [("bytes", data)])


def test_declared_length_over_max_size_fails_before_the_payload(ws: Any) -> None:
    # Only the header is sent: the verdict can't wait for 1 MiB that may never come.
    head = ws.frame(BINARY, b"", length=1 << 20)
    ws.check(head, [], 1009, max_size=1 << 16)
    ws.check(ws.frame(BINARY, b"", length=(1 << 63) - 1), [], 1009)


def test_huge_continuation_length_cannot_overflow_the_size_check(ws: Any) -> None:
    # A size + length sum in C would wrap around and let an endless frame through.
    start = ws.frame(BINARY, b"0123456789", fin=False)
    for length in ((1 << 63) - 1, (1 << 63) - 5, 1 << 62):
        ws.check(start + ws.frame(CONT, b"", length=length), [], 1009)
        ws.check(start + ws.frame(CONT, b"", length=length), [], 1009, max_size=1 << 62)
    compressed = ws.frame(BINARY, b"\x00", fin=False, rsv=4)
    huge = ws.frame(CONT, b"", length=(1 << 63) - 1)
    ws.check(compressed + huge, [], 1009, deflate=DeflateParams())


def test_message_of_exactly_max_size_is_accepted(ws: Any) -> None:
    ws.check(ws.frame(BINARY, b"z" * 1000), [("bytes", b"z" * 1000)], max_size=1000)
    ws.check(ws.frame(BINARY, b"z" * 1001), [], 1009, max_size=1000)


# -- group 2: pings and pongs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [b"", b"Hello, world!", bytes([0, 255, 254, 253, 252]), b"*" * 125]
)
def test_ping_payloads(ws: Any, payload: bytes) -> None:
    ws.check(ws.frame(PING, payload), [("ping", payload)])


def test_ping_of_126_bytes_is_a_protocol_error(ws: Any) -> None:
    ws.check(ws.frame(PING, b"*" * 126), [], 1002)
    ws.check(ws.frame(PING, b"*" * 126, length_bytes=2), [], 1002)


def test_unsolicited_pongs(ws: Any) -> None:
    data = ws.frame(PONG) + ws.frame(PONG, b"unsolicited") + ws.frame(PING, b"ping")
    ws.check(data, [("pong", b""), ("pong", b"unsolicited"), ("ping", b"ping")])


def test_ten_pings_in_a_row(ws: Any) -> None:
    data = b"".join(ws.frame(PING, b"payload-%d" % i) for i in range(10))
    ws.check(data, [("ping", b"payload-%d" % i) for i in range(10)])


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_fragmented_control_frame_is_a_protocol_error(ws: Any, opcode: int) -> None:
    data = ws.frame(opcode, b"frag", fin=False) + ws.frame(CONT, b"ment")
    ws.check(data, [], 1002)


# -- group 3: reserved bits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rsv", "opcode"),
    [(4, TEXT), (2, TEXT), (1, TEXT), (6, BINARY), (5, BINARY), (3, PING), (7, CLOSE), (4, PING)],
)
def test_reserved_bits_without_an_extension_are_a_protocol_error(
    ws: Any, rsv: int, opcode: int
) -> None:
    # Autobahn 3.x: a valid message first, the bad frame, then one that must never be seen.
    data = ws.frame(TEXT, b"ok") + ws.frame(opcode, b"x", rsv=rsv) + ws.frame(PING)
    ws.check(data, [("text", "ok")], 1002)


def test_rsv1_is_only_allowed_on_the_first_frame_of_a_compressed_message(ws: Any) -> None:
    params = DeflateParams()
    for bad in (
        ws.frame(PING, b"", rsv=4),
        ws.frame(CLOSE, b"", rsv=4),
        ws.frame(TEXT, b"", fin=False) + ws.frame(CONT, b"", rsv=4),
        ws.frame(TEXT, b"", rsv=2),
        ws.frame(TEXT, b"", rsv=1),
    ):
        ws.check(bad, [], 1002, deflate=params)


# -- group 4: reserved opcodes ---------------------------------------------------------------


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
@pytest.mark.parametrize("payload", [b"", b"reserved opcode payload"])
def test_reserved_opcodes_are_a_protocol_error(ws: Any, opcode: int, payload: bytes) -> None:
    data = ws.frame(TEXT, b"ok") + ws.frame(opcode, payload) + ws.frame(PING)
    ws.check(data, [("text", "ok")], 1002)


# -- group 5: fragmentation ------------------------------------------------------------------


def test_text_in_two_fragments(ws: Any) -> None:
    data = ws.frame(TEXT, b"fragment1", fin=False) + ws.frame(CONT, b"fragment2")
    ws.check(data, [("text", "fragment1fragment2")])


def test_binary_in_many_fragments(ws: Any) -> None:
    payload = bytes(range(256)) * 4
    data = ws.fragments(BINARY, payload, [1, 0, 7, 300, 0, 500])
    ws.check(data, [("bytes", payload)])


def test_empty_fragments(ws: Any) -> None:
    data = ws.frame(TEXT, b"", fin=False) + ws.frame(CONT, b"", fin=False) + ws.frame(CONT, b"")
    ws.check(data, [("text", "")])


def test_control_frames_between_fragments_come_out_at_once(ws: Any) -> None:
    data = (
        ws.frame(TEXT, b"frag1", fin=False)
        + ws.frame(PING, b"p1")
        + ws.frame(CONT, b"frag2", fin=False)
        + ws.frame(PONG, b"p2")
        + ws.frame(CONT, b"frag3", fin=False)
        + ws.frame(CLOSE, close_payload(1000, b"bye"))
        + ws.frame(CONT, b"frag4")
    )
    events = [
        ("ping", b"p1"),
        ("pong", b"p2"),
        ("close", 1000, "bye"),
        ("text", "frag1frag2frag3frag4"),
    ]
    ws.check(data, events)


def test_control_frame_between_fragments_is_returned_before_the_message_completes(ws: Any) -> None:
    reader = ws.reader()
    reader.feed(ws.frame(BINARY, b"a", fin=False) + ws.frame(PING, b"now"))
    assert ws.describe(reader.next_event()) == ("ping", b"now")
    assert reader.next_event() is None
    reader.feed(ws.frame(CONT, b"b"))
    assert ws.describe(reader.next_event()) == ("bytes", b"ab")


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_without_a_message_is_a_protocol_error(ws: Any, fin: bool) -> None:
    data = ws.frame(CONT, b"fragment", fin=fin) + ws.frame(TEXT, b"never")
    ws.check(data, [], 1002)


def test_continuation_after_the_message_ended_is_a_protocol_error(ws: Any) -> None:
    data = (
        ws.frame(TEXT, b"frag1", fin=False)
        + ws.frame(CONT, b"frag2")
        + ws.frame(CONT, b"frag3", fin=False)
    )
    ws.check(data, [("text", "frag1frag2")], 1002)


@pytest.mark.parametrize("second", [TEXT, BINARY])
def test_new_message_inside_a_fragmented_one_is_a_protocol_error(ws: Any, second: int) -> None:
    data = ws.frame(TEXT, b"frag1", fin=False) + ws.frame(second, b"frag2")
    ws.check(data, [], 1002)


def test_fragments_count_against_max_size_together(ws: Any) -> None:
    data = ws.fragments(BINARY, b"q" * 100, [40, 40])
    ws.check(data, [("bytes", b"q" * 100)], max_size=100)
    data = ws.fragments(BINARY, b"q" * 101, [40, 40])
    ws.check(data, [], 1009, max_size=100)


def test_endless_fragments_are_refused_once_over_max_size(ws: Any) -> None:
    max_size = 64 * 1024
    reader = ws.reader(max_size=max_size)
    reader.feed(ws.frame(BINARY, b"", fin=False))
    fragment = ws.frame(CONT, b"f" * 1000, fin=False)
    fed = 0
    with pytest.raises(ws.module.ProtocolError) as exc:
        for _ in range(1000):
            reader.feed(fragment)
            fed += 1000
            assert reader.next_event() is None
            assert reader.buffered() <= max_size
    assert exc.value.code == 1009
    assert fed <= max_size + 1000
    assert reader.buffered() == 0  # a dead reader lets go of what it held


def test_empty_fragments_forever_hold_no_memory(ws: Any) -> None:
    reader = ws.reader(max_size=1000)
    reader.feed(ws.frame(TEXT, b"", fin=False))
    empty = ws.frame(CONT, b"", fin=False) * 100
    for _ in range(100):
        reader.feed(empty)
        assert reader.next_event() is None
        assert reader.buffered() == 0


def test_buffered_counts_unread_input_and_the_partial_message(ws: Any) -> None:
    reader = ws.reader()
    assert reader.buffered() == 0
    reader.feed(ws.frame(BINARY, b"a" * 100, fin=False))
    assert reader.next_event() is None
    assert reader.buffered() == 100
    frame = ws.frame(CONT, b"b" * 50)
    reader.feed(frame[:3])  # a partial header waits in the input buffer
    assert reader.next_event() is None
    assert reader.buffered() == 103
    reader.feed(frame[3:10])  # header complete, 4 of 50 payload bytes
    assert reader.next_event() is None
    assert reader.buffered() == 104
    reader.feed(frame[10:])
    assert ws.describe(reader.next_event()) == ("bytes", b"a" * 100 + b"b" * 50)
    assert reader.buffered() == 0


def test_partial_control_frame_waits_in_the_input_buffer(ws: Any) -> None:
    reader = ws.reader()
    frame = ws.frame(PING, b"x" * 100)
    reader.feed(frame[:50])
    assert reader.next_event() is None
    assert reader.buffered() == 50
    reader.feed(frame[50:])
    assert ws.describe(reader.next_event()) == ("ping", b"x" * 100)


def test_feed_takes_any_bytes_like_object(ws: Any) -> None:
    reader = ws.reader()
    frame = ws.frame(TEXT, b"hello")
    buf = bytearray(frame[:4])
    reader.feed(buf)
    buf[:] = b"\x00" * 4  # the reader kept its own copy
    reader.feed(memoryview(frame)[4:])
    assert ws.describe(reader.next_event()) == ("text", "hello")


def test_feed_of_nothing_and_next_event_on_an_empty_reader(ws: Any) -> None:
    reader = ws.reader()
    reader.feed(b"")
    assert reader.next_event() is None
    assert reader.next_event() is None


def test_a_dead_reader_ignores_further_input(ws: Any) -> None:
    reader = ws.reader()
    reader.feed(ws.frame(5))
    with pytest.raises(ws.module.ProtocolError) as first:
        reader.next_event()
    reader.feed(ws.frame(TEXT, b"later"))
    with pytest.raises(ws.module.ProtocolError) as second:
        reader.next_event()
    assert second.value is first.value
    assert str(first.value).startswith("1002 ")


# -- group 7: close handling -----------------------------------------------------------------


def test_close_without_payload_is_1005(ws: Any) -> None:
    ws.check(ws.frame(CLOSE), [("close", 1005, "")])


def test_close_with_one_byte_is_a_protocol_error(ws: Any) -> None:
    ws.check(ws.frame(CLOSE, b"\x03"), [], 1002)


def test_close_with_code_and_reasons(ws: Any) -> None:
    ws.check(ws.frame(CLOSE, close_payload(1000)), [("close", 1000, "")])
    ws.check(
        ws.frame(CLOSE, close_payload(1000, b"Hello World!")), [("close", 1000, "Hello World!")]
    )
    reason = "ü" * 61 + "!"  # 123 bytes: the longest reason a close frame can carry
    data = ws.frame(CLOSE, close_payload(1000, reason.encode()))
    ws.check(data, [("close", 1000, reason)])
    ws.check(ws.frame(CLOSE, close_payload(1000, b"r" * 124)), [], 1002)


def test_close_reason_must_be_utf8(ws: Any) -> None:
    bad = "κόσμε".encode() + b"\xed\xa0\x80" + b"edited"
    ws.check(ws.frame(CLOSE, close_payload(1000, bad)), [], 1007)


VALID_CODES = [
    1000,
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    3000,
    3999,
    4000,
    4999,
]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_close_codes(ws: Any, code: int) -> None:
    ws.check(ws.frame(CLOSE, close_payload(code)), [("close", code, "")])


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_close_codes_are_a_protocol_error(ws: Any, code: int) -> None:
    ws.check(ws.frame(CLOSE, close_payload(code)), [], 1002)


def test_valid_close_code_predicate(frames: Any) -> None:
    valid = {code for code in range(70000) if frames.valid_close_code(code)}
    expected = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))
    assert valid == expected


# -- the writer ------------------------------------------------------------------------------


def parse(ws: Any, data: bytes) -> tuple[int, bool, bool, bytes]:
    opcode, fin, rsv1, payload, rest = ws.parse_server_frame(data)
    assert rest == b""
    return opcode, fin, rsv1, payload


@pytest.mark.parametrize(("length", "head"), [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_encode_frame_uses_the_minimal_length_encoding(
    frames: Any, ws: Any, length: int, head: int
) -> None:
    payload = b"p" * length
    data = frames.encode_frame(2, payload)
    assert len(data) == head + length
    assert parse(ws, data) == (2, True, False, payload)


def test_encode_frame_flags(frames: Any, ws: Any) -> None:
    assert frames.encode_frame(1, b"hi", fin=False) == b"\x01\x02hi"
    assert frames.encode_frame(1, b"hi", True, True) == b"\xc1\x02hi"
    assert frames.encode_frame(0, b"") == b"\x80\x00"


@pytest.mark.parametrize(
    ("opcode", "payload", "fin"),
    [(9, b"x" * 126, True), (8, b"", False), (16, b"", True), (-1, b"", True)],
)
def test_encode_frame_refuses_invalid_frames(
    frames: Any, opcode: int, payload: bytes, fin: bool
) -> None:
    with pytest.raises(ValueError):
        frames.encode_frame(opcode, payload, fin)


def test_writer_messages_round_trip_through_the_reader(frames: Any, ws: Any) -> None:
    writer = frames.FrameWriter()
    text = "héllo wörld " * 20
    assert parse(ws, writer.text(text)) == (1, True, False, text.encode())
    assert parse(ws, writer.binary(b"\x00\x01")) == (2, True, False, b"\x00\x01")
    assert parse(ws, writer.binary(bytearray(b"ba"))) == (2, True, False, b"ba")
    assert parse(ws, writer.binary(memoryview(b"mv"))) == (2, True, False, b"mv")
    assert parse(ws, writer.ping()) == (9, True, False, b"")
    assert parse(ws, writer.ping(b"abc")) == (9, True, False, b"abc")
    assert parse(ws, writer.pong(b"abc")) == (10, True, False, b"abc")
    assert parse(ws, writer.close(1000, "bye")) == (8, True, False, b"\x03\xe8bye")
    with pytest.raises(ValueError):
        writer.ping(b"x" * 126)


def test_encode_close(frames: Any, ws: Any) -> None:
    assert frames.encode_close(1005) == b"\x88\x00"
    assert frames.encode_close(None) == b"\x88\x00"
    assert frames.encode_close(1000) == b"\x88\x02\x03\xe8"
    assert frames.encode_close(4999, "why") == b"\x88\x05\x13\x87why"
    for code in INVALID_CODES:
        if code != 1005:
            with pytest.raises(ValueError):
                frames.encode_close(code)


@pytest.mark.parametrize("reason", ["a" * 200, "é" * 100, "€" * 60, "😀" * 40, "a" + "😀" * 40])
def test_encode_close_truncates_long_reasons_at_a_character_boundary(
    frames: Any, ws: Any, reason: str
) -> None:
    opcode, _, _, payload = parse(ws, frames.encode_close(1001, reason))
    assert opcode == 8 and len(payload) <= 125
    kept = payload[2:].decode("utf-8")  # never cut inside a character
    assert reason.startswith(kept) and len(payload[2:]) > 119


def test_encoded_close_frames_parse_back(frames: Any, ws: Any) -> None:
    for code, reason in [(1000, ""), (1011, "oops"), (3000, "ü" * 70)]:
        _, _, _, payload = parse(ws, frames.encode_close(code, reason))
        reader = ws.reader()
        reader.feed(ws.frame(CLOSE, payload))
        event = ws.describe(reader.next_event())
        assert event[:2] == ("close", code) and reason.startswith(event[2])
