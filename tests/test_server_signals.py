"""``Server.serve()`` hands SIGINT/SIGTERM back to the program that embeds it.

These tests serve in pytest's own process (main thread, a real loopback socket) with handlers
of their own installed for both signals, so a signal that goes astray can't stop the test run;
the handlers pytest had are restored afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

import httpx
import pytest

from esg.config import Config
from esg.server import Server

pytestmark = pytest.mark.slow


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/forever":
        await asyncio.Event().wait()  # holds the graceful shutdown until it is forced
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


class Recorder:
    """The embedding program's handler: records each signal and whether serve() was over."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.serving = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.calls.append((signal.Signals(signum).name, self.serving))


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request: pytest.FixtureRequest) -> Iterator[str]:
    value: str = request.param
    yield value
    asyncio.set_event_loop_policy(None)  # serve() installed the loop's policy


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    handler = Recorder()
    for sig in saved:
        signal.signal(sig, handler)
    try:
        yield handler
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def serve(recorder: Recorder, loop: str, while_serving: Any, **options: Any) -> Server:
    """Run ``Server.serve()`` until it returns; ``while_serving(server, port)`` runs once it
    listens."""
    config = Config(hello, port=0, lifespan="off", log_level="warning", loop=loop, **options)
    config.setup_event_loop()
    server = Server(config)

    async def main() -> None:
        async def drive() -> None:
            while not server.started:
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            await while_serving(server, port)

        recorder.serving = True
        driver = asyncio.create_task(drive())
        try:
            await server.serve()
        finally:
            recorder.serving = False
            await driver

    asyncio.run(main())
    return server


def test_the_signal_reaches_the_previous_handler_once_serving_is_over(
    recorder: Recorder, loop: str
) -> None:
    async def send_sigterm(server: Server, port: int) -> None:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "hello"
        os.kill(os.getpid(), signal.SIGTERM)

    serve(recorder, loop, send_sigterm)
    # Called by serve() itself, after the shutdown and before returning; not while serving.
    assert recorder.calls == [("SIGTERM", True)]
    assert signal.getsignal(signal.SIGTERM) is recorder
    assert signal.getsignal(signal.SIGINT) is recorder


def test_each_signal_is_handed_back_once_in_arrival_order(recorder: Recorder, loop: str) -> None:
    async def three_signals(server: Server, port: int) -> None:
        # A request that never ends keeps the server in its graceful shutdown: the second TERM
        # arrives while it waits, and only INT (forcing the exit) lets serve() return.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        while not server.server_state or not server.server_state.tasks:
            await asyncio.sleep(0.01)
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGINT):
            os.kill(os.getpid(), sig)
            await asyncio.sleep(0.1)
        writer.close()

    server = serve(recorder, loop, three_signals)
    assert server.force_exit
    assert recorder.calls == [("SIGTERM", True), ("SIGINT", True)]


def test_a_stop_that_is_not_a_signal_is_not_raised(recorder: Recorder, loop: str) -> None:
    async def reach_the_limit(server: Server, port: int) -> None:
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/")

    server = serve(recorder, loop, reach_the_limit, limit_max_requests=1)
    assert server.should_exit
    assert recorder.calls == []
    assert signal.getsignal(signal.SIGTERM) is recorder
