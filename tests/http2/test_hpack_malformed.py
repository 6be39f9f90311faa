"""Malformed header blocks, the header list limit and HPACK bombs, and the two builds agreeing.

Every malformed block must raise ``HPACKError`` (COMPRESSION_ERROR) and nothing else, and the
decoder must refuse every block after it.  A list over ``max_header_list_size`` raises
``HeaderListTooLarge`` once the block was processed to its end, leaving the dynamic table as the
peer's encoder has it.  Random bytes, random truncations and mutations of valid blocks (seeded,
bounded) raise nothing else, and the compiled and pure builds return the same lists, raise the
same errors and end with the same tables.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any

import hpack as hpack_package
import pytest

from esg import _compiled
from esg.http2.errors import HeaderListTooLarge, HPACKError

# A literal field without indexing with a new name "a" and a Huffman value of these bytes.
# "a" is 00011: one byte with three bits of padding.


def huffman_value(data: bytes) -> bytes:
    assert len(data) < 127
    return b"\x00\x01a" + bytes([0x80 | len(data)]) + data


MALFORMED = {
    # RFC 7541 section 6.1 / 2.3.3: index 0, and indexes past the tables.
    "indexed field 0": b"\x80",
    "indexed field past the empty dynamic table": b"\xbe",
    "indexed field far past the tables": b"\xff\x80\x10",
    "literal name index past the tables": b"\x7e\x01v",
    "never-indexed name index past the tables": b"\x1f\x2f\x01v",
    # Section 5.1: integers cut off, too long, too large.
    "indexed field cut off in its integer": b"\xff",
    "indexed field cut off after a continuation byte": b"\xff\x80",
    "integer over 2**32": b"\xff\xff\xff\xff\xff\x0f",
    # About 3.4e9: its last 7-bit group shifted by 28 overflows a 32-bit C int (it once did).
    "indexed field at 3.4e9": b"\xff\xb4\xf5\xec\xda\x0c",
    "literal name index at 2**32 - 1": b"\x4f\xc0\xff\xff\xff\x0f",
    "integer with 6 continuation bytes": b"\xff\x80\x80\x80\x80\x80\x01",
    "size update cut off in its integer": b"\x3f",
    "string length cut off in its integer": b"\x00\x7f",
    "string length over 2**32": b"\x00\x7f\xff\xff\xff\xff\x0f",
    # Section 5.2: strings cut off or missing.
    "literal without its name": b"\x40",
    "literal without its value": b"\x40\x01a",
    "never-indexed without its value": b"\x10\x01a",
    "name cut off": b"\x40\x05abc",
    "value cut off": b"\x44\x05abc",
    "Huffman value cut off": b"\x44\x85\xff",
    "string length just past the end": b"\x04\x02a",
    # Section 5.2: Huffman padding and EOS.
    "padding of 8 bits": huffman_value(b"\xff"),
    "padding of 11 bits": huffman_value(b"\x1f\xff"),  # 'a' then 3 + 8 one-bits
    "padding with a zero bit": huffman_value(b"\x18"),  # 'a' then 000
    "padding of 0 then 1 bits": huffman_value(b"\x1d"),  # 'a' then 101
    "a partial code that isn't all ones": huffman_value(b"\xfe"),
    "EOS in the string": huffman_value(b"\xff\xff\xff\xff"),
    "EOS after a symbol": huffman_value(b"\x1f\xff\xff\xff\xfe"),
    # Sections 4.2 and 6.3: table size updates.
    "size update above the limit": b"\x3f\xe2\x1f",  # 4097
    "size update far above the limit": b"\x3f\xe1\xff\xff\x0f",
    "size update after a field": b"\x82\x20",
    "size update between two fields": b"\x82\x3f\x45\x82",
    "size update at the end of a block": b"\x82\x86\x20",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_block(codec: ModuleType, name: str) -> None:
    decoder = codec.Decoder()
    with pytest.raises(HPACKError):
        decoder.decode(MALFORMED[name])
    # The context is lost: even a valid block is refused now.
    with pytest.raises(HPACKError, match="earlier header block"):
        decoder.decode(b"\x82")


def test_the_malformed_blocks_are_valid_up_to_their_fault(codec: ModuleType) -> None:
    # The cases above aren't failing for some other reason: the valid ones they're built from
    # decode.
    decoder = codec.Decoder()
    assert decoder.decode(huffman_value(b"\x1f")) == [(b"a", b"a")]  # 'a', padding 111
    assert decoder.decode(huffman_value(b"")) == [(b"a", b"")]
    assert decoder.decode(b"\x3f\xe1\x1f") == []  # 4096
    assert decoder.decode(b"\xbd") == [(b"www-authenticate", b"")]  # 61
    assert decoder.decode(b"\x04\x01a") == [(b":path", b"a")]
    assert decoder.decode(b"\x0f\x2e\x01v") == [(b"www-authenticate", b"v")]  # 15 + 46 = 61


def test_the_error_names_eos(codec: ModuleType) -> None:
    with pytest.raises(HPACKError, match="EOS"):
        codec.Decoder().decode(MALFORMED["EOS in the string"])
    with pytest.raises(HPACKError, match="padding"):
        codec.Decoder().decode(MALFORMED["padding of 8 bits"])


def test_an_owed_size_update_that_is_missing(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    decoder.set_max_table_size(100)
    with pytest.raises(HPACKError, match="owed"):
        decoder.decode(b"\x82")


def test_an_owed_size_update_that_is_too_large(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    decoder.set_max_table_size(0)
    decoder.set_max_table_size(4096)
    with pytest.raises(HPACKError, match="owed"):
        decoder.decode(b"\x3f\xe1\x1f\x82")  # 4096 only: the 0 in between isn't signalled


def test_an_owed_size_update_in_an_empty_block(codec: ModuleType) -> None:
    decoder = codec.Decoder()
    decoder.set_max_table_size(100)
    with pytest.raises(HPACKError, match="owed"):
        decoder.decode(b"")


# -- the header list limit -------------------------------------------------------------------


def test_the_limit_counts_names_values_and_32_bytes(codec: ModuleType) -> None:
    block = b"\x82\x84"  # :method GET (7 + 3 + 32 = 42), :path / (5 + 1 + 32 = 38)
    assert codec.Decoder(max_header_list_size=80).decode(block) == [
        (b":method", b"GET"),
        (b":path", b"/"),
    ]
    with pytest.raises(HeaderListTooLarge) as raised:
        codec.Decoder(max_header_list_size=79).decode(block)
    assert raised.value.limit == 79


def test_the_limit_can_change_between_blocks(codec: ModuleType) -> None:
    decoder = codec.Decoder(max_header_list_size=10)
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(b"\x82")
    decoder.max_header_list_size = 42
    assert decoder.decode(b"\x82") == [(b":method", b"GET")]


def test_a_list_too_large_still_updates_the_table(codec: ModuleType) -> None:
    # Past the limit, literals with indexing still enter the table, size updates still apply:
    # the next block, which refers to them, decodes.
    decoder = codec.Decoder(max_header_list_size=100)
    over = b"\x40\x01a" + b"\x7f\x00" + b"v" * 127  # 1 + 127 + 32 = 160 bytes
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(b"\x3f\xe1\x0f" + over + b"\x40\x01b\x01c")  # size update to 2048 first
    assert decoder.max_table_size == 2048
    assert decoder.dynamic_table() == [(b"b", b"c"), (b"a", b"v" * 127)]
    assert decoder.decode(b"\xbe") == [(b"b", b"c")]


def test_a_list_too_large_with_a_malformed_tail_is_a_compression_error(codec: ModuleType) -> None:
    # The connection error wins: the context is lost either way.
    decoder = codec.Decoder(max_header_list_size=10)
    with pytest.raises(HPACKError):
        decoder.decode(b"\x82\x82\x80")


def integer(value: int, prefix_bits: int, flags: int) -> bytes:
    """``value`` on an N-bit prefix (RFC 7541 section 5.1), to build blocks by hand."""
    prefix_max = (1 << prefix_bits) - 1
    if value < prefix_max:
        return bytes([flags | value])
    out = [flags | prefix_max]
    value -= prefix_max
    while value >= 0x80:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes([*out, value])


def test_integer_builds_the_rfc_examples() -> None:
    assert integer(10, 5, 0) == b"\x0a"
    assert integer(1337, 5, 0) == b"\x1f\x9a\x0a"


def hpack_bomb(references: int) -> bytes:
    """One 4 KiB entry in the dynamic table, then ``references`` one-byte references to it."""
    value = b"x" * 4000  # 1 + 4000 + 32 = 4033 bytes: fits the default 4096
    return b"\x40\x01b" + integer(len(value), 7, 0) + value + b"\xbe" * references


def test_the_bomb_block_is_what_it_says(codec: ModuleType) -> None:
    headers = codec.Decoder(max_header_list_size=1 << 20).decode(hpack_bomb(3))
    assert headers == [(b"b", b"x" * 4000)] * 4


def test_an_hpack_bomb_is_cut_at_the_limit(codec: ModuleType) -> None:
    # 200,000 references would expand to 800 MB; the decoder keeps nothing past 64 KiB and
    # spends time linear in the block's 200 KB.
    block = hpack_bomb(200_000)
    decoder = codec.Decoder(max_header_list_size=65536)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(HeaderListTooLarge):
            decoder.decode(block)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"peak {peak} bytes"  # the list holds at most 16 references
    assert elapsed < 10, f"{elapsed:.2f} s"  # in fact ~70 ms pure, ~1.5 ms compiled
    # The context is intact: the entry is still there.
    assert decoder.decode(b"\xbe") == [(b"b", b"x" * 4000)]


def test_a_bomb_of_literals_without_indexing_is_cut_too(codec: ModuleType) -> None:
    # Literals reusing the entry's name with fresh values: each value is decoded and dropped.
    literal = integer(62, 4, 0x00) + integer(1000, 7, 0) + b"y" * 1000
    block = hpack_bomb(0) + literal * 300
    decoder = codec.Decoder(max_header_list_size=65536)
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(block)
    assert decoder.decode(b"\xbe") == [(b"b", b"x" * 4000)]


# -- fuzzing, and the two builds agreeing ----------------------------------------------------


def outcome(decoder: Any, block: bytes) -> tuple[str, object]:
    """What decoding ``block`` does: the list, or the codec's error.  Any other exception
    propagates and fails the test."""
    try:
        return ("headers", decoder.decode(block))
    except HPACKError as error:
        return ("HPACKError", str(error))
    except HeaderListTooLarge as error:
        return ("HeaderListTooLarge", str(error))


def valid_blocks(seed: int, count: int) -> list[bytes]:
    """Blocks from the ``hpack`` package's encoder over varied header lists, one context."""
    rng = random.Random(seed)
    encoder = hpack_package.Encoder()
    names = [b":path", b"user-agent", b"cookie", b"x-trace", b"accept", b"x-%d" % seed]
    blocks = []
    for _ in range(count):
        headers = [
            (rng.choice(names), rng.randbytes(rng.randrange(0, 40)).hex().encode())
            for _ in range(rng.randrange(1, 8))
        ]
        blocks.append(encoder.encode(headers, huffman=rng.random() < 0.7))
    return blocks


Mutation = Callable[[random.Random, bytes], bytes]


def truncate(rng: random.Random, block: bytes) -> bytes:
    return block[: rng.randrange(0, len(block) + 1)]


def flip(rng: random.Random, block: bytes) -> bytes:
    data = bytearray(block)
    for _ in range(rng.randrange(1, 4)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def splice(rng: random.Random, block: bytes) -> bytes:
    cut = rng.randrange(0, len(block) + 1)
    return block[:cut] + rng.randbytes(rng.randrange(0, 6)) + block[cut:]


def noise(rng: random.Random, block: bytes) -> bytes:
    return rng.randbytes(rng.randrange(0, 64))


@pytest.mark.parametrize("mutate", [truncate, flip, splice, noise], ids=lambda m: m.__name__)
def test_fuzzed_blocks_raise_only_the_codecs_errors(codec: ModuleType, mutate: Mutation) -> None:
    rng = random.Random(f"hpack-{mutate.__name__}")
    blocks = valid_blocks(1, 20)
    for _ in range(1000):
        decoder = codec.Decoder(max_header_list_size=rng.choice([200, 65536]))
        # A few valid blocks first, so that mutations can refer to dynamic entries.
        start = rng.randrange(0, len(blocks) - 1)
        for block in blocks[:start]:
            outcome(decoder, block)
        outcome(decoder, mutate(rng, blocks[start]))


def both_builds() -> tuple[ModuleType, ModuleType]:
    compiled = _compiled.load_compiled("esg.http2.hpack")
    if compiled is None:
        pytest.skip("the compiled build isn't there (or ESG_NO_EXTENSIONS=1)")
    return compiled, _compiled.load("esg.http2.hpack", compiled=False)


@pytest.mark.parametrize("mutate", [truncate, flip, splice, noise], ids=lambda m: m.__name__)
def test_the_builds_agree_on_fuzzed_blocks(mutate: Mutation) -> None:
    compiled, pure = both_builds()
    rng = random.Random(f"agree-{mutate.__name__}")
    blocks = valid_blocks(2, 40)
    for _ in range(400):
        limit = rng.choice([100, 1000, 65536])
        table = rng.choice([0, 256, 4096])
        decoders = [
            module.Decoder(max_table_size=table, max_header_list_size=limit)
            for module in (compiled, pure)
        ]
        sequence = [mutate(rng, block) if rng.random() < 0.5 else block for block in blocks[:5]]
        for block in sequence:
            results = [outcome(decoder, block) for decoder in decoders]
            assert results[0] == results[1], block.hex()
            assert decoders[0].dynamic_table() == decoders[1].dynamic_table()
            assert decoders[0].table_size == decoders[1].table_size


def test_the_builds_encode_alike() -> None:
    compiled, pure = both_builds()
    rng = random.Random("encode-alike")
    encoders = [compiled.Encoder(), pure.Encoder()]
    names = [b":status", b"content-type", b"server", b"set-cookie", b"x-a", b"date", b"vary"]
    for _ in range(300):
        headers = [
            (rng.choice(names), rng.randbytes(rng.randrange(0, 30)))
            for _ in range(rng.randrange(0, 10))
        ]
        if rng.random() < 0.1:
            size = rng.choice([0, 100, 4096, 65536])
            for encoder in encoders:
                encoder.set_max_table_size(size)
        assert encoders[0].encode(headers) == encoders[1].encode(headers)
    for data in (b"", b"\x00\xff", bytes(range(256))):
        assert compiled.huffman_encode(data) == pure.huffman_encode(data)
