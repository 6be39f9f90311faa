"""An app for the access log tests (tests/test_e2e_logging.py): one route per way of sending a body.

* ``/sized``: a Content-Length the app gives (the connection counts the bytes itself);
* ``/plain`` (and any other path): one body message without a Content-Length;
* ``/stream``: three pieces, chunked;
* ``/head-of``: the same for HEAD requests (no body goes out);
* ``/error``: fails before starting a response (esg answers 500), its message quoting a
  control character;
* ``/ws``: a WebSocket that is accepted, ``/ws-refused`` one that is closed before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

NOTE = b'say "hi"\t\xe9'  # a response header value with a quote, a tab and obs-text


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        if scope["path"] == "/ws":
            await send({"type": "websocket.accept", "headers": [(b"x-note", b"ws")]})
            await send({"type": "websocket.close", "code": 1000})
        else:
            await send({"type": "websocket.close"})
        return
    path = scope["path"]
    if path == "/error":
        raise RuntimeError("boom \x1b[2J")
    headers = [(b"content-type", b"text/plain"), (b"X-Note", NOTE)]
    if path == "/sized":
        headers.append((b"content-length", b"7"))
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"1234567"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/stream":
        for piece in (b"abc", b"defg", b"hi"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.body", "body": b"hello"})
