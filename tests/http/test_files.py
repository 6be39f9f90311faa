"""``esg.http.files.send_on_socket`` on a real socket pair and a real transport, on asyncio's
loop and uvloop, with the ``WriteFlow`` of each build: bytes the transport still buffers go
first, a client that doesn't read leaves the send waiting (paused, with a deadline for the
server's ticker), losing the connection ends it, a file truncated under it ends it early.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from esg.http import files
from esg.http.errors import ClientDisconnected
from esg.http.files import FileBody, send_on_socket

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

LOOPS = ["asyncio", "uvloop"]


class Host(asyncio.Protocol):
    """The parts of ``HttpProtocol`` that ``send_on_socket`` uses."""

    def __init__(self, write_flow_class: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.write_flow = write_flow_class(loop, 60.0)
        self.metrics = None
        self.transport: Any = None
        self.lost = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        self.write_flow.pause()

    def resume_writing(self) -> None:
        self.write_flow.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.write_flow.release()
        self.lost.set()


def run_on(loop_name: str, scenario: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    if loop_name == "uvloop":
        if uvloop is None:
            pytest.skip("uvloop is not installed")
        return uvloop.run(scenario())
    return asyncio.run(scenario())


async def connected(build: Any) -> tuple[Host, socket.socket]:
    loop = asyncio.get_running_loop()
    server_side, client = socket.socketpair()
    client.setblocking(False)
    write_flow_class = build.module("esg.write_flow").WriteFlow
    _, host = await loop.connect_accepted_socket(lambda: Host(write_flow_class, loop), server_side)
    return host, client


async def read_exactly(client: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < size:
        piece = await loop.sock_recv(client, min(1 << 20, size - len(data)))
        if not piece:
            break
        data += piece
    return bytes(data)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    return path


@pytest.mark.parametrize("loop_name", LOOPS)
def test_buffered_bytes_then_prefix_then_file(build: Any, loop_name: str, data_file: Path) -> None:
    async def scenario() -> tuple[int, tuple[int, int]]:
        host, client = await connected(build)
        earlier = os.urandom(8 * 1024 * 1024)
        host.transport.write(earlier)  # more than the socket takes: the transport keeps some
        buffered = host.transport.get_write_buffer_size()
        with open(data_file, "rb") as file:
            body = FileBody(file.fileno(), 5, data_file.stat().st_size - 5, False, False, False)
            sending = asyncio.ensure_future(send_on_socket(host, b"HEAD", body))
            expected = earlier + b"HEAD" + data_file.read_bytes()[5:]
            received = await read_exactly(client, len(expected))
            sent = await sending
        limits = host.transport.get_write_buffer_limits()
        host.transport.close()
        client.close()
        assert received == expected
        assert buffered > 0
        return sent, limits

    sent, (low, high) = run_on(loop_name, scenario)
    assert sent == data_file.stat().st_size - 5
    assert high > 0  # the transport's limits were put back


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_client_that_does_not_read_leaves_it_paused_then_lost(
    build: Any, loop_name: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as file:
        file.truncate(64 * 1024 * 1024)

    async def scenario() -> None:
        host, client = await connected(build)
        with open(big, "rb") as file:
            body = FileBody(file.fileno(), 0, 64 * 1024 * 1024, False, False, False)
            sending = asyncio.ensure_future(send_on_socket(host, b"", body))
            for _ in range(100):  # until the socket is full and the send waits
                await asyncio.sleep(0.01)
                if host.write_flow.paused:
                    break
            assert host.write_flow.paused
            assert host.write_flow.deadline < float("inf")  # the ticker can cut it
            host.transport.abort()  # what check_deadlines does to a stalled client
            with pytest.raises(ClientDisconnected):
                await sending
        assert not host.write_flow.paused
        client.close()

    run_on(loop_name, scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_file_truncated_under_the_send_ends_it_early(
    build: Any, loop_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "shrinks.bin"
    size = 64 * 1024 * 1024
    with open(path, "wb") as file:
        file.truncate(size)

    async def scenario() -> int:
        host, client = await connected(build)
        with open(path, "rb") as file:
            body = FileBody(file.fileno(), 0, size, False, False, False)
            sending = asyncio.ensure_future(send_on_socket(host, b"", body))
            for _ in range(100):
                await asyncio.sleep(0.01)
                if host.write_flow.paused:
                    break
            os.truncate(path, 1024 * 1024)
            loop = asyncio.get_running_loop()
            while not sending.done():  # read what comes, so the send goes on
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(loop.sock_recv(client, 1 << 20), 0.5)
            sent = await sending
        host.transport.close()
        client.close()
        return sent

    assert run_on(loop_name, scenario) < size


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_file_sendfile_refuses_is_copied(
    build: Any, loop_name: str, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(sock: Any, fd: int, offset: int, count: int) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(files, "_sendfile", refuse)

    async def scenario() -> bytes:
        host, client = await connected(build)
        with open(data_file, "rb") as file:
            body = FileBody(file.fileno(), 0, data_file.stat().st_size, False, False, False)
            sending = asyncio.ensure_future(send_on_socket(host, b"HEAD", body))
            received = await read_exactly(client, 4 + data_file.stat().st_size)
            await sending
        host.transport.close()
        client.close()
        return received

    assert run_on(loop_name, scenario) == b"HEAD" + data_file.read_bytes()
