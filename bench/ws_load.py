"""WebSocket echo load: ``python ws_load.py PORT [options]`` prints messages/s as JSON.

Each of ``--connections`` clients opens a WebSocket, then repeatedly writes a burst of
``--burst`` text messages of ``--size`` bytes in one write and waits until as many echoes came
back.  Bursts keep a Python load generator ahead of the server: it builds the burst once (the
frames are masked once; a server must not care that the masks repeat) and only counts the
frames coming back, so its cost per message is a fraction of any server's.  Its ceiling is
measured against ``raw_server.py --ws``, which echoes the bytes without looking at them.

With ``--deflate`` the client offers permessage-deflate with ``client_no_context_takeover`` and
sends every message compressed (so one precompressed burst stays valid); the server compresses
its echoes with whatever context it keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import zlib
from typing import Any

PAYLOAD_TEXT = b'{"type":"chat","room":"lobby","id":1234567,"text":"hello there!!"}'


def _payload(size: int) -> bytes:
    return (PAYLOAD_TEXT * (size // len(PAYLOAD_TEXT) + 1))[:size]


def _masked_frame(payload: bytes, compressed: bool) -> bytes:
    first = 0x80 | 0x01 | (0x40 if compressed else 0)  # FIN, text, RSV1 when compressed
    length = len(payload)
    if length < 126:
        head = bytes([first, 0x80 | length])
    elif length < 65536:
        head = bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return head + mask + masked


def build_burst(size: int, burst: int, deflate: bool) -> bytes:
    payload = _payload(size)
    if deflate:
        compressor = zlib.compressobj(wbits=-15)
        payload = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        payload = payload[:-4]  # RFC 7692 section 7.2.1: drop the 00 00 ff ff tail
    return _masked_frame(payload, deflate) * burst


def handshake(host: str, port: int, deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16))
    lines = [
        b"GET /ws HTTP/1.1",
        b"Host: %s:%d" % (host.encode(), port),
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + key,
        b"Sec-WebSocket-Version: 13",
    ]
    if deflate:
        lines.append(b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover")
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Client(asyncio.Protocol):
    def __init__(self, run: Run) -> None:
        self.run = run
        self.transport: Any = None
        self.buffer = bytearray()
        self.open = False
        self.outstanding = 0
        self.extensions = b""
        self.burst_bytes = run.burst_bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(handshake(self.run.host, self.run.port, self.run.deflate))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.run.fail(f"handshake refused: {head[:60]!r}")
                return
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"sec-websocket-extensions:"):
                    self.extensions = line.split(b":", 1)[1].strip()
            self.open = True
            if b"permessage-deflate" not in self.extensions:
                self.burst_bytes = self.run.plain_burst  # the server declined compression
            self.send_burst()
        self.count_frames()

    def count_frames(self) -> None:
        buffer = self.buffer
        size = len(buffer)
        position = 0
        frames = 0
        while position + 2 <= size:
            length = buffer[position + 1] & 0x7F
            head = 2
            if length == 126:
                if position + 4 > size:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                head = 4
            elif length == 127:
                if position + 10 > size:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                head = 10
            if buffer[position + 1] & 0x80:
                head += 4  # the ceiling server echoes our masked frames back
            if position + head + length > size:
                break
            if buffer[position] & 0x0F == 0x08:
                self.run.fail("the server closed the WebSocket")
                return
            position += head + length
            frames += 1
        if position:
            del buffer[:position]
        if frames:
            self.outstanding -= frames
            self.run.received += frames
            if self.outstanding <= 0:
                self.send_burst()

    def send_burst(self) -> None:
        if self.run.stopping or self.transport is None:
            return
        self.outstanding += self.run.burst
        self.transport.write(self.burst_bytes)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.run.stopping:
            self.run.fail(f"connection lost: {exc!r}")


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host = "127.0.0.1"
        self.port = args.port
        self.burst = args.burst
        self.deflate = args.deflate
        self.burst_bytes = build_burst(args.size, args.burst, args.deflate)
        self.plain_burst = build_burst(args.size, args.burst, False)
        self.received = 0
        self.stopping = False
        self.error: str | None = None

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = message


async def main(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    run = Run(args)
    clients = []
    for _ in range(args.connections):
        _, client = await loop.create_connection(lambda: Client(run), run.host, run.port)
        clients.append(client)
    await asyncio.sleep(args.warmup)
    start_count, start = run.received, time.perf_counter()
    await asyncio.sleep(args.duration)
    count, elapsed = run.received - start_count, time.perf_counter() - start
    run.stopping = True
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    return {
        "messages_per_s": count / elapsed,
        "messages": count,
        "seconds": elapsed,
        "extensions": clients[0].extensions.decode() if clients else "",
        "error": run.error,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--deflate", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(arguments))))
