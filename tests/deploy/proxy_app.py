"""The app esg serves behind the proxies in tests/deploy.

It is ``examples/deploy_app.py`` (``/health``, and ``Hello, world!`` for anything it doesn't
route) plus what the nginx tests need to see from the app's side:

* ``GET /scope``: the scope as the app got it after esg applied the proxy headers, as JSON
  (``client``, ``scheme``, ``http_version``, ``server``, and the ``x-forwarded-*`` headers).
* ``POST /upload``: reads the body as it arrives and answers its size and SHA-256, as JSON.
* ``GET /stream?id=KEY``: sends a first chunk, then waits (at most ``STREAM_WAIT`` seconds)
  until ``POST /release?id=KEY`` arrives on another connection, then sends the last chunk:
  ``last`` if it was released, ``timed out`` otherwise.  A client that can only release the
  stream after it read the first chunk gets ``last`` only if nothing between it and the app
  held the first chunk back until the app finished.
* ``POST /release?id=KEY``: releases that stream (``404`` if no stream is waiting under KEY).
* WebSocket ``/echo``: sends every message back; ``/ws-scope``: sends the scope's client and
  scheme as JSON, then closes.

esg runs it in one process (no --workers), so the streams and their releases share memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from examples.deploy_app import app as deploy_app

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

STREAM_WAIT = 20.0  # seconds a stream waits for its release: longer than any test waits
RELEASES: dict[str, asyncio.Event] = {}


def query(scope: Scope, name: str) -> str:
    values = parse_qs(scope["query_string"].decode("latin-1")).get(name)
    return values[0] if values else ""


def scope_view(scope: Scope) -> dict[str, Any]:
    forwarded = {
        key.decode("latin-1"): value.decode("latin-1")
        for key, value in scope["headers"]
        if key.startswith(b"x-forwarded-")
    }
    return {
        "client": list(scope["client"]) if scope.get("client") else None,
        "scheme": scope["scheme"],
        "http_version": scope.get("http_version"),
        "server": list(scope["server"]) if scope.get("server") else None,
        "forwarded": forwarded,
    }


async def send_json(send: Send, data: object, status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def upload(receive: Receive, send: Send) -> None:
    digest = hashlib.sha256()
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        digest.update(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    await send_json(send, {"size": size, "sha256": digest.hexdigest()})


async def stream(scope: Scope, send: Send) -> None:
    key = query(scope, "id")
    released = RELEASES[key] = asyncio.Event()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
    try:
        await asyncio.wait_for(released.wait(), STREAM_WAIT)
        last = b"last\n"
    except asyncio.TimeoutError:
        last = b"timed out\n"
    finally:
        RELEASES.pop(key, None)
    await send({"type": "http.response.body", "body": last})


async def release(scope: Scope, send: Send) -> None:
    event = RELEASES.get(query(scope, "id"))
    if event is None:
        await send_json(send, {"released": False}, status=404)
        return
    event.set()
    await send_json(send, {"released": True})


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    if scope["path"] == "/ws-scope":
        await send({"type": "websocket.send", "text": json.dumps(scope_view(scope))})
        await send({"type": "websocket.close", "code": 1000})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == "/scope":
        await send_json(send, scope_view(scope))
    elif scope["type"] == "http" and scope["path"] == "/upload":
        await upload(receive, send)
    elif scope["type"] == "http" and scope["path"] == "/stream":
        await stream(scope, send)
    elif scope["type"] == "http" and scope["path"] == "/release":
        await release(scope, send)
    else:
        await deploy_app(scope, receive, send)  # lifespan, /health, and the rest
