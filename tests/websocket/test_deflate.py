"""permessage-deflate (RFC 7692): negotiation, the zlib contexts, and the intent of
Autobahn|Testsuite groups 12-13 (compressed messages under every parameter combination).

The client side here is plain zlib (``ws.ClientCompressor`` / ``ws.ClientDecompressor``), set up
exactly as the agreed parameters allow a client to: its decompressor has only the window the
server promised, and it resets between messages when the server promised no context takeover.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest

from esg.websocket import deflate
from esg.websocket.deflate import DeflateParams, negotiate

TEXT, BINARY, CONT, PING = 1, 2, 0, 9

ALL_PARAMS = [
    DeflateParams(server_nct, client_nct, server_bits, client_bits)
    for server_nct in (False, True)
    for client_nct in (False, True)
    for server_bits in (8, 9, 12, 15)
    for client_bits in (8, 9, 15)
]


def params_id(params: DeflateParams) -> str:
    server = "N" if params.server_no_context_takeover else "T"
    client = "N" if params.client_no_context_takeover else "T"
    return f"s{server}{params.server_max_window_bits}-c{client}{params.client_max_window_bits}"


def sample_payloads() -> list[bytes]:
    rng = random.Random(12)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"\xce\xba\xe1\xbd\xb9", b"{}", b"\n"]
    text = b" ".join(rng.choice(words) for _ in range(20000))
    return [
        b"",
        b"x",
        text[:16],
        text[:64],
        text[:256],
        text[:1024],
        text[:4096],
        text[:32768],
        text[:131072],
        bytes(rng.getrandbits(8) for _ in range(3000)),  # incompressible
        b"\x00" * 70000,
        text[:300] * 3,  # repeats inside the message
    ]


PAYLOADS = sample_payloads()


# -- negotiation (section 7.1) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offers", "params", "response"),
    [
        ([b"permessage-deflate"], DeflateParams(), b"permessage-deflate"),
        (
            [b"permessage-deflate; client_max_window_bits"],
            DeflateParams(),
            b"permessage-deflate",
        ),
        (
            [b"permessage-deflate; client_max_window_bits=10"],
            DeflateParams(client_max_window_bits=10),
            b"permessage-deflate; client_max_window_bits=10",
        ),
        (
            [b"permessage-deflate; server_max_window_bits=8"],
            DeflateParams(server_max_window_bits=8),
            b"permessage-deflate; server_max_window_bits=8",
        ),
        (
            [b'permessage-deflate; server_max_window_bits="12"'],
            DeflateParams(server_max_window_bits=12),
            b"permessage-deflate; server_max_window_bits=12",
        ),
        (
            [b"permessage-deflate;server_no_context_takeover;client_no_context_takeover"],
            DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True),
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            [
                b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=16, "
                b"permessage-deflate; client_max_window_bits",
            ],
            DeflateParams(),
            b"permessage-deflate",
        ),
        (
            [
                b"foo",
                b"permessage-deflate; unknown=1",
                b"permessage-deflate ;\tserver_max_window_bits = 9",
            ],
            DeflateParams(server_max_window_bits=9),
            b"permessage-deflate; server_max_window_bits=9",
        ),
        (
            [b'permessage-deflate; client_max_window_bits="1\\0"'],  # quoted-pair unescaped
            DeflateParams(client_max_window_bits=10),
            b"permessage-deflate; client_max_window_bits=10",
        ),
        (
            [b", ,permessage-deflate ,"],
            DeflateParams(),
            b"permessage-deflate",
        ),
    ],
)
def test_negotiate_accepts(offers: list[bytes], params: DeflateParams, response: bytes) -> None:
    assert negotiate(offers) == (params, response)


@pytest.mark.parametrize(
    "offer",
    [
        b"",
        b"permessage-deflate; foo",  # unknown parameter
        b"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        b"permessage-deflate; client_max_window_bits; client_max_window_bits=9",
        b"permessage-deflate; server_no_context_takeover=1",
        b"permessage-deflate; client_no_context_takeover=true",
        b"permessage-deflate; server_max_window_bits",  # needs a value
        b"permessage-deflate; server_max_window_bits=7",
        b"permessage-deflate; server_max_window_bits=16",
        b"permessage-deflate; server_max_window_bits=08",  # no leading zeros
        b"permessage-deflate; server_max_window_bits=+9",
        b"permessage-deflate; server_max_window_bits=9.0",
        b"permessage-deflate; client_max_window_bits=0",
        b'permessage-deflate; client_max_window_bits="1 0"',  # not a token once unquoted
        b"permessage-deflate; server_max_window_bits=10 10",
        b"permessage-deflate;; client_max_window_bits",
        b"permessage-deflate client_max_window_bits",
        b"permessage-deflate; =10",
        b"permessage-deflate; server_max_window_bits=",
        b'permessage-deflate; server_max_window_bits="10',
        b"Permessage-Deflate",
        b"permessage-deflate\x00",
        b'foo; a="b, permessage-deflate, c"',  # an offer hidden inside a quoted string
        b'foo; a="b, permessage-deflate',  # unterminated: the rest is inside the string
        b"\xffpermessage-deflate",
    ],
)
def test_negotiate_declines(offer: bytes) -> None:
    assert negotiate([offer]) is None


def test_negotiate_picks_the_first_acceptable_offer_across_headers() -> None:
    offers = [
        b"permessage-deflate; bogus, permessage-deflate; server_max_window_bits=10",
        b"permessage-deflate",
    ]
    params, response = negotiate(offers) or (None, None)
    assert params == DeflateParams(server_max_window_bits=10)
    assert response == b"permessage-deflate; server_max_window_bits=10"
    assert negotiate([]) is None


def test_negotiate_never_raises_on_junk() -> None:
    rng = random.Random(7)
    alphabet = b'permessage-deflate;=,"\\ \t_0189client_max_window_bits\x00\xff'
    for _ in range(3000):
        junk = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        result = negotiate([junk])
        if result is not None:
            assert result[1].startswith(b"permessage-deflate")


# -- the contexts -----------------------------------------------------------------------------


@pytest.mark.parametrize("params", ALL_PARAMS, ids=params_id)
def test_deflater_output_decodes_with_the_promised_window(ws: Any, params: DeflateParams) -> None:
    deflater = deflate.Deflater(params)
    client = ws.ClientDecompressor(params)
    for payload in PAYLOADS + PAYLOADS[:6]:
        compressed = deflater.compress(payload)
        assert not compressed.endswith(b"\x00\x00\xff\xff") or payload == b""
        assert client.decompress(compressed) == payload


def test_server_window_of_8_bits_really_fits_a_256_byte_window() -> None:
    # zlib can't deflate with an 8-bit raw window and uses 9; its matches never reach further
    # back than 512 - 262 = 250 bytes, so an inflater with a 256-byte window decodes it.
    params = DeflateParams(server_max_window_bits=8)
    deflater = deflate.Deflater(params)
    inflater = zlib.decompressobj(-8)
    data = (bytes(range(200)) + b"abc" * 30) * 50
    for _ in range(3):
        assert inflater.decompress(deflater.compress(data) + b"\x00\x00\xff\xff") == data


def test_context_takeover_shrinks_repeated_messages() -> None:
    payload = b"the same message, sent again and again " * 4
    kept = deflate.Deflater(DeflateParams())
    first, second = kept.compress(payload), kept.compress(payload)
    assert len(second) < len(first) // 2
    fresh = deflate.Deflater(DeflateParams(server_no_context_takeover=True))
    assert fresh.compress(payload) == fresh.compress(payload) == first


def test_inflater_resets_between_messages_without_client_context_takeover() -> None:
    payload = b"a message the second one refers back to " * 4
    client = zlib.compressobj(6, zlib.DEFLATED, -15)

    def message(data: bytes) -> bytes:
        return (client.compress(data) + client.flush(zlib.Z_SYNC_FLUSH))[:-4]

    first, second = message(payload), message(payload)  # the second uses the first's context
    kept = deflate.Inflater(DeflateParams())
    assert kept.decompress(first, 10**6) + kept.finish(10**6) == payload
    assert kept.decompress(second, 10**6) + kept.finish(10**6) == payload
    reset = deflate.Inflater(DeflateParams(client_no_context_takeover=True))
    assert reset.decompress(first, 10**6) + reset.finish(10**6) == payload
    with pytest.raises(deflate.DecompressionError):
        reset.decompress(second, 10**6)
        reset.finish(10**6)


def test_inflater_bounds_every_output() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\x00" * (1 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    inflater = deflate.Inflater(DeflateParams())
    assert len(inflater.decompress(data[:10], 1 << 20)) <= 1 << 20
    with pytest.raises(deflate.MessageTooBig):
        deflate.Inflater(DeflateParams()).decompress(data, 1000)
    exact = deflate.Inflater(DeflateParams())
    assert len(exact.decompress(data[:-4], 1 << 20) + exact.finish(1 << 20)) == 1 << 20


def test_inflater_rejects_corrupt_data() -> None:
    with pytest.raises(deflate.DecompressionError):
        deflate.Inflater(DeflateParams()).decompress(b"\xff\xff\xff\xff", 100)


# -- groups 12-13: compressed messages through the reader and the writer ------------------------


def compressed_message(ws: Any, client: Any, opcode: int, payload: bytes, fragment: int) -> bytes:
    """One compressed message, split into fragments of ``fragment`` bytes (0: one frame)."""
    data = client.compress(payload)
    if fragment == 0 or len(data) <= fragment:
        return ws.frame(opcode, data, rsv=4)
    sizes = [fragment] * ((len(data) - 1) // fragment)
    return ws.fragments(opcode, data, sizes, rsv1=True)


@pytest.mark.parametrize("params", ALL_PARAMS, ids=params_id)
def test_compressed_messages_from_the_client(ws: Any, params: DeflateParams) -> None:
    client = ws.ClientCompressor(params)
    data = []
    events = []
    for i, payload in enumerate(PAYLOADS):
        fragment = (0, 1, 7, 256, 1000)[i % 5]
        if i % 2 and _is_text(payload):
            data.append(compressed_message(ws, client, TEXT, payload, fragment))
            events.append(("text", payload.decode()))
        else:
            data.append(compressed_message(ws, client, BINARY, payload, fragment))
            events.append(("bytes", payload))
        if i % 3 == 0:
            data.append(ws.frame(PING, b"between"))
            events.append(("ping", b"between"))
            data.append(ws.frame(BINARY, b"plain"))  # uncompressed messages stay allowed
            events.append(("bytes", b"plain"))
    stream = b"".join(data)
    for mode, pieces in ws.feeding_modes(stream):
        if mode == "bytewise":
            continue  # 200 KB one byte at a time is slow; the small cases below do that
        reader = ws.reader(inflater=deflate.Inflater(params))
        assert ws.replay(pieces, reader) == ws.Outcome(events, None), mode


def _is_text(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("params", ALL_PARAMS[::5], ids=params_id)
def test_small_compressed_messages_fed_byte_by_byte(ws: Any, params: DeflateParams) -> None:
    client = ws.ClientCompressor(params)
    stream = b"".join(
        compressed_message(ws, client, TEXT, b"Hello, compressed world! " * n, n % 3 * 5)
        for n in range(1, 6)
    )
    events = [("text", "Hello, compressed world! " * n) for n in range(1, 6)]
    ws.check(stream, events, deflate=params)


@pytest.mark.parametrize("params", ALL_PARAMS, ids=params_id)
def test_writer_messages_for_every_parameter_combination(
    frames: Any, ws: Any, params: DeflateParams
) -> None:
    writer = frames.FrameWriter(deflate.Deflater(params))
    client = ws.ClientDecompressor(params)
    for payload in PAYLOADS:
        opcode, fin, rsv1, body, rest = ws.parse_server_frame(writer.binary(payload))
        assert (opcode, fin, rest) == (2, True, b"")
        assert rsv1 == (len(payload) >= 32)
        assert (client.decompress(body) if rsv1 else body) == payload
    opcode, _, rsv1, body, _ = ws.parse_server_frame(writer.text("κόσμε " * 50))
    assert opcode == 1 and rsv1
    assert client.decompress(body).decode() == "κόσμε " * 50


def test_writer_threshold_and_control_frames(frames: Any, ws: Any) -> None:
    writer = frames.FrameWriter(deflate.Deflater(DeflateParams()), min_compress_size=0)
    _, _, rsv1, body, _ = ws.parse_server_frame(writer.text(""))
    assert rsv1 and zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff") == b""
    _, _, rsv1, _, _ = ws.parse_server_frame(writer.ping(b"p" * 100))
    assert not rsv1  # control frames are never compressed


def test_echo_through_reader_and_writer(frames: Any, ws: Any) -> None:
    # What a server does for Autobahn 12.x: read compressed messages, send them back.
    params = DeflateParams()
    client_out = ws.ClientCompressor(params)
    client_in = ws.ClientDecompressor(params)
    reader = ws.reader(inflater=deflate.Inflater(params))
    writer = frames.FrameWriter(deflate.Deflater(params))
    for payload in PAYLOADS:
        reader.feed(compressed_message(ws, client_out, BINARY, payload, 0))
        event = reader.next_event()
        _, _, rsv1, body, _ = ws.parse_server_frame(writer.binary(event.data))
        assert (client_in.decompress(body) if rsv1 else body) == payload


@pytest.mark.parametrize("empty", [b"", b"\x00", b"\x02\x00"])
def test_empty_compressed_messages(ws: Any, empty: bytes) -> None:
    ws.check(ws.frame(TEXT, empty, rsv=4), [("text", "")], deflate=DeflateParams())


def test_message_ending_with_a_final_block(ws: Any) -> None:
    # RFC 7692 7.2.3.4: a sender may end a message with BFINAL set; the next message is then
    # a new DEFLATE stream.
    def final(data: bytes) -> bytes:
        zobj = zlib.compressobj(6, zlib.DEFLATED, -15)
        return zobj.compress(data) + zobj.flush(zlib.Z_FINISH)

    stream = ws.frame(TEXT, final(b"first"), rsv=4) + ws.frame(TEXT, final(b"second"), rsv=4)
    ws.check(stream, [("text", "first"), ("text", "second")], deflate=DeflateParams())
    trailing = ws.frame(TEXT, final(b"first") + b"\x00", rsv=4)
    ws.check(trailing, [], 1007, deflate=DeflateParams())


def test_corrupt_compressed_data_is_1007(ws: Any) -> None:
    ws.check(ws.frame(BINARY, b"\xff\xfe\xfd\xfc", rsv=4), [], 1007, deflate=DeflateParams())


def test_compressed_text_must_be_utf8(ws: Any) -> None:
    client = ws.ClientCompressor(DeflateParams())
    data = compressed_message(ws, client, TEXT, b"valid " * 20 + b"\xed\xa0\x80", 10)
    ws.check(data, [], 1007, deflate=DeflateParams())


def test_compressed_size_limit_counts_inflated_bytes(ws: Any) -> None:
    payload = b"0123456789" * 100
    for size, error in ((1000, None), (999, 1009)):
        client = ws.ClientCompressor(DeflateParams())
        data = compressed_message(ws, client, BINARY, payload, 7)
        events = [("bytes", payload)] if error is None else []
        ws.check(data, events, error, deflate=DeflateParams(), max_size=size)


def test_compressed_wire_size_is_bounded_from_the_header(ws: Any) -> None:
    head = ws.frame(BINARY, b"", rsv=4, length=1 << 30)
    ws.check(head, [], 1009, deflate=DeflateParams(), max_size=1 << 20)


class RecordingDecompressor:
    """Wraps a zlib decompressor, recording the size of everything it hands out."""

    def __init__(self, real: Any, sizes: list[int]) -> None:
        self.real = real
        self.sizes = sizes

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        assert max_length > 0, "every inflate must be bounded"
        out: bytes = self.real.decompress(data, max_length)
        self.sizes.append(len(out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("fragment", [0, 64, 1])
def test_decompression_bomb_is_refused_within_max_size(
    ws: Any, monkeypatch: pytest.MonkeyPatch, fragment: int
) -> None:
    # CVE-2018-1000518: 1 MiB of zeros deflates to ~1 KiB; with max_size 64 KiB the reader must
    # refuse it with 1009 having inflated no more than max_size (+1 byte to see the excess).
    max_size = 64 * 1024
    sizes: list[int] = []
    real = zlib.decompressobj
    monkeypatch.setattr(
        deflate.zlib, "decompressobj", lambda *a, **k: RecordingDecompressor(real(*a, **k), sizes)
    )
    compressed = ws.ClientCompressor(DeflateParams(), level=9).compress(b"\x00" * (1 << 20))
    assert len(compressed) < 1100
    if fragment:
        cut = [fragment] * ((len(compressed) - 1) // fragment)
        bomb = ws.fragments(BINARY, compressed, cut, rsv1=True)
    else:
        bomb = ws.frame(BINARY, compressed, rsv=4)
    reader = ws.reader(inflater=deflate.Inflater(DeflateParams()), max_size=max_size)
    reader.feed(bomb)
    with pytest.raises(ws.module.ProtocolError) as exc:
        while reader.next_event() is not None:
            pass
    assert exc.value.code == 1009
    assert sizes and max(sizes) <= max_size + 1
    assert sum(sizes) <= max_size + 1


AUTOBAHN_13_OFFERS = [
    [b"permessage-deflate"],  # 13.1 / 13.2
    [b"permessage-deflate; client_no_context_takeover; client_max_window_bits"],
    [b"permessage-deflate; server_max_window_bits=8; client_max_window_bits"],  # 13.3
    [b"permessage-deflate; server_max_window_bits=15"],  # 13.4
    [b"permessage-deflate; server_no_context_takeover; server_max_window_bits=8"],  # 13.5
    [b"permessage-deflate; server_no_context_takeover; server_max_window_bits=15"],  # 13.6
    [  # 13.7: several offers, the first acceptable one wins
        b"permessage-deflate; server_no_context_takeover; server_max_window_bits=8, "
        b"permessage-deflate; server_no_context_takeover, permessage-deflate"
    ],
    [b"permessage-deflate; client_max_window_bits=9; client_no_context_takeover"],
]


@pytest.mark.parametrize("offers", AUTOBAHN_13_OFFERS)
def test_negotiated_offers_work_both_ways(frames: Any, ws: Any, offers: list[bytes]) -> None:
    accepted = negotiate(offers)
    assert accepted is not None
    params, _ = accepted
    reader = ws.reader(inflater=deflate.Inflater(params))
    writer = frames.FrameWriter(deflate.Deflater(params), min_compress_size=0)
    client_out = ws.ClientCompressor(params)
    client_in = ws.ClientDecompressor(params)
    for payload in PAYLOADS[:9] * 2:
        reader.feed(compressed_message(ws, client_out, BINARY, payload, 100))
        message = reader.next_event()
        assert ws.describe(message) == ("bytes", payload)
        _, _, rsv1, body, _ = ws.parse_server_frame(writer.binary(message.data))
        assert rsv1 and client_in.decompress(body) == payload
