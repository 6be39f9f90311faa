"""An ASGI app for the robustness tests: it fails, or outlives its client, where it is told to.

``/raise?at=POINT`` raises ``RuntimeError("fault at POINT")`` at one point of the cycle (see
``RAISE_POINTS``).  The ``/vanish-*`` routes write a ``marker`` file in a ``finally`` once they
are done, so a test knows when the app has ended (and that its error handling has run: the
marker is written in the same task step that hands the exception to esg).  ``/big`` streams
``mb`` MiB in 64 KiB messages, for the client that never reads; ``/blob`` as many in one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BLOCK = bytes(range(256)) * 256  # 64 KiB, one shared object: the app itself allocates nothing

RAISE_POINTS = (
    "before-start",
    "after-body-read",
    "after-start",
    "between-chunks",
    "after-last-body",
    "in-receive",
    "after-complete",
)


def query(scope: Scope, name: str, default: str = "") -> str:
    values = parse_qs(scope["query_string"].decode("latin-1")).get(name)
    return values[0] if values else default


def touch(path: str, text: str = "") -> None:
    if path:
        with open(path, "w") as file:
            file.write(text)


async def start(send: Send, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await start(send)
    await send({"type": "http.response.body", "body": b"hello"})


async def fail(scope: Scope, receive: Receive, send: Send) -> None:
    at = query(scope, "at")
    error = RuntimeError(f"fault at {at}")
    if at == "before-start":
        raise error
    if at == "after-body-read":
        while (await receive()).get("more_body", False):
            pass
        raise error
    if at == "in-receive":
        # The request announces a body the client never sends: the app gives up waiting.
        try:
            await asyncio.wait_for(receive(), 0.2)
        except asyncio.TimeoutError:
            raise error from None
        raise AssertionError("the body was not supposed to arrive")
    await start(send)
    if at == "after-start":
        await asyncio.sleep(0.05)  # the head goes out on its own first
        raise error
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    if at == "between-chunks":
        await asyncio.sleep(0.05)
        raise error
    await send({"type": "http.response.body", "body": b"last"})
    if at == "after-last-body":
        raise error
    if at == "after-complete":
        assert (await receive())["type"] == "http.disconnect"
        await asyncio.sleep(0.05)  # the connection may be serving the next request by now
        raise error
    raise AssertionError(f"unknown point {at!r}")


async def vanish_upload(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body; the client leaves half way (``started`` says the first part arrived)."""
    try:
        first = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            if first:
                first = False
                touch(query(scope, "started"))
        await hello(scope, receive, send)  # raises ClientDisconnected, as ASGI 2.4 asks
    finally:
        touch(query(scope, "marker"), "done")


async def vanish_wait(scope: Scope, receive: Receive, send: Send) -> None:
    """A long poll: wait in receive() until the client leaves, then try to answer anyway."""
    try:
        touch(query(scope, "started"))
        while (await receive())["type"] != "http.disconnect":
            pass
        await hello(scope, receive, send)
    finally:
        touch(query(scope, "marker"), "done")


async def vanish_stream(scope: Scope, receive: Receive, send: Send) -> None:
    """Stream small pieces until send() fails because the client left."""
    try:
        await start(send)
        pieces = 0
        while pieces < 10_000:  # bounded: the test's client leaves long before
            await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
            pieces += 1
            if pieces == 5:
                touch(query(scope, "started"))
            await asyncio.sleep(0.005)
        await send({"type": "http.response.body", "body": b""})
    finally:
        touch(query(scope, "marker"), "done")


async def big(scope: Scope, receive: Receive, send: Send) -> None:
    """``mb`` MiB in 64 KiB body messages."""
    try:
        count = int(query(scope, "mb", "1")) * 16
        await start(send)
        for _ in range(count):
            await send({"type": "http.response.body", "body": BLOCK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        touch(query(scope, "marker"), "done")


async def blob(scope: Scope, receive: Receive, send: Send) -> None:
    """``mb`` MiB in one body message: far more than the transport's write buffer holds."""
    size = int(query(scope, "mb", "1")) * 1024 * 1024
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % size)],
        }
    )
    await send({"type": "http.response.body", "body": bytes(size)})


async def pid(scope: Scope, receive: Receive, send: Send) -> None:
    await start(send)
    await send({"type": "http.response.body", "body": b"%d" % os.getpid()})


ROUTES: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
    "/": hello,
    "/raise": fail,
    "/vanish-upload": vanish_upload,
    "/vanish-wait": vanish_wait,
    "/vanish-stream": vanish_stream,
    "/big": big,
    "/blob": blob,
    "/pid": pid,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    handler = ROUTES.get(scope["path"])
    if handler is None:
        await start(send, 404)
        await send({"type": "http.response.body", "body": b"no such route"})
        return
    await handler(scope, receive, send)
