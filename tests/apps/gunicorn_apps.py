"""Apps served by gunicorn with ``-k esg.workers.ESGWorker`` (tests/test_gunicorn_worker.py).

Each worker is its own process, so the apps say which one answered (``/pid``) and leave marker
files named after their pid in ``$ESG_TEST_MARKER_DIR``: ``startup-<pid>`` once the lifespan
startup ran, ``shutdown-<pid>`` once the lifespan shutdown ran, ``held-<pid>`` when ``/hold``
has a request in the app.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

STARTUP_MESSAGE = "the test app refuses to start"


def mark(name: str) -> None:
    directory = os.environ.get("ESG_TEST_MARKER_DIR")
    if directory:
        with open(os.path.join(directory, f"{name}-{os.getpid()}"), "w") as file:
            file.write(name)


async def respond(send: Send, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            mark("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            mark("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode("latin-1"))
    if path == "/pid":
        await respond(send, str(os.getpid()).encode())
    elif path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await respond(send, body)
    elif path == "/slow":
        # A few milliseconds per request: a load run lasts long enough to overlap a reload.
        await asyncio.sleep(float(query.get("ms", ["2"])[0]) / 1000)
        await respond(send, b"slow")
    elif path == "/hold":
        mark("held")
        await asyncio.sleep(60)
        await respond(send, b"held")
    elif path == "/block":
        time.sleep(float(query.get("s", ["30"])[0]))  # blocks the event loop: no heartbeat
        await respond(send, b"unblocked")
    elif path == "/build":
        compiled = "esg.http._protocol_c" in sys.modules
        await respond(send, b"compiled" if compiled else b"pure")
    elif path == "/loop":
        await respond(send, type(asyncio.get_running_loop()).__module__.encode())
    elif path == "/scheme":
        await respond(send, scope["scheme"].encode())
    else:
        await respond(send, b"not found", status=404)


async def slow_startup_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Takes a minute to start up (``startup-begun-<pid>`` says it began)."""
    if scope["type"] == "lifespan":
        await receive()
        mark("startup-begun")
        await asyncio.sleep(60)
        await send({"type": "lifespan.startup.complete"})
        await receive()
        mark("shutdown")
        await send({"type": "lifespan.shutdown.complete"})
        return
    await respond(send, b"started")


async def failing_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Fails its lifespan startup: gunicorn must stop instead of booting workers forever."""
    if scope["type"] == "lifespan":
        await receive()
        mark("boot")
        await send({"type": "lifespan.startup.failed", "message": STARTUP_MESSAGE})
        return
    raise AssertionError("no request should reach an app that failed to start")
