"""esg's HPACK against the ``hpack`` package (python-hyper), both ways, on random header lists.

Each round draws a header list from a seeded RNG (names from the static table, repeated custom
names and fresh ones; values empty, short, long, repeated, and any bytes at all), sometimes
with sensitive fields or a new table size between blocks.  One connection's worth of lists is
encoded by ``hpack.Encoder`` and decoded by esg, and encoded by esg's ``Encoder`` and decoded
by ``hpack.Decoder``, one compression context each way, so dynamic-table evictions and size
updates must agree on both sides for every later block to come out right.
"""

from __future__ import annotations

import random
from types import ModuleType

import hpack as hpack_package
import pytest

from esg.http2.hpack import STATIC_TABLE

STATIC_NAMES = sorted({name for name, _ in STATIC_TABLE})
CUSTOM_NAMES = [b"x-request-id", b"x-forwarded-for", b"grpc-status", b"te", b"x-a", b"x-b"]
SENSITIVE = [b"authorization", b"cookie", b"set-cookie", b"proxy-authorization"]


class Lists:
    """Random header lists that repeat themselves enough for the dynamic table to matter."""

    def __init__(self, seed: str) -> None:
        self.rng = random.Random(seed)
        self.seen: list[tuple[bytes, bytes]] = []

    def name(self) -> bytes:
        rng = self.rng
        kind = rng.random()
        if kind < 0.4:
            return rng.choice(STATIC_NAMES)
        if kind < 0.8:
            return rng.choice(CUSTOM_NAMES)
        alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_"
        return bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))

    def value(self) -> bytes:
        rng = self.rng
        kind = rng.random()
        if kind < 0.1:
            return b""
        if kind < 0.6:
            printable = bytes(range(0x20, 0x7F))
            return bytes(rng.choice(printable) for _ in range(rng.randrange(1, 60)))
        if kind < 0.8:
            return rng.randbytes(rng.randrange(1, 60))  # anything at all, for the codec
        return rng.randbytes(rng.randrange(100, 1500)).hex().encode()  # evicts entries

    def field(self) -> tuple[bytes, bytes]:
        rng = self.rng
        if self.seen and rng.random() < 0.4:
            return rng.choice(self.seen)
        field = (self.name(), self.value())
        if rng.random() < 0.2:
            field = (field[0], rng.choice(STATIC_TABLE)[1])  # static values under other names
        self.seen.append(field)
        return field

    def header_list(self) -> list[tuple[bytes, bytes]]:
        return [self.field() for _ in range(self.rng.randrange(0, 20))]


ROUNDS = 400


def test_blocks_of_the_hpack_package_decode_in_esg(codec: ModuleType) -> None:
    lists = Lists("hpack-to-esg")
    rng = lists.rng
    encoder = hpack_package.Encoder()
    decoder = codec.Decoder(max_header_list_size=1 << 24)
    for number in range(ROUNDS):
        headers = lists.header_list()
        if rng.random() < 0.05:
            # A new SETTINGS_HEADER_TABLE_SIZE, acknowledged: the encoder signals its new size.
            size = rng.choice([0, 64, 256, 1024, 4096, 8192])
            decoder.set_max_table_size(size)
            encoder.header_table_size = size
        sent = [
            hpack_package.NeverIndexedHeaderTuple(name, value)
            if name in SENSITIVE and rng.random() < 0.5
            else (name, value)
            for name, value in headers
        ]
        block = encoder.encode(sent, huffman=rng.random() < 0.7)
        assert decoder.decode(block) == headers, f"round {number}: {block.hex()}"
        assert decoder.dynamic_table() == list(encoder.header_table.dynamic_entries)


def test_blocks_of_esg_decode_in_the_hpack_package(codec: ModuleType) -> None:
    lists = Lists("esg-to-hpack")
    rng = lists.rng
    encoder = codec.Encoder(max_table_size=rng.choice([256, 4096]))
    decoder = hpack_package.Decoder(max_header_list_size=1 << 24)
    for number in range(ROUNDS):
        headers = lists.header_list()
        if rng.random() < 0.05:
            # The peer's (hpack's) SETTINGS_HEADER_TABLE_SIZE.
            size = rng.choice([0, 64, 256, 1024, 4096, 8192])
            decoder.max_allowed_table_size = size
            encoder.set_max_table_size(size)
        block = encoder.encode(headers)
        decoded = decoder.decode(block, raw=True)
        assert [tuple(field) for field in decoded] == headers, f"round {number}: {block.hex()}"
        assert encoder.dynamic_table() == list(decoder.header_table.dynamic_entries)
        for field in decoded:
            if field[0] in SENSITIVE and tuple(field) not in STATIC_TABLE:
                assert not field.indexable  # sent never indexed (a static entry is no secret)


def test_esg_to_esg_with_lists_over_the_limit(codec: ModuleType) -> None:
    # Blocks refused for their size keep both contexts in step: every later block decodes.
    lists = Lists("esg-to-esg")
    encoder = codec.Encoder()
    decoder = codec.Decoder(max_header_list_size=800)
    refused = 0
    for number in range(ROUNDS):
        headers = lists.header_list()
        block = encoder.encode(headers)
        size = sum(len(name) + len(value) + 32 for name, value in headers)
        if size > 800:
            with pytest.raises(codec.HeaderListTooLarge):
                decoder.decode(block)
            refused += 1
        else:
            assert decoder.decode(block) == headers, f"round {number}"
        assert decoder.dynamic_table() == encoder.dynamic_table()
    assert 0.1 * ROUNDS < refused < 0.9 * ROUNDS
