"""The load generator's ceiling: a bare uvloop protocol that answers every read with a fixed
response, without parsing HTTP or running any ASGI code.  No Python server can beat it, so a
benchmark whose figures approach it is measuring the load generator, not the server.

``raw_server.py PORT --ws``: the WebSocket ceiling.  It answers the upgrade with a canned 101
and then sends every byte it reads straight back (ws_load.py counts masked frames too)."""

from __future__ import annotations

import asyncio
import sys

import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n\r\nHello, world!"


class RawProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # One answer per request in the read: count request heads so pipelining works too.
        self.transport.write(RESPONSE * max(1, data.count(b"\r\n\r\n")))  # type: ignore[attr-defined]


class RawWebSocketEcho(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.upgraded = False

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.upgraded = True
            self.transport.write(SWITCHING)  # type: ignore[attr-defined]
            data = data[data.find(b"\r\n\r\n") + 4 :]
        if data:
            self.transport.write(data)  # type: ignore[attr-defined]


SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n"


async def main(port: int, websocket: bool) -> None:
    loop = asyncio.get_running_loop()
    protocol = RawWebSocketEcho if websocket else RawProtocol
    server = await loop.create_server(protocol, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), "--ws" in sys.argv[2:]))
