"""Shared tools for the WebSocket codec tests.

``frames`` is the codec module of the build under test (ids ``c`` and ``py``, from the
``build`` fixture in tests/conftest.py: the compiled twin is skipped with ESG_NO_EXTENSIONS=1
and required with ESG_REQUIRE_EXTENSIONS=1).  ``ws`` wraps it with helpers that build client
frames and replay bytes whole, one byte at a time and split at seeded random points, checking
that every way of cutting the bytes reaches the same events and the same verdict.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from esg.websocket import deflate

MASK = b"\x37\xfa\x21\x3d"
SEEDS = (1, 2, 3)
BYTE_BY_BYTE_LIMIT = 70_000  # longer inputs are fed in small chunks instead


def mask_bytes(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length_bytes: int | None = None,
    length: int | None = None,
) -> bytes:
    """A client frame.  ``length_bytes`` forces the length encoding (0, 2 or 8 extra bytes);
    ``length`` overrides the declared length (the payload is then sent as given)."""
    n = len(payload) if length is None else length
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 65536 else 8
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode
    masked = 0x80 if mask is not None else 0
    if length_bytes == 0:
        head = bytes([b0, masked | n])
    elif length_bytes == 2:
        head = bytes([b0, masked | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, masked | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + mask_bytes(payload, mask)


def fragments(opcode: int, payload: bytes, sizes: list[int], *, rsv1: bool = False) -> bytes:
    """``payload`` as a data message cut into fragments of the given sizes (the rest last)."""
    out = []
    pos = 0
    pieces = []
    for size in sizes:
        pieces.append(payload[pos : pos + size])
        pos += size
    pieces.append(payload[pos:])
    for i, piece in enumerate(pieces):
        out.append(
            client_frame(
                opcode if i == 0 else 0,
                piece,
                fin=i == len(pieces) - 1,
                rsv=4 if rsv1 and i == 0 else 0,
            )
        )
    return b"".join(out)


def describe(event: Any) -> tuple[Any, ...]:
    """An event as a plain tuple, so both builds' events compare equal."""
    name = type(event).__name__
    if name == "TextMessage":
        return ("text", event.data)
    if name == "BytesMessage":
        return ("bytes", event.data)
    if name == "Ping":
        return ("ping", event.payload)
    if name == "Pong":
        return ("pong", event.payload)
    if name == "Close":
        return ("close", event.code, event.reason)
    raise AssertionError(f"unexpected event {event!r}")


def cuts(data: bytes, seed: int) -> list[bytes]:
    """``data`` split at a few random points chosen by ``seed``."""
    rng = random.Random(seed)
    count = rng.randint(1, min(12, max(1, len(data))))
    points = sorted({rng.randint(0, len(data)) for _ in range(count)})
    pieces = []
    start = 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def feeding_modes(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    yield "whole", [data]
    if len(data) <= BYTE_BY_BYTE_LIMIT:
        yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    else:
        yield "chunks-997", [data[i : i + 997] for i in range(0, len(data), 997)]
    for seed in SEEDS:
        yield f"seed-{seed}", cuts(data, seed)


class Outcome:
    """What a reader made of some bytes: events (as tuples) and the error code, if any."""

    def __init__(self, events: list[tuple[Any, ...]], error: int | None) -> None:
        self.events = events
        self.error = error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outcome):
            return NotImplemented
        return (self.events, self.error) == (other.events, other.error)

    def __repr__(self) -> str:
        return f"Outcome({self.events!r}, error={self.error})"


# -- a client-side permessage-deflate, written with zlib directly for the tests --------------


class ClientCompressor:
    """Compresses like a client would (RFC 7692 7.2.1), honouring the agreed parameters."""

    def __init__(self, params: deflate.DeflateParams, level: int = 6) -> None:
        self.wbits = -max(params.client_max_window_bits, 9)
        self.reset = params.client_no_context_takeover
        self.level = level
        self.zobj: Any = None

    def compress(self, payload: bytes) -> bytes:
        if self.zobj is None or self.reset:
            self.zobj = zlib.compressobj(self.level, zlib.DEFLATED, self.wbits)
        data: bytes = self.zobj.compress(payload) + self.zobj.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        return data[:-4]


class ClientDecompressor:
    """Decompresses the server's messages with exactly the window the client announced."""

    def __init__(self, params: deflate.DeflateParams) -> None:
        self.wbits = -params.server_max_window_bits
        self.reset = params.server_no_context_takeover
        self.zobj: Any = None

    def decompress(self, payload: bytes) -> bytes:
        if self.zobj is None or self.reset:
            self.zobj = zlib.decompressobj(self.wbits)
        data: bytes = self.zobj.decompress(payload + b"\x00\x00\xff\xff")
        return data


def parse_server_frame(data: bytes) -> tuple[int, bool, bool, bytes, bytes]:
    """(opcode, fin, rsv1, payload, rest) of one unmasked server frame."""
    b0, b1 = data[0], data[1]
    assert not b1 & 0x80, "server frames are never masked"
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        n = int.from_bytes(data[2:4], "big")
        pos = 4
        assert n >= 126
    elif n == 127:
        n = int.from_bytes(data[2:10], "big")
        pos = 10
        assert n >= 65536
    return b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40), data[pos : pos + n], data[pos + n :]


class WebSocketTools:
    """Helpers bound to one build of ``esg.websocket.frames`` (test modules get them from the
    ``ws`` fixture rather than importing this file, whose module name pytest shares)."""

    frame = staticmethod(client_frame)
    fragments = staticmethod(fragments)
    mask_bytes = staticmethod(mask_bytes)
    describe = staticmethod(describe)
    cuts = staticmethod(cuts)
    feeding_modes = staticmethod(feeding_modes)
    parse_server_frame = staticmethod(parse_server_frame)
    Outcome = Outcome
    ClientCompressor = ClientCompressor
    ClientDecompressor = ClientDecompressor

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def reader(self, **options: Any) -> Any:
        options = dict(options)
        params = options.pop("deflate", None)
        if params is not None:
            options["inflater"] = deflate.Inflater(params)
        return self.module.FrameReader(**options)

    def replay(self, pieces: list[bytes], reader: Any = None, **options: Any) -> Outcome:
        """Feed ``pieces`` one by one, draining events after each; stop at a ProtocolError."""
        reader = reader if reader is not None else self.reader(**options)
        events: list[tuple[Any, ...]] = []
        try:
            for piece in pieces:
                reader.feed(piece)
                while (event := reader.next_event()) is not None:
                    events.append(describe(event))
        except self.module.ProtocolError as exc:
            assert exc.code in (1002, 1007, 1009), exc
            assert isinstance(exc.reason, str) and exc.reason.isascii()
            with pytest.raises(self.module.ProtocolError) as again:
                reader.next_event()
            assert again.value is exc  # the reader is dead and says so again
            return Outcome(events, exc.code)
        return Outcome(events, None)

    def check(
        self,
        data: bytes,
        events: list[tuple[Any, ...]],
        error: int | None = None,
        **options: Any,
    ) -> None:
        """Every way of feeding ``data`` ends in ``events`` then ``error`` (None: no error)."""
        expected = Outcome(events, error)
        for mode, pieces in feeding_modes(data):
            got = self.replay(pieces, **options)
            assert got == expected, mode

    def outcome(self, data: bytes, **options: Any) -> Outcome:
        """The verdict on ``data``, after checking every way of feeding it agrees."""
        results = {mode: self.replay(pieces, **options) for mode, pieces in feeding_modes(data)}
        first = results["whole"]
        for mode, result in results.items():
            assert result == first, mode
        return first


@pytest.fixture
def frames(build: Any) -> ModuleType:
    module: ModuleType = build.module("esg.websocket.frames")
    return module


@pytest.fixture
def ws(frames: ModuleType) -> WebSocketTools:
    return WebSocketTools(frames)
