"""Every engine behind ``--ws`` frames a connection the same way at the ``Engine`` surface.

Each test runs against esg's own codec (``EsgEngine``), the websockets adapter and the wsproto
adapter, for both builds of ``esg.websocket.frames`` (``c`` and ``py``): the same client bytes
must give the same events or the same close code, fed whole, one byte at a time and cut at
seeded random points (``ws.feeding_modes``).  The expected results are esg's; where a library
can't match them the case is marked xfail (strict) with the RFC clause and what the library
does, so esg's expectations are never weakened to fit a library.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from esg.websocket.deflate import DeflateParams
from esg.websocket.engine import EsgEngine

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
KINDS = ["esg", "websockets", "wsproto"]
MAX_SIZE = 1 << 20

Make = Callable[..., Any]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name != "esg":
        pytest.importorskip(name)
    return name


@pytest.fixture
def make(kind: str, frames: ModuleType) -> Make:
    """Builds a fresh engine of this kind over the build's frames module."""

    def build(max_size: int = MAX_SIZE, deflate: DeflateParams | None = None) -> Any:
        if kind == "esg":
            return EsgEngine(max_size, deflate, frames)
        from esg.websocket.adapters import WebsocketsEngine, WsprotoEngine

        engine_class = WebsocketsEngine if kind == "websockets" else WsprotoEngine
        return engine_class(max_size, deflate, frames)

    return build


def differs(request: pytest.FixtureRequest, kind: str, reasons: dict[str, str]) -> None:
    """Mark this case xfail (strict) for the libraries that can't do what esg does."""
    if kind in reasons:
        request.applymarker(pytest.mark.xfail(reason=reasons[kind], strict=True))


def replay(ws: Any, engine: Any, pieces: list[bytes]) -> Any:
    """Feed ``pieces`` one by one, draining events after each; stop at a ProtocolError."""
    events: list[tuple[Any, ...]] = []
    frames = engine.frames
    try:
        for piece in pieces:
            engine.feed(piece)
            while (event := engine.next_event()) is not None:
                # The events are the classes of the engine's frames build.
                assert type(event) is getattr(frames, type(event).__name__)
                events.append(ws.describe(event))
    except frames.ProtocolError as exc:
        assert exc.code in (1002, 1007, 1009), exc
        assert isinstance(exc.reason, str) and exc.reason.isascii()
        with pytest.raises(frames.ProtocolError) as again:
            engine.next_event()
        assert again.value is exc  # the engine is dead and says so again
        return ws.Outcome(events, exc.code)
    return ws.Outcome(events, None)


def check(
    ws: Any,
    make: Make,
    data: bytes,
    events: list[tuple[Any, ...]],
    error: int | None = None,
    **options: Any,
) -> None:
    """Every way of feeding ``data`` to a fresh engine ends in ``events`` then ``error``."""
    expected = ws.Outcome(events, error)
    for mode, pieces in ws.feeding_modes(data):
        assert replay(ws, make(**options), pieces) == expected, mode


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


# -- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 125, 126, 65536])
def test_text_message_sizes(ws: Any, make: Make, length: int) -> None:
    text = ("aé€𝄞" * length)[:length]
    data = text.encode()
    check(ws, make, ws.frame(TEXT, data), [("text", text)])


@pytest.mark.parametrize("length", [0, 125, 126, 65536])
def test_binary_message_sizes(ws: Any, make: Make, length: int) -> None:
    data = bytes(i % 251 for i in range(length))
    check(ws, make, ws.frame(BINARY, data), [("bytes", data)])


def test_several_messages_in_one_read(ws: Any, make: Make) -> None:
    data = b"".join(ws.frame(TEXT if i % 2 else BINARY, b"m%d" % i) for i in range(8))
    expected = [("text", f"m{i}") if i % 2 else ("bytes", b"m%d" % i) for i in range(8)]
    check(ws, make, data, expected)


def test_fragmented_messages_with_control_frames_between(ws: Any, make: Make) -> None:
    text = "κόσμε and more"
    encoded = text.encode()
    data = (
        ws.frame(TEXT, encoded[:3], fin=False)  # cuts "ό" in half
        + ws.frame(PING, b"ping")
        + ws.frame(CONT, encoded[3:5], fin=False)
        + ws.frame(PONG, b"")
        + ws.frame(CONT, b"", fin=False)
        + ws.frame(CONT, encoded[5:])
        + ws.fragments(BINARY, b"0123456789", [0, 4])
        + ws.frame(BINARY, b"x" * 200, fin=False)
        + ws.frame(PING, b"")
        + ws.frame(CONT, b"y" * 300)
    )
    check(
        ws,
        make,
        data,
        [
            ("ping", b"ping"),
            ("pong", b""),
            ("text", text),
            ("bytes", b"0123456789"),
            ("ping", b""),
            ("bytes", b"x" * 200 + b"y" * 300),
        ],
    )


# -- UTF-8 (RFC 6455 8.1) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [b"\xff", b"abc\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xce"]
)
def test_invalid_utf8_message(ws: Any, make: Make, payload: bytes) -> None:
    check(ws, make, ws.frame(TEXT, b"fine") + ws.frame(TEXT, payload), [("text", "fine")], 1007)


def test_invalid_utf8_in_a_later_fragment(ws: Any, make: Make) -> None:
    data = (
        ws.frame(TEXT, "κό".encode()[:3], fin=False)
        + ws.frame(PING, b"1")
        + ws.frame(CONT, b"\x80\xff", fin=False)  # completes "ό", then a byte never valid
        + ws.frame(PING, b"2")
        + ws.frame(CONT, b"end")
    )
    check(ws, make, data, [("ping", b"1")], 1007)


def test_utf8_split_across_fragments_is_valid(ws: Any, make: Make) -> None:
    encoded = "𝄞€".encode()
    data = b"".join(
        ws.frame(TEXT if i == 0 else CONT, encoded[i : i + 1], fin=i == len(encoded) - 1)
        for i in range(len(encoded))
    )
    check(ws, make, data, [("text", "𝄞€")])


def test_sequence_left_incomplete_at_the_end_of_the_message(ws: Any, make: Make) -> None:
    data = ws.frame(TEXT, b"ab\xe2\x82", fin=False) + ws.frame(PING, b"") + ws.frame(CONT, b"")
    check(ws, make, data, [("ping", b"")], 1007)


def test_fragment_that_can_no_longer_be_valid_fails_before_the_next_frame(
    ws: Any, make: Make
) -> None:
    # F4 90 is past U+10FFFF: no continuation makes it valid, so the message fails on this
    # fragment, before the ping that follows it (Autobahn 6.4: fail fast).
    data = ws.frame(TEXT, b"a\xf4\x90", fin=False) + ws.frame(PING, b"") + ws.frame(CONT, b"")
    check(ws, make, data, [], 1007)


def test_surrogate_fails_on_its_second_byte(
    ws: Any, make: Make, kind: str, request: pytest.FixtureRequest
) -> None:
    differs(
        request,
        kind,
        {
            "wsproto": "RFC 6455 8.1 (fail on invalid UTF-8 as it is seen): wsproto decodes "
            "text with CPython's incremental decoder, which holds back ED A0 (a UTF-16 "
            "surrogate) until the third byte, so the ping after the fragment comes out first",
        },
    )
    data = ws.frame(TEXT, b"a\xed\xa0", fin=False) + ws.frame(PING, b"") + ws.frame(CONT, b"\x80")
    check(ws, make, data, [], 1007)


# -- framing errors (RFC 6455 5.2 - 5.5) -------------------------------------------------------


def test_unmasked_frame(ws: Any, make: Make) -> None:
    check(ws, make, ws.frame(TEXT, b"hi", mask=None), [], 1002)
    check(ws, make, ws.frame(TEXT, b"ok") + ws.frame(PING, b"", mask=None), [("text", "ok")], 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcode(ws: Any, make: Make, opcode: int) -> None:
    check(ws, make, ws.frame(TEXT, b"ok") + ws.frame(opcode, b"x"), [("text", "ok")], 1002)


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING])
def test_reserved_bits_without_compression(ws: Any, make: Make, rsv: int, opcode: int) -> None:
    check(ws, make, ws.frame(opcode, b"x", rsv=rsv), [], 1002)


def test_reserved_bit_on_a_continuation_frame(ws: Any, make: Make) -> None:
    data = ws.frame(BINARY, b"a", fin=False) + ws.frame(CONT, b"b", rsv=4)
    check(ws, make, data, [], 1002)


def test_fragmented_control_frame(ws: Any, make: Make) -> None:
    check(ws, make, ws.frame(PING, b"x", fin=False) + ws.frame(CONT, b"y"), [], 1002)


def test_control_frame_over_125_bytes(ws: Any, make: Make) -> None:
    check(ws, make, ws.frame(PING, b"p" * 126), [], 1002)


def test_continuation_without_a_message(ws: Any, make: Make) -> None:
    check(ws, make, ws.frame(CONT, b"x"), [], 1002)


def test_new_message_inside_a_fragmented_one(ws: Any, make: Make) -> None:
    check(ws, make, ws.frame(TEXT, b"a", fin=False) + ws.frame(BINARY, b"b"), [], 1002)


def test_non_minimal_length_encoding(
    ws: Any, make: Make, kind: str, request: pytest.FixtureRequest
) -> None:
    differs(
        request,
        kind,
        {
            "websockets": "RFC 6455 5.2 (the minimal number of bytes MUST be used to encode "
            "the length): websockets' Frame.parse accepts any encoding of the length",
        },
    )
    check(ws, make, ws.frame(BINARY, b"x" * 125, length_bytes=2), [], 1002)


def test_64_bit_length_with_the_top_bit_set(
    ws: Any, make: Make, kind: str, request: pytest.FixtureRequest
) -> None:
    differs(
        request,
        kind,
        {
            "websockets": "RFC 6455 5.2 (the most significant bit of a 64-bit length MUST be "
            "0): websockets doesn't check it and reports the length as over max_size (1009)",
        },
    )
    check(ws, make, ws.frame(BINARY, b"", length=1 << 63), [], 1002)


# -- max_size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_message_of_exactly_max_size(ws: Any, make: Make, opcode: int) -> None:
    data = b"z" * 1000
    expected = ("text", data.decode()) if opcode == TEXT else ("bytes", data)
    check(ws, make, ws.frame(opcode, data), [expected], max_size=1000)
    check(ws, make, ws.fragments(opcode, data, [400, 0, 300]), [expected], max_size=1000)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_message_over_max_size(ws: Any, make: Make, opcode: int) -> None:
    before = ws.frame(TEXT, b"before")
    check(
        ws, make, before + ws.frame(opcode, b"z" * 1001), [("text", "before")], 1009, max_size=1000
    )
    data = before + ws.fragments(opcode, b"z" * 1001, [500, 0, 500])
    check(ws, make, data, [("text", "before")], 1009, max_size=1000)


def test_message_over_max_size_is_refused_from_its_header(ws: Any, make: Make) -> None:
    # Only the header has arrived: the declared length is enough to refuse the message.
    check(ws, make, ws.frame(BINARY, b"", length=1 << 40)[:14], [], 1009, max_size=1000)


def test_control_frames_between_fragments_do_not_count(ws: Any, make: Make) -> None:
    data = ws.frame(BINARY, b"a" * 60, fin=False) + ws.frame(PING, b"p" * 100)
    data += ws.frame(CONT, b"b" * 40)
    check(ws, make, data, [("ping", b"p" * 100), ("bytes", b"a" * 60 + b"b" * 40)], max_size=100)


# -- close frames (RFC 6455 5.5.1, 7.4) --------------------------------------------------------


def test_close_with_code_and_reason(ws: Any, make: Make) -> None:
    check(
        ws, make, ws.frame(CLOSE, close_payload(1000, "bye ✓".encode())), [("close", 1000, "bye ✓")]
    )


def test_close_without_payload(ws: Any, make: Make) -> None:
    check(
        ws, make, ws.frame(TEXT, b"last") + ws.frame(CLOSE), [("text", "last"), ("close", 1005, "")]
    )


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999])
def test_close_codes_a_peer_may_send(
    ws: Any, make: Make, kind: str, request: pytest.FixtureRequest, code: int
) -> None:
    if code == 1014:
        differs(
            request,
            kind,
            {
                "wsproto": "RFC 6455 7.4.2 / IANA registry (1014 Bad Gateway is registered): "
                "wsproto only accepts codes below 3000 that its CloseReason enum lists, and it "
                "lacks 1014",
            },
        )
    check(ws, make, ws.frame(CLOSE, close_payload(code, b"r")), [("close", code, "r")])


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_close_with_an_invalid_code(ws: Any, make: Make, code: int) -> None:
    check(ws, make, ws.frame(CLOSE, close_payload(code)), [], 1002)


def test_close_with_a_one_byte_payload(ws: Any, make: Make) -> None:
    check(ws, make, ws.frame(CLOSE, b"\x03"), [], 1002)


def test_close_reason_that_is_not_utf8(ws: Any, make: Make) -> None:
    check(ws, make, ws.frame(CLOSE, close_payload(1000, b"\xff")), [], 1007)


def test_close_between_fragments(ws: Any, make: Make) -> None:
    # RFC 6455 5.4: control frames may come between the fragments of a message.
    data = ws.frame(TEXT, b"half", fin=False) + ws.frame(CLOSE, close_payload(1001))
    check(ws, make, data, [("close", 1001, "")])


# -- the server's frames -----------------------------------------------------------------------


def test_uncompressed_frames_match_esg(make: Make, frames: ModuleType) -> None:
    engine = make()
    encode = frames.encode_frame
    assert engine.text("") == encode(TEXT, b"")
    assert engine.text("héllo") == encode(TEXT, "héllo".encode())
    assert engine.binary(b"\x00" * 70000) == encode(BINARY, b"\x00" * 70000)
    assert engine.binary(bytearray(b"ab")) == encode(BINARY, b"ab")
    assert engine.ping(b"p") == encode(PING, b"p")
    assert engine.pong(b"") == encode(PONG, b"")
    assert engine.close(1005, "") == b"\x88\x00"
    assert engine.close(1000, "") == frames.encode_close(1000, "")
    assert engine.close(4000, "bye") == frames.encode_close(4000, "bye")
    long_reason = "é" * 100  # 200 bytes: cut to 122 (a whole number of characters)
    assert engine.close(1001, long_reason) == frames.encode_close(1001, long_reason)
    for code in (999, 1004, 1006, 1015, 5000):
        with pytest.raises(ValueError):
            engine.close(code, "")
    with pytest.raises(ValueError):
        engine.ping(b"x" * 126)


def test_frames_can_still_be_written_after_a_close_or_an_error(
    ws: Any, make: Make, frames: ModuleType
) -> None:
    engine = make()
    engine.feed(ws.frame(PING, b"p") + ws.frame(CLOSE, close_payload(1000)))
    assert ws.describe(engine.next_event()) == ("ping", b"p")
    assert ws.describe(engine.next_event()) == ("close", 1000, "")
    assert engine.pong(b"p") == frames.encode_frame(PONG, b"p")
    assert engine.close(1000, "") == frames.encode_close(1000, "")
    engine = make()
    engine.feed(ws.frame(TEXT, b"x", mask=None))
    with pytest.raises(frames.ProtocolError):
        engine.next_event()
    assert engine.close(1002, "bad") == frames.encode_close(1002, "bad")


def test_buffered(ws: Any, make: Make) -> None:
    engine = make()
    data = ws.frame(BINARY, b"b" * 1000)
    engine.feed(data[:500])
    assert engine.next_event() is None
    assert 400 < engine.buffered() <= 500
    engine.feed(data[500:])
    assert ws.describe(engine.next_event()) == ("bytes", b"b" * 1000)
    assert engine.next_event() is None
    assert engine.buffered() == 0


# -- permessage-deflate (RFC 7692) -------------------------------------------------------------


def deflate_combinations() -> Iterator[Any]:
    for server_reset in (False, True):
        for client_reset in (False, True):
            for server_bits, client_bits in ((15, 15), (8, 8), (9, 12), (12, 9)):
                params = DeflateParams(server_reset, client_reset, server_bits, client_bits)
                name = (
                    f"s{'-reset' if server_reset else ''}{server_bits}"
                    f"-c{'-reset' if client_reset else ''}{client_bits}"
                )
                yield pytest.param(params, id=name)


def repetitive_text(seed: int) -> str:
    """~4.5 KB of text whose repeats are 1500 bytes apart: beyond a 9-bit window."""
    rng = random.Random(seed)
    block = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzé ") for _ in range(1400))
    return block * 3


@pytest.mark.parametrize("params", list(deflate_combinations()))
def test_compressed_messages_from_the_client(ws: Any, make: Make, params: DeflateParams) -> None:
    compressor = ws.ClientCompressor(params)
    first = repetitive_text(1)
    second = first[:2000] + repetitive_text(2)  # refers back to the first with context
    binary = first.encode()[::-1]
    # In the order the client sends them: each message may refer back to the ones before.
    head = compressor.compress(first.encode())
    body = compressor.compress(second.encode())
    cut = len(body) // 2
    data = (
        ws.frame(TEXT, head, rsv=4)
        + ws.frame(TEXT, b"plain")  # RFC 7692 6: a message may go uncompressed
        + ws.frame(TEXT, body[:cut], rsv=4, fin=False)
        + ws.frame(PING, b"between")
        + ws.frame(CONT, body[cut:], fin=False)
        + ws.frame(CONT, b"")
        + ws.frame(BINARY, compressor.compress(binary), rsv=4)
        + ws.frame(BINARY, compressor.compress(b""), rsv=4)
    )
    check(
        ws,
        make,
        data,
        [
            ("text", first),
            ("text", "plain"),
            ("ping", b"between"),
            ("text", second),
            ("bytes", binary),
            ("bytes", b""),
        ],
        deflate=params,
    )


@pytest.mark.parametrize("params", list(deflate_combinations()))
def test_compressed_messages_from_the_server(ws: Any, make: Make, params: DeflateParams) -> None:
    engine = make(deflate=params)
    decompressor = ws.ClientDecompressor(params)
    first = repetitive_text(3)
    messages: list[str | bytes] = [first, first[:3000] + repetitive_text(4), b"", first.encode()]
    messages += ["x" * 100_000]
    for message in messages:
        out = engine.text(message) if isinstance(message, str) else engine.binary(message)
        opcode, fin, rsv1, payload, rest = ws.parse_server_frame(out)
        assert (opcode, fin, rest) == (TEXT if isinstance(message, str) else BINARY, True, b"")
        raw = message.encode() if isinstance(message, str) else message
        if rsv1:
            assert decompressor.decompress(payload) == raw
        else:  # esg sends short messages uncompressed (RFC 7692 6 allows it)
            assert len(raw) < 32 and payload == raw
    assert engine.ping(b"p") == b"\x89\x01p"  # control frames are never compressed


def test_compressed_round_trip_through_two_engines(ws: Any, make: Make) -> None:
    # The engine's own output, masked as if a client had sent it, reads back.
    params = DeflateParams(False, False, 15, 15)
    writer = make(deflate=params)
    messages = [repetitive_text(5), repetitive_text(5)[:1000], "short"]
    wire = b""
    for message in messages:
        _, _, rsv1, payload, _ = ws.parse_server_frame(writer.text(message))
        wire += ws.frame(TEXT, payload, rsv=4 if rsv1 else 0)
    check(ws, make, wire, [("text", m) for m in messages], deflate=params)


DEFAULT_DEFLATE = DeflateParams()


def test_corrupt_compressed_data(ws: Any, make: Make) -> None:
    data = ws.frame(TEXT, b"ok") + ws.frame(BINARY, b"\xff\xff\xff\xff", rsv=4)
    check(ws, make, data, [("text", "ok")], 1007, deflate=DEFAULT_DEFLATE)


def test_compressed_invalid_utf8(ws: Any, make: Make) -> None:
    body = ws.ClientCompressor(DEFAULT_DEFLATE).compress(b"abc\xff")
    check(ws, make, ws.frame(TEXT, body, rsv=4), [], 1007, deflate=DEFAULT_DEFLATE)


@pytest.mark.parametrize("opcode", [PING, CLOSE])
def test_rsv1_on_a_control_frame(ws: Any, make: Make, opcode: int) -> None:
    check(ws, make, ws.frame(opcode, b"", rsv=4), [], 1002, deflate=DEFAULT_DEFLATE)


def test_rsv1_on_a_continuation_frame(ws: Any, make: Make) -> None:
    body = ws.ClientCompressor(DEFAULT_DEFLATE).compress(b"hello")
    data = ws.frame(TEXT, body[:2], rsv=4, fin=False) + ws.frame(CONT, body[2:], rsv=4)
    check(ws, make, data, [], 1002, deflate=DEFAULT_DEFLATE)


@pytest.mark.parametrize("rsv", [2, 1, 6])
def test_rsv2_rsv3_with_compression(ws: Any, make: Make, rsv: int) -> None:
    check(ws, make, ws.frame(TEXT, b"x", rsv=rsv), [], 1002, deflate=DEFAULT_DEFLATE)


def test_decompression_bomb(ws: Any, make: Make) -> None:
    body = ws.ClientCompressor(DEFAULT_DEFLATE).compress(b"\x00" * 2_000_000)
    assert len(body) < 5000
    data = ws.frame(TEXT, b"ok") + ws.frame(BINARY, body, rsv=4)
    check(ws, make, data, [("text", "ok")], 1009, max_size=100_000, deflate=DEFAULT_DEFLATE)


def test_compressed_message_over_max_size_by_one(ws: Any, make: Make) -> None:
    compressor = ws.ClientCompressor(DeflateParams(client_no_context_takeover=True))
    params = DeflateParams(client_no_context_takeover=True)
    ok = compressor.compress(b"q" * 5000)
    too_big = compressor.compress(b"q" * 5001)
    data = ws.frame(BINARY, ok, rsv=4) + ws.frame(BINARY, too_big, rsv=4)
    check(ws, make, data, [("bytes", b"q" * 5000)], 1009, max_size=5000, deflate=params)


def test_incompressible_message_of_exactly_max_size(ws: Any, make: Make) -> None:
    # Compressed, it is a few bytes longer than max_size on the wire: still accepted.
    payload = random.Random(7).randbytes(20_000)
    body = ws.ClientCompressor(DEFAULT_DEFLATE).compress(payload)
    assert len(body) > len(payload)
    data = ws.frame(BINARY, body, rsv=4)
    check(ws, make, data, [("bytes", payload)], max_size=20_000, deflate=DEFAULT_DEFLATE)


def test_message_ending_with_a_final_deflate_block(
    ws: Any, make: Make, kind: str, request: pytest.FixtureRequest
) -> None:
    differs(
        request,
        kind,
        {
            "websockets": "RFC 7692 7.2.3.4 (a message may end with a DEFLATE block with "
            "BFINAL set): websockets keeps the decompressor that reached the end of its "
            "stream, so the next message inflates to nothing and comes out empty",
            "wsproto": "RFC 7692 7.2.3.4 (a message may end with a DEFLATE block with BFINAL "
            "set): wsproto keeps the decompressor that reached the end of its stream, zlib "
            "refuses the next message and wsproto reports it as invalid data (1007)",
        },
    )

    def finished(payload: bytes) -> bytes:
        zobj = zlib.compressobj(6, zlib.DEFLATED, -15)
        return zobj.compress(payload) + zobj.flush(zlib.Z_FINISH)

    data = ws.frame(TEXT, finished(b"first"), rsv=4) + ws.frame(TEXT, finished(b"second"), rsv=4)
    check(ws, make, data, [("text", "first"), ("text", "second")], deflate=DEFAULT_DEFLATE)
