"""A WebSocket test app that reports what it saw through plain HTTP on the same server.

Every WebSocket route takes ``?id=KEY``; what the app observed on that connection (the offered
subprotocols and extensions, the number of messages, the ``websocket.disconnect`` code and
reason) is kept in memory under ``KEY`` and served as JSON by ``GET /seen?id=KEY`` (404 until
the connection started).  esg runs one worker here, so module state is shared by all requests.

WebSocket routes:

* ``/echo``: accept (choosing the first offered subprotocol in ``SUPPORTED_SUBPROTOCOLS``), send
  every message back unchanged, record the disconnect.
* ``/close?code=4001&reason=...``: accept, then close with that code and reason.
* ``/deny``: answer with an HTTP 401 through the ``websocket.http.response`` extension.
* ``/deny-status?status=N``: the same with status ``N``, whatever it is.
* ``/reject``: ``websocket.close`` before accepting (esg answers 403).
* ``/return-value``: accept, send "accepted", then return a value instead of None (an app error).
* ``/undecided?started=PATH&marker=PATH``: never answers the handshake; writes ``started`` once
  it has the connect, then waits for the next message and writes it, as JSON, to ``marker``
  (a file: the server may be shutting down by then).

HTTP routes: ``/page`` (the browser test's HTML + JavaScript), ``POST /report?id=KEY`` (the page
stores its JSON result), ``GET /report?id=KEY`` (the test reads it; 404 until it arrived),
``/seen?id=KEY``, and anything else answers ``200 plain http`` (also what an upgrade request
gets with ``--ws none``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SUPPORTED_SUBPROTOCOLS = ["superchat", "chat"]

SEEN: dict[str, dict[str, Any]] = {}  # WebSocket connection id -> what the app observed
REPORTS: dict[str, Any] = {}  # browser page id -> the JSON it posted


def query(scope: Scope, name: str, default: str = "") -> str:
    values = parse_qs(scope["query_string"].decode("latin-1")).get(name)
    return values[0] if values else default


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


# -- WebSocket routes ------------------------------------------------------------------------


def start_record(scope: Scope) -> dict[str, Any]:
    record: dict[str, Any] = {
        "path": scope["path"],
        "subprotocols": list(scope.get("subprotocols", [])),
        "extensions_offer": header(scope, b"sec-websocket-extensions"),
        "user_agent": header(scope, b"user-agent"),
        "messages": 0,
        "disconnect": None,
    }
    SEEN[query(scope, "id", "anonymous")] = record
    return record


async def ws_echo(scope: Scope, receive: Receive, send: Send, record: dict[str, Any]) -> None:
    offered = scope.get("subprotocols", [])
    chosen = next((name for name in offered if name in SUPPORTED_SUBPROTOCOLS), None)
    record["subprotocol"] = chosen
    await send({"type": "websocket.accept", "subprotocol": chosen})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record["disconnect"] = {"code": message["code"], "reason": message.get("reason", "")}
            return
        record["messages"] += 1
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def ws_close(scope: Scope, receive: Receive, send: Send, record: dict[str, Any]) -> None:
    await send({"type": "websocket.accept"})
    code = int(query(scope, "code", "1000"))
    await send({"type": "websocket.close", "code": code, "reason": query(scope, "reason")})
    message = await receive()
    record["disconnect"] = {"code": message.get("code"), "reason": message.get("reason", "")}


async def ws_deny(scope: Scope, receive: Receive, send: Send, record: dict[str, Any]) -> None:
    body = b"denied: no token"
    headers = [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]
    await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def ws_deny_status(
    scope: Scope, receive: Receive, send: Send, record: dict[str, Any]
) -> None:
    status = int(query(scope, "status"))
    await send({"type": "websocket.http.response.start", "status": status, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"denied"})


async def ws_reject(scope: Scope, receive: Receive, send: Send, record: dict[str, Any]) -> None:
    await send({"type": "websocket.close", "code": 1000})


async def ws_return_value(
    scope: Scope, receive: Receive, send: Send, record: dict[str, Any]
) -> Any:
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "accepted"})
    return "not None"


async def ws_undecided(scope: Scope, receive: Receive, send: Send, record: dict[str, Any]) -> None:
    with open(query(scope, "started"), "w") as file:
        file.write("deciding")
    message = await receive()
    await asyncio.sleep(0.2)  # still running a moment after the disconnect: not cancelled
    with open(query(scope, "marker"), "w") as file:
        json.dump(message, file)


WS_ROUTES: dict[str, Callable[[Scope, Receive, Send, dict[str, Any]], Awaitable[Any]]] = {
    "/echo": ws_echo,
    "/close": ws_close,
    "/deny": ws_deny,
    "/deny-status": ws_deny_status,
    "/reject": ws_reject,
    "/undecided": ws_undecided,
    "/return-value": ws_return_value,
}


async def websocket(scope: Scope, receive: Receive, send: Send) -> Any:
    message = await receive()
    assert message["type"] == "websocket.connect", message
    record = start_record(scope)
    handler = WS_ROUTES.get(scope["path"], ws_echo)
    return await handler(scope, receive, send, record)  # /return-value's value included


# -- HTTP routes -----------------------------------------------------------------------------

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>esg websocket test</title></head>
<body><script>
"use strict";
const id = new URLSearchParams(location.search).get("id");
const result = {texts: [], binaries: [], errors: [], opened: false};
let reported = false;
function report() {
  if (reported) return;
  reported = true;
  fetch("/report?id=" + encodeURIComponent(id), {method: "POST", body: JSON.stringify(result)});
}
setTimeout(() => { result.errors.push("timeout"); report(); }, 15000);
const ws = new WebSocket("ws://" + location.host + "/echo?id=" + encodeURIComponent(id),
                         ["chat"]);
ws.binaryType = "arraybuffer";
const sent = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
const big = "chromium compresses this. ".repeat(20000);  // 520 kB, deflated by both sides
ws.onopen = () => {
  result.opened = true;
  result.protocol = ws.protocol;
  result.extensions = ws.extensions;
  ws.send("hello from chromium \\u00e9\\u2603");
  ws.send(big);
  ws.send(sent.buffer);
};
ws.onmessage = (event) => {
  if (typeof event.data !== "string") result.binaries.push(Array.from(new Uint8Array(event.data)));
  else if (event.data.length > 1000) result.bigEchoed = event.data === big;
  else result.texts.push(event.data);
  if (result.texts.length + result.binaries.length + ("bigEchoed" in result) === 3) {
    ws.close(1000, "done");
  }
};
ws.onerror = () => { result.errors.push("error event"); };
ws.onclose = (event) => {
  result.close = {code: event.code, reason: event.reason, wasClean: event.wasClean};
  report();
};
</script></body></html>
"""


async def read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(
    send: Send, body: bytes, status: int = 200, content_type: bytes = b"text/plain"
) -> None:
    headers = [(b"content-type", content_type), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    key = query(scope, "id")
    if path == "/page":
        await respond(send, PAGE, content_type=b"text/html; charset=utf-8")
    elif path == "/report" and scope["method"] == "POST":
        REPORTS[key] = json.loads(await read_body(receive))
        await respond(send, b"stored")
    elif path in ("/report", "/seen"):
        store: dict[str, Any] = REPORTS if path == "/report" else SEEN
        if key in store:
            await respond(send, json.dumps(store[key]).encode(), content_type=b"application/json")
        else:
            await respond(send, b"not yet", status=404)
    else:
        await respond(send, b"plain http")


async def app(scope: Scope, receive: Receive, send: Send) -> Any:
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    if scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
