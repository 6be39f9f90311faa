"""The ASGI cycle runs on any ``CycleHost``, not only on ``HttpProtocol``.

``RequestHost`` below is a second host, the way a connection of another protocol would be one:
it has exactly the members ``esg.http.cycle_host.Http1Host`` declares and nothing else, so a
cycle (of either build) that reached for anything more would fail here with AttributeError.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fake_transport as fake
import pytest

from esg.http.cycle_host import Http1Host, StructuredHost


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
    return {name for name in dir(Http1Host) if not name.startswith("_")}


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


class PartsHost(RequestHost):
    """A structured host (``StructuredHost``): the response arrives as parts, never as bytes."""

    __slots__ = ("parts",)

    def __init__(self, body: list[bytes]) -> None:
        super().__init__(body)
        self.parts: list[tuple[Any, ...]] = []

    def default_lines(self, head: Any) -> bytes:
        raise AssertionError("a structured host is never asked for HTTP/1.1 lines")

    def write(self, data: bytes) -> None:
        raise AssertionError("a structured host is never given bytes")

    write_part = write

    def send_head(self, cycle: Any, head: Any, body: bytes, end: bool) -> None:
        self.parts.append(("head", head.status, list(head.fields), body, end))

    def send_body(self, cycle: Any, body: bytes, end: bool) -> None:
        self.parts.append(("body", body, end))

    def send_trailers(self, cycle: Any, fields: Any) -> None:
        self.parts.append(("trailers", list(fields)))


def test_the_structured_host_declares_the_common_members_and_three_more() -> None:
    structured = {name for name in dir(StructuredHost) if not name.startswith("_")}
    http1 = cycle_host_members()
    assert structured - http1 == {"send_head", "send_body", "send_trailers"}
    assert http1 - structured == {"default_lines", "write", "write_part"}


def run_structured(build: Any, app: Any, body: list[bytes], method: bytes = b"GET") -> PartsHost:
    cycle_module = build.module("esg.http.cycle")

    async def scenario() -> PartsHost:
        host = PartsHost(body)
        scope = {"type": "http", "method": method.decode(), "http_version": "2"}
        cycle = cycle_module.RequestCycle(host, scope, method, "2", True, False, True)
        cycle.task = asyncio.current_task()
        await cycle.run_asgi(app)
        await asyncio.sleep(0)
        assert cycle.state == cycle_module.RESPONSE_DONE
        return host

    result: PartsHost = fake.run(scenario())
    return result


def test_a_whole_response_is_one_head_with_its_length(build: Any) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = await fake.read_body(receive)
        await fake.respond(send, body, headers=[(b"Content-Type", b"text/plain")])

    host = run_structured(build, echo, [b"hello, ", b"host"], method=b"POST")
    assert host.parts == [
        (
            "head",
            200,
            [(b"content-type", b"text/plain"), (b"content-length", b"11")],  # names lowercased
            b"hello, host",
            True,
        )
    ]


def test_a_stream_with_trailers_ends_on_the_trailers(build: Any) -> None:
    async def stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})
        await send(
            {"type": "http.response.trailers", "headers": [(b"x-a", b"1")], "more_trailers": True}
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-b", b"2")]})

    host = run_structured(build, stream, [])
    assert host.parts == [
        ("head", 200, [], b"a", False),
        ("body", b"b", False),
        ("trailers", [(b"x-a", b"1"), (b"x-b", b"2")]),
    ]


def test_no_body_for_head_and_204_on_a_structured_host(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await fake.respond(send, b"hidden")

    host = run_structured(build, app, [], method=b"HEAD")
    assert host.parts == [("head", 200, [(b"content-length", b"6")], b"", True)]


def test_an_app_error_is_a_structured_500(build: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    host = run_structured(build, failing, [])
    kind, status, fields, body, end = host.parts[0]
    assert (kind, status, body, end) == ("head", 500, b"Internal Server Error", True)
    assert (b"content-length", b"21") in fields


def test_a_short_body_is_refused_on_a_structured_host(build: Any) -> None:
    async def short(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"abc"})

    cycle_module = build.module("esg.http.cycle")

    async def scenario() -> PartsHost:
        host = PartsHost([])
        cycle = cycle_module.RequestCycle(host, {}, b"GET", "2", True, False, True)
        cycle.task = asyncio.current_task()
        await cycle.run_asgi(short)
        return host

    host = fake.run(scenario())
    assert host.closed
    assert host.parts == []
