"""The app of tests/test_e2e_websocket_h2.py: WebSockets over HTTP/2 (RFC 8441).

* ``/`` (HTTP): a page whose script opens ``/echo`` as a WebSocket on the same origin, sends
  ``hello over h2``, and puts the echo (or the error) in the document's title, for Chromium;
* ``/hold`` (HTTP): answers once a WebSocket message was echoed, or after 3 s: while it is in
  flight, headless Chromium's virtual time stands still, which gives the WebSocket time;
* ``/seen`` (HTTP): the scopes of the WebSockets opened so far, as JSON (``http_version``,
  ``scheme``, subprotocols, whether ``tls`` was offered);
* ``/echo`` (WebSocket): accepts (with the first subprotocol offered) and echoes every message;
* ``/deny`` (WebSocket): answers 401 with a body instead (``websocket.http.response``);
* ``/close`` (WebSocket): closes before accepting (403);
* ``/late`` (WebSocket): accepts only after 0.3 s, then records in ``/outcomes`` (HTTP) what
  its accept raised, if anything, and what its ``receive()`` says, for a client gone meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

PAGE = b"""<!doctype html><html><head><title>waiting</title></head><body><script>
const ws = new WebSocket("wss://" + location.host + "/echo");
ws.onopen = () => ws.send("hello over h2");
ws.onmessage = (event) => { document.title = "echo:" + event.data; ws.close(); };
ws.onerror = () => { document.title = "error"; };
fetch("/hold");  // a request in flight holds headless Chromium's virtual time
</script></body></html>"""

seen: list[dict[str, Any]] = []
outcomes: list[str] = []
echoed: list[asyncio.Event] = []  # made in the server's loop, on first use


def _echoed() -> asyncio.Event:
    if not echoed:
        echoed.append(asyncio.Event())
    return echoed[0]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        if scope["path"] == "/hold":
            try:
                await asyncio.wait_for(_echoed().wait(), 3)
                await asyncio.sleep(0.2)  # the echo's DATA is ahead of this answer
            except asyncio.TimeoutError:
                pass
        if scope["path"] == "/":
            body = PAGE
        else:
            body = json.dumps(outcomes if scope["path"] == "/outcomes" else seen).encode()
        kind = b"text/html" if scope["path"] == "/" else b"application/json"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]}
        )
        await send({"type": "http.response.body", "body": body})
        return
    if scope["type"] != "websocket":
        return
    seen.append(
        {
            "path": scope["path"],
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "subprotocols": scope["subprotocols"],
            "tls": "tls" in scope["extensions"],
        }
    )
    await receive()  # websocket.connect
    if scope["path"] == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"who are you?"})
        return
    if scope["path"] == "/close":
        await send({"type": "websocket.close"})
        return
    if scope["path"] == "/late":
        await asyncio.sleep(0.3)
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:  # ClientDisconnected: what ASGI lets a send to a gone client do
            outcomes.append(type(exc).__name__)
        outcomes.append((await receive())["type"])
        return
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        _echoed().set()
