"""HPACK (esg.http2.hpack) against RFC 7541's own examples, plus the codec's API and rules.

Appendix C's examples run against both builds: each header block is decoded and the decoded
list, the dynamic table's entries (newest first) and its size are compared with the RFC's
after every step; the encoder's output is checked where the RFC fixes it and otherwise by
decoding it.  Limits and malformed input are in test_hpack_malformed.py, the published
vectors in test_hpack_vectors.py, the comparison with the ``hpack`` package in
test_hpack_differential.py.
"""

from __future__ import annotations

import random
from types import ModuleType

import hpack as hpack_package
import pytest

from esg.http2 import huffman
from esg.http2.errors import HeaderListTooLarge, HPACKError

Headers = list[tuple[bytes, bytes]]


def block(rfc_hex: str) -> bytes:
    """A header block as the RFC prints it: hex in groups of four, over several lines."""
    return bytes.fromhex("".join(rfc_hex.split()))


# -- Appendix C.1: integers -----------------------------------------------------------------


def test_c1_1_ten_on_a_5_bit_prefix(codec: ModuleType) -> None:
    # A dynamic table size update has a 5-bit prefix: 001 01010 sets the size to 10.
    decoder = codec.Decoder()
    assert decoder.decode(b"\x2a") == []
    assert decoder.max_table_size == 10


def test_c1_2_1337_on_a_5_bit_prefix(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    assert decoder.decode(block("3f9a 0a")) == []
    assert decoder.max_table_size == 1337
    # The encoder writes it the same way when its table is 1337 bytes.
    assert codec.Encoder(1337).encode([]) == block("3f9a 0a")


def test_c1_3_42_on_an_8_bit_prefix(codec: ModuleType) -> None:
    # HPACK never uses an 8-bit prefix, but a string length's 7 bits after the H bit come
    # close: 42 fits in the prefix, so it is one byte.
    decoder = codec.Decoder()
    name = b"n" * 42
    assert decoder.decode(b"\x00\x2a" + name + b"\x00") == [(name, b"")]


# -- Appendix C.2: header field representations ---------------------------------------------


def test_c2_1_literal_with_indexing(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    headers = decoder.decode(
        block("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")
    )
    assert headers == [(b"custom-key", b"custom-header")]
    assert decoder.dynamic_table() == [(b"custom-key", b"custom-header")]
    assert decoder.table_size == 55


def test_c2_2_literal_without_indexing(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    headers = decoder.decode(block("040c 2f73 616d 706c 652f 7061 7468"))
    assert headers == [(b":path", b"/sample/path")]
    assert decoder.dynamic_table() == []
    assert decoder.table_size == 0


def test_c2_3_literal_never_indexed(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    headers = decoder.decode(block("1008 7061 7373 776f 7264 0673 6563 7265 74"))
    assert headers == [(b"password", b"secret")]
    assert decoder.dynamic_table() == []


def test_c2_4_indexed(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    assert decoder.decode(b"\x82") == [(b":method", b"GET")]
    assert decoder.dynamic_table() == []


# -- Appendix C.3-C.6: requests and responses, without and with Huffman coding ---------------

AUTHORITY = (b":authority", b"www.example.com")
NO_CACHE = (b"cache-control", b"no-cache")
CUSTOM = (b"custom-key", b"custom-value")
REQUESTS: list[tuple[Headers, Headers, int]] = [
    # (decoded list, dynamic table newest first, table size) after each request
    ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), AUTHORITY], [AUTHORITY], 57),
    (
        [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), AUTHORITY, NO_CACHE],
        [NO_CACHE, AUTHORITY],
        110,
    ),
    (
        [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":path", b"/index.html"),
            AUTHORITY,
            CUSTOM,
        ],
        [CUSTOM, NO_CACHE, AUTHORITY],
        164,
    ),
]
C3_BLOCKS = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
]
C4_BLOCKS = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
]

DATE_21 = (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT")
DATE_22 = (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT")
PRIVATE = (b"cache-control", b"private")
LOCATION = (b"location", b"https://www.example.com")
GZIP = (b"content-encoding", b"gzip")
COOKIE = (b"set-cookie", b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
RESPONSES: list[tuple[Headers, Headers, int]] = [
    (
        [(b":status", b"302"), PRIVATE, DATE_21, LOCATION],
        [LOCATION, DATE_21, PRIVATE, (b":status", b"302")],
        222,
    ),
    (
        [(b":status", b"307"), PRIVATE, DATE_21, LOCATION],
        [(b":status", b"307"), LOCATION, DATE_21, PRIVATE],
        222,
    ),
    (
        [(b":status", b"200"), PRIVATE, DATE_22, LOCATION, GZIP, COOKIE],
        [COOKIE, GZIP, DATE_22],
        215,
    ),
]
C5_BLOCKS = [
    """4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
    2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
    6c65 2e63 6f6d""",
    "4803 3330 37c1 c0bf",
    """88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
    54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
    5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
    3d31""",
]
C6_BLOCKS = [
    """4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
    2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3""",
    "4883 640e ffc1 c0bf",
    """88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
    77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
    9587 3160 65c0 03ed 4ee5 b106 3d50 07""",
]
EXAMPLES = {
    "C.3 requests": (C3_BLOCKS, REQUESTS, 4096),
    "C.4 requests, Huffman": (C4_BLOCKS, REQUESTS, 4096),
    # The response examples use a 256-byte table, so that entries get evicted.
    "C.5 responses": (C5_BLOCKS, RESPONSES, 256),
    "C.6 responses, Huffman": (C6_BLOCKS, RESPONSES, 256),
}


@pytest.mark.parametrize("example", EXAMPLES)
def test_appendix_c_sequences(codec: ModuleType, example: str) -> None:
    blocks, steps, table_size = EXAMPLES[example]
    decoder = codec.Decoder(max_table_size=table_size)
    for number, (hex_block, (headers, table, size)) in enumerate(
        zip(blocks, steps, strict=True), 1
    ):
        assert decoder.decode(block(hex_block)) == headers, f"{example}, block {number}"
        assert decoder.dynamic_table() == table, f"{example}, table after block {number}"
        assert decoder.table_size == size, f"{example}, table size after block {number}"


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        (b"www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        (b"no-cache", "a8eb 1064 9cbf"),
        (b"custom-key", "25a8 49e9 5ba9 7d7f"),
        (b"custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        (b"302", "6402"),
        (b"307", "640e ff"),
        (b"private", "aec3 771a 4b"),
        (
            b"Mon, 21 Oct 2013 20:13:21 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
        ),
        (b"https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"),
        (b"gzip", "9bd9 ab"),
        (
            b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            """94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587
            3160 65c0 03ed 4ee5 b106 3d50 07""",
        ),
    ],
)
def test_huffman_strings_of_appendix_c(codec: ModuleType, text: bytes, encoded: str) -> None:
    assert codec.huffman_encode(text) == block(encoded)
    assert codec.huffman_encoded_length(text) == len(block(encoded))
    assert codec.huffman_decode(block(encoded)) == text


def test_the_encoder_reproduces_the_c4_requests(codec: ModuleType) -> None:
    # The RFC's encoder indexes every literal and Huffman-codes every string that gets shorter;
    # so does esg's for these fields (":path" aside, which it never indexes; the examples only
    # use static :path entries).
    encoder = codec.Encoder()
    for hex_block, (headers, _, _) in zip(C4_BLOCKS, REQUESTS, strict=True):
        assert encoder.encode(headers) == block(hex_block)


# -- the Huffman code ------------------------------------------------------------------------


def test_the_huffman_table_is_the_hpack_packages_too() -> None:
    # A cross-check of the transcription from RFC 7541 Appendix B: another implementation's
    # table, typed independently, agrees on every code and length.
    from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

    assert [code for code, _ in huffman.CODES] == list(REQUEST_CODES)
    assert [length for _, length in huffman.CODES] == list(REQUEST_CODES_LENGTH)


def test_the_huffman_code_is_canonical_and_complete() -> None:
    # RFC 7541 Appendix B: codes sorted by (length, symbol) count up, and the Kraft sum is 1.
    ordered = sorted(range(257), key=lambda symbol: (huffman.CODES[symbol][1], symbol))
    expected = 0
    previous_length = huffman.CODES[ordered[0]][1]
    for symbol in ordered:
        code, length = huffman.CODES[symbol]
        expected <<= length - previous_length
        assert code == expected, symbol
        expected += 1
        previous_length = length
    assert sum(2 ** (30 - length) for _, length in huffman.CODES) == 2**30


def test_every_octet_round_trips_through_huffman(codec: ModuleType) -> None:
    for octet in range(256):
        for count in (1, 2, 3, 7, 8, 9):
            text = bytes([octet]) * count
            assert codec.huffman_decode(codec.huffman_encode(text)) == text


def test_random_strings_round_trip_through_huffman(codec: ModuleType) -> None:
    rng = random.Random(7541)
    for _ in range(500):
        text = rng.randbytes(rng.randrange(0, 80))
        encoded = codec.huffman_encode(text)
        assert len(encoded) == codec.huffman_encoded_length(text)
        assert codec.huffman_decode(encoded) == text
        assert (
            hpack_package.huffman.HuffmanEncoder(
                hpack_package.huffman_constants.REQUEST_CODES,
                hpack_package.huffman_constants.REQUEST_CODES_LENGTH,
            ).encode(text)
            == encoded
        )


# -- the decoder's API -----------------------------------------------------------------------


def test_a_field_larger_than_the_table_empties_it(codec: ModuleType) -> None:
    decoder = codec.Decoder(max_table_size=100)
    decoder.decode(b"\x40\x01a\x01b")  # 34 bytes
    assert decoder.table_size == 34
    big = b"v" * 68  # 1 + 68 + 32 = 101 bytes
    assert decoder.decode(b"\x40\x01a\x44" + big) == [(b"a", big)]
    assert decoder.dynamic_table() == []
    assert decoder.table_size == 0


def test_a_field_exactly_the_table_size_fits(codec: ModuleType) -> None:
    decoder = codec.Decoder(max_table_size=100)
    value = b"v" * 67  # 1 + 67 + 32 = 100 bytes
    decoder.decode(b"\x40\x01a\x43" + value)
    assert decoder.dynamic_table() == [(b"a", value)]


def test_a_literal_may_name_the_entry_its_insertion_evicts(codec: ModuleType) -> None:
    # RFC 7541 section 4.4: the name is read before the entry it came from is evicted.
    decoder = codec.Decoder(max_table_size=70)
    decoder.decode(b"\x40\x04name\x05value")  # 41 bytes
    assert decoder.decode(b"\x7e\x06value2") == [(b"name", b"value2")]  # index 62, 42 bytes
    assert decoder.dynamic_table() == [(b"name", b"value2")]


def test_size_updates_evict_and_may_come_twice_at_the_start(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    decoder.decode(block(C3_BLOCKS[0]))
    decoder.decode(block(C3_BLOCKS[1]))
    assert decoder.table_size == 110
    # 0 empties the table, then 4096 (3f e1 1f) gives it its room back.
    assert decoder.decode(block("20 3fe1 1f 82")) == [(b":method", b"GET")]
    assert decoder.dynamic_table() == []
    assert decoder.max_table_size == 4096
    decoder.decode(block(C3_BLOCKS[0]))
    assert decoder.decode(block("3f 1a")) == []  # 57: the entry of 57 bytes stays
    assert decoder.dynamic_table() == [AUTHORITY]
    assert decoder.decode(block("3f 19")) == []  # 56: it goes
    assert decoder.dynamic_table() == []


def test_a_raised_limit_needs_no_update_and_allows_a_larger_table(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    decoder.set_max_table_size(16384)
    assert decoder.max_table_size == 4096  # until the encoder says otherwise
    decoder.decode(b"\x82")
    assert decoder.decode(block("3fe1 7f")) == []  # 16384
    assert decoder.max_table_size == 16384


def test_a_lowered_limit_is_owed_an_update(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    decoder.set_max_table_size(100)
    assert decoder.decode(block("3f45 82")) == [(b":method", b"GET")]  # 100
    assert decoder.max_table_size == 100
    # Lowered to 0 and raised to 4096 between two blocks: the smallest must be signalled.
    decoder.set_max_table_size(0)
    decoder.set_max_table_size(4096)
    assert decoder.decode(block("20 3fe1 1f 82")) == [(b":method", b"GET")]
    assert decoder.max_table_size == 4096


def test_a_limit_still_above_the_table_size_is_owed_nothing(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    decoder.decode(block("3f45"))  # the encoder uses 100 bytes
    decoder.set_max_table_size(200)
    assert decoder.decode(b"\x82") == [(b":method", b"GET")]


def test_set_max_table_size_refuses_nonsense(codec: ModuleType) -> None:
    for side in (codec.Decoder(), codec.Encoder()):
        with pytest.raises(ValueError):
            side.set_max_table_size(-1)
        with pytest.raises(ValueError):
            side.set_max_table_size(2**32)
    with pytest.raises(ValueError):
        codec.Encoder(-1)


def test_the_decoded_list_shares_the_static_entries(codec: ModuleType) -> None:
    # Indexed fields cost no allocation: the table's own tuple is returned.
    first = codec.Decoder().decode(b"\x82")[0]
    second = codec.Decoder().decode(b"\x82")[0]
    assert first is second


def test_the_errors_are_shared_by_both_builds(codec: ModuleType) -> None:
    assert codec.HPACKError is HPACKError
    assert codec.HeaderListTooLarge is HeaderListTooLarge
    assert not issubclass(HeaderListTooLarge, HPACKError)


def test_the_static_table_has_61_entries(codec: ModuleType) -> None:
    assert len(codec.STATIC_TABLE) == 61
    assert codec.STATIC_TABLE[0] == (b":authority", b"")
    assert codec.STATIC_TABLE[7] == (b":status", b"200")
    assert codec.STATIC_TABLE[60] == (b"www-authenticate", b"")
    decoder = codec.Decoder()
    for index, field in enumerate(codec.STATIC_TABLE, 1):
        assert decoder.decode(bytes([0x80 | index])) == [field]


# -- the encoder -----------------------------------------------------------------------------


def test_static_fields_are_one_byte(codec: ModuleType) -> None:
    encoder = codec.Encoder()
    assert encoder.encode([(b":status", b"200")]) == b"\x88"
    assert encoder.encode([(b":status", b"404"), (b":status", b"500")]) == b"\x8d\x8e"
    assert encoder.table_size == 0


def test_repeated_fields_become_one_byte(codec: ModuleType) -> None:
    encoder = codec.Encoder()
    headers = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"server", b"esg")]
    first = encoder.encode(headers)
    assert encoder.encode(headers) == b"\x88\xbf\xbe"
    decoder = codec.Decoder()
    assert decoder.decode(first) == headers
    assert decoder.decode(b"\x88\xbf\xbe") == headers


def test_sensitive_fields_are_never_indexed(codec: ModuleType) -> None:
    encoder = codec.Encoder()
    encoded = encoder.encode([(b"set-cookie", b"id=1"), (b"authorization", b"secret")])
    assert encoded[0] & 0xF0 == 0x10  # never indexed, name 55
    assert encoder.table_size == 0
    decoded = hpack_package.Decoder().decode(encoded, raw=True)
    assert [header.indexable for header in decoded] == [False, False]


def test_volatile_fields_are_not_indexed(codec: ModuleType) -> None:
    encoder = codec.Encoder()
    encoder.encode([(b"content-length", b"1234"), (b"etag", b'"abc"')])
    assert encoder.table_size == 0


def test_the_encoder_signals_its_table_size(codec: ModuleType) -> None:
    encoder = codec.Encoder()
    assert encoder.encode([]) == b""  # 4096, the peer's decoder's starting point
    encoder.set_max_table_size(100)
    assert encoder.encode([]) == block("3f45")
    assert encoder.encode([]) == b""
    # Lowered then raised between two blocks: the smallest first, then the final size.
    encoder.set_max_table_size(0)
    encoder.set_max_table_size(65536)
    assert encoder.encode([]) == block("20 3fe1 1f")  # 0, then 4096: this side's own maximum


def test_the_encoder_evicts_as_the_decoder_does(codec: ModuleType) -> None:
    encoder = codec.Encoder(max_table_size=256)
    decoder = codec.Decoder()
    for number in range(200):
        headers = [(b"x-name-%d" % (number % 7), b"value-%d" % number), (b"server", b"esg")]
        assert decoder.decode(encoder.encode(headers)) == headers
        assert decoder.table_size == encoder.table_size <= 256


def test_a_huge_header_is_sent_without_indexing(codec: ModuleType) -> None:
    encoder = codec.Encoder()
    value = b"x" * 3000
    encoded = encoder.encode([(b"x-big", value)])
    assert encoder.table_size == 0
    assert codec.Decoder().decode(encoded) == [(b"x-big", value)]


def test_the_literal_cache_stays_bounded(codec: ModuleType) -> None:
    encoder = codec.Encoder()
    decoder = codec.Decoder()
    for number in range(2000):
        headers = [(b"content-length", b"%d" % number)]
        assert decoder.decode(encoder.encode(headers)) == headers


def test_a_list_too_large_keeps_the_encoder_usable(codec: ModuleType) -> None:
    # The encoder has no list limit of its own; the decoder's applies to what it receives.
    encoder = codec.Encoder()
    headers = [(b"x-%d" % n, b"v" * 100) for n in range(20)]
    decoder = codec.Decoder(max_header_list_size=1000)
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(encoder.encode(headers))
    assert decoder.decode(encoder.encode(headers[:2])) == headers[:2]


def test_a_repeated_block_is_reused_only_while_the_table_is_unchanged(codec: ModuleType) -> None:
    # The encoder hands back its last block for the same fields (a gRPC server's heads and
    # trailers repeat exactly): every block still decodes right in sequence, through esg's
    # decoder and the hpack package's, when other blocks insert, evict and resize between.
    encoder = codec.Encoder(max_table_size=200)
    ours, theirs = codec.Decoder(), hpack_package.Decoder()
    head = [(b":status", b"200"), (b"content-type", b"application/grpc"), (b"server", b"esg")]
    other = [(b":status", b"200"), (b"x-new", b"a" * 60)]
    blocks = []
    for step in [head, head, other, head, head, other, other, head]:
        blocks.append(encoder.encode(step))
        assert ours.decode(blocks[-1]) == step
        assert theirs.decode(blocks[-1], raw=True) == step
    assert blocks[1] == b"\x88\xbf\xbe"  # the repeat: indexes only
    assert blocks[3] != blocks[1]  # x-new was inserted: head's entries moved
    assert blocks[4] == blocks[3]
    encoder.set_max_table_size(100)  # an update is owed: the block must start with it
    resized = encoder.encode(head)
    assert resized[0] & 0xE0 == 0x20
    assert ours.decode(resized) == head == theirs.decode(resized, raw=True)


def test_a_block_of_pairs_that_may_change_is_never_reused(codec: ModuleType) -> None:
    # Only tuples of bytes are kept for a repeat: a list pair changed after encoding must be
    # encoded afresh, not answered with the block of what it held before.
    encoder, decoder = codec.Encoder(), codec.Decoder()
    fields = [[b"set-cookie", b"a=1"]]
    assert decoder.decode(encoder.encode(fields)) == [(b"set-cookie", b"a=1")]
    fields[0][1] = b"b=2"
    assert decoder.decode(encoder.encode(fields)) == [(b"set-cookie", b"b=2")]
