"""The ASGI cycle runs on any ``CycleHost``, not only on ``HttpProtocol``.

``RequestHost`` below is a second host, the way a connection of another protocol would be one:
it has exactly the members ``esg.http.cycle_host.CycleHost`` declares and nothing else, so a
cycle (of either build) that reached for anything more would fail here with AttributeError.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fake_transport as fake
import pytest

from esg.http.cycle_host import CycleHost


class RequestHost:
    """One request's worth of connection: a body to hand out, the bytes written, the calls."""

    __slots__ = ("loop", "default_names", "write_paused", "body", "written", "calls", "closed")

    def __init__(self, body: list[bytes]) -> None:
        self.loop = asyncio.get_running_loop()
        self.default_names: frozenset[bytes] = frozenset()
        self.write_paused = False
        self.body = body  # the pieces pull_body hands out; an empty list ends the body
        self.written: list[bytes] = []
        self.calls: list[str] = []
        self.closed = False

    def default_lines(self, head: Any) -> bytes:
        return b"date: today\r\n"

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def write_part(self, data: bytes) -> None:
        self.written.append(data)

    def defer_head(self, cycle: Any) -> None:
        self.calls.append("defer_head")
        self.loop.call_soon(cycle.flush_head)

    async def drain(self) -> None:
        self.calls.append("drain")

    def response_complete(self, cycle: Any) -> None:
        self.calls.append("response_complete")

    def pull_body(self, cycle: Any) -> dict[str, Any] | None:
        if not self.body:
            return None
        piece = self.body.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(self.body)}

    async def wait_for_body(self, cycle: Any) -> None:
        raise AssertionError("the whole body is there from the start")

    def task_done(self, cycle: Any) -> None:
        self.calls.append("task_done")

    def close_connection(self) -> None:
        self.closed = True

    def abort_connection(self) -> None:
        self.closed = True


def cycle_host_members() -> set[str]:
    return {name for name in dir(CycleHost) if not name.startswith("_")}


def test_the_second_host_has_exactly_the_declared_members() -> None:
    own = {name for name in dir(RequestHost) if not name.startswith("_")}
    assert own - {"body", "written", "calls", "closed"} == cycle_host_members()


def test_http_protocol_has_every_member_in_both_builds(build: Any) -> None:
    cls = build.module("esg.http.protocol").HttpProtocol
    for name in cycle_host_members():
        assert hasattr(cls, name), name


def run_cycle(build: Any, app: Any, body: list[bytes], method: bytes = b"POST") -> RequestHost:
    cycle_module = build.module("esg.http.cycle")

    async def scenario() -> RequestHost:
        host = RequestHost(body)
        scope = {"type": "http", "method": method.decode(), "http_version": "1.1"}
        cycle = cycle_module.RequestCycle(host, scope, method, "1.1", True, False)
        cycle.task = asyncio.current_task()
        await cycle.run_asgi(app)
        await asyncio.sleep(0)
        assert cycle.state == cycle_module.RESPONSE_DONE
        return host

    result: RequestHost = fake.run(scenario())
    return result


def test_a_cycle_answers_on_another_host(build: Any) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = await fake.read_body(receive)
        await fake.respond(send, body, headers=[(b"content-type", b"text/plain")])

    host = run_cycle(build, echo, [b"hello, ", b"host"])
    assert b"".join(host.written) == (
        b"HTTP/1.1 200 OK\r\ndate: today\r\ncontent-type: text/plain\r\n"
        b"content-length: 11\r\n\r\nhello, host"
    )
    assert host.calls == ["defer_head", "response_complete", "task_done"]
    assert not host.closed


def test_a_streamed_response_on_another_host(build: Any) -> None:
    async def stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    host = run_cycle(build, stream, [], method=b"GET")
    assert b"".join(host.written).endswith(
        b"transfer-encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n"
    )


def test_an_app_error_on_another_host(build: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    host = run_cycle(build, failing, [], method=b"GET")
    assert b"".join(host.written).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert host.calls == ["response_complete", "task_done"]
