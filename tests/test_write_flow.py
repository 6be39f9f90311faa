"""``WriteFlow``, the one write-side flow control of HTTP connections and WebSocket sessions.

Both connection classes are tested through it end to end (tests/http/test_faults.py, the
session tests); these pin the rules themselves, on both builds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fake_transport as fake

from esg.write_flow import WriteFlow as PureWriteFlow

INFINITY = float("inf")


class Buffer:
    """A transport as far as ``stalled()`` looks at it."""

    def __init__(self, size: int = 0) -> None:
        self.size = size

    def get_write_buffer_size(self) -> int:
        return self.size


def new_flow(build: Any, timeout: float = 10.0) -> Any:
    return build.module("esg.write_flow").WriteFlow(asyncio.get_running_loop(), timeout)


def test_pause_sets_a_deadline_and_resume_lifts_it(build: Any) -> None:
    async def scenario() -> None:
        flow = new_flow(build)
        assert not flow.paused and flow.deadline == INFINITY
        flow.pause()
        assert flow.paused and flow.deadline < INFINITY
        flow.resume()
        assert not flow.paused and flow.deadline == INFINITY

    fake.run(scenario())


def test_drain_waits_for_resume_or_release(build: Any) -> None:
    async def scenario() -> None:
        flow = new_flow(build)
        flow.pause()
        first = asyncio.ensure_future(flow.drain())
        second = asyncio.ensure_future(flow.drain())
        await asyncio.sleep(0)
        assert not first.done() and not second.done()
        flow.resume()
        await asyncio.wait_for(asyncio.gather(first, second), 1.0)
        flow.pause()
        third = asyncio.ensure_future(flow.drain())
        await asyncio.sleep(0)
        flow.release()  # the connection was lost
        await asyncio.wait_for(third, 1.0)
        assert flow.waiter is None

    fake.run(scenario())


def test_progress_keeps_a_slow_reader_alive(build: Any) -> None:
    async def scenario() -> None:
        flow = new_flow(build, timeout=10.0)
        flow.pause()
        transport = Buffer(100_000)
        now = flow.deadline - 10.0
        assert not flow.stalled(transport, now + 5)
        transport.size = 90_000  # the client took some: the deadline moves
        assert not flow.stalled(transport, now + 12)
        assert not flow.stalled(transport, now + 21)
        assert flow.stalled(transport, now + 23)  # nothing taken for 10 s

    fake.run(scenario())


def test_a_close_with_nothing_left_to_send_never_stalls(build: Any) -> None:
    async def scenario() -> None:
        flow = new_flow(build)
        assert not flow.stalled(Buffer(0), 1e12)
        closing = Buffer(10)  # below the high-water mark: asyncio never paused writing
        assert not flow.stalled(closing, 100.0)
        assert flow.stalled(closing, 111.0)

    fake.run(scenario())


def test_a_websocket_session_carries_on_from_the_http_flow(build: Any) -> None:
    async def scenario() -> None:
        http_flow = new_flow(build)
        http_flow.pause()
        session_flow = PureWriteFlow(asyncio.get_running_loop(), 10.0)  # the session's twin
        session_flow.carry_on_from(http_flow)
        assert session_flow.paused and session_flow.deadline == http_flow.deadline

    fake.run(scenario())
