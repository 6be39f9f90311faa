"""Raw HTTP/2 bytes for the tests, written independently of esg's codec (struct and the
``hpack`` package), and a reader for what esg sends back.

``Wire`` is one client connection's worth of frames: its HPACK encoder keeps the compression
context, so blocks must be fed to a server in the order they were made.
``feed()`` hands bytes to a server whole, one byte at a time or cut at seeded random points.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable
from typing import Any

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
FEEDING_MODES = ["whole", "bytewise", "random"]

Fields = Iterable[tuple[str | bytes, str | bytes]]

GET = [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "example.com")]


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([ftype, flags])
        + struct.pack(">I", sid)
        + payload
    )


def settings(*pairs: tuple[int, int], ack: bool = False) -> bytes:
    payload = b"".join(struct.pack(">HI", ident, value) for ident, value in pairs)
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def window_update(sid: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def rst(sid: int, code: int = 8) -> bytes:
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def ping(payload: bytes = b"12345678", ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, payload)


def priority(sid: int, depends_on: int = 0, weight: int = 15) -> bytes:
    return frame(PRIORITY, 0, sid, struct.pack(">IB", depends_on, weight))


def goaway(last: int, code: int = 0) -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">II", last, code))


def data(sid: int, body: bytes = b"", end_stream: bool = False, pad: int | None = None) -> bytes:
    flags = END_STREAM if end_stream else 0
    if pad is not None:
        return frame(DATA, flags | PADDED, sid, bytes([pad]) + body + b"\0" * pad)
    return frame(DATA, flags, sid, body)


class Wire:
    """One client's frames, HPACK context included."""

    def __init__(self) -> None:
        self.encoder = hpack.Encoder()

    def block(self, fields: Fields) -> bytes:
        return bytes(self.encoder.encode(list(fields)))

    def headers(
        self,
        sid: int,
        fields: Fields = GET,
        end_stream: bool = True,
        end_headers: bool = True,
        pad: int | None = None,
        depends_on: int | None = None,
    ) -> bytes:
        payload = self.block(fields)
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        if depends_on is not None:
            flags |= PRIORITY_FLAG
            payload = struct.pack(">IB", depends_on, 15) + payload
        if pad is not None:
            flags |= PADDED
            payload = bytes([pad]) + payload + b"\0" * pad
        return frame(HEADERS, flags, sid, payload)

    @staticmethod
    def start(*pairs: tuple[int, int]) -> bytes:
        """The client's preface and first SETTINGS."""
        return PREFACE + settings(*pairs)


def pieces(payload: bytes, mode: str, seed: str = "h2") -> list[bytes]:
    if mode == "whole":
        return [payload]
    if mode == "bytewise":
        return [payload[i : i + 1] for i in range(len(payload))]
    rng = random.Random(f"{seed}:{len(payload)}")
    cuts = sorted(rng.sample(range(1, len(payload)), min(len(payload) - 1, 12)))
    return [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]


def feed(server: Any, payload: bytes, mode: str = "whole") -> list[Any]:
    events: list[Any] = []
    for piece in pieces(payload, mode):
        events += server.receive_data(piece)
    return events


def read_frames(raw: bytes) -> list[tuple[int, int, int, bytes]]:
    """``(type, flags, stream id, payload)`` of every frame in ``raw``."""
    frames = []
    pos = 0
    while pos < len(raw):
        length = int.from_bytes(raw[pos : pos + 3], "big")
        ftype, flags = raw[pos + 3], raw[pos + 4]
        sid = int.from_bytes(raw[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        frames.append((ftype, flags, sid, raw[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    assert pos == len(raw), "a cut frame"
    return frames


def resets(raw: bytes) -> list[tuple[int, int]]:
    """``(stream id, error code)`` of every RST_STREAM in ``raw``."""
    return [(sid, int.from_bytes(p, "big")) for t, _, sid, p in read_frames(raw) if t == RST_STREAM]


def goaway_code(raw: bytes) -> int | None:
    codes = [int.from_bytes(p[4:8], "big") for t, _, _, p in read_frames(raw) if t == GOAWAY]
    return codes[-1] if codes else None


def describe(event: Any) -> tuple[Any, ...]:
    """An event as a comparable tuple of its class name and fields."""
    names = type(event).__slots__
    return (type(event).__name__, *(getattr(event, name) for name in names))
