"""A plain ASGI 3 app whose behaviour is chosen by the request path (see ``ROUTES``).

The path is taken relative to ``root_path``, so the same app works with ``--root-path``.
Some routes wait for a *gate file* (``?gate=/tmp/...``) to exist: that lets a test hold the app
at a known point without relying on timing.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Set by /context; a new request must never see the previous request's value.
REQUEST_MARK: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "REQUEST_MARK", default=None
)

_served_contexts = 0


def query(scope: Scope, name: str, default: str = "") -> str:
    values = parse_qs(scope["query_string"].decode("latin-1")).get(name)
    return values[0] if values else default


async def wait_for_gate(path: str, limit: float = 10.0) -> None:
    """Wait until the test creates ``path`` (bounded, so a broken test can't hang the app)."""
    waited = 0.0
    while not os.path.exists(path) and waited < limit:
        await asyncio.sleep(0.02)
        waited += 0.02


async def read_body(receive: Receive) -> tuple[bytes, int]:
    """The whole request body and how many ``http.request`` messages carried it."""
    parts: list[bytes] = []
    messages = 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        messages += 1
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), messages


async def respond(
    send: Send,
    body: bytes,
    status: int = 200,
    content_type: bytes = b"text/plain; charset=utf-8",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, data: Any, status: int = 200) -> None:
    await respond(send, json.dumps(data).encode(), status, b"application/json")


# -- routes ----------------------------------------------------------------------------------


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, b"hello, world")


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body, messages = await read_body(receive)
    extra = [(b"x-received-length", b"%d" % len(body)), (b"x-messages", b"%d" % messages)]
    await respond(send, body, content_type=b"application/octet-stream", extra=extra)


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    """``n`` pieces in separate body messages; with ``gate``, pause after the first one."""
    count = int(query(scope, "n", "5"))
    gate = query(scope, "gate")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for index in range(count):
        await send({"type": "http.response.body", "body": b"piece-%d\n" % index, "more_body": True})
        if index == 0 and gate:
            await wait_for_gate(gate)
        else:
            await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b""})


async def slow(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.sleep(float(query(scope, "t", "1.0")))
    await respond(send, b"slow done")


async def gated(scope: Scope, receive: Receive, send: Send) -> None:
    """Say the request has reached the app (``started`` file), hold it until the gate opens."""
    started = query(scope, "started")
    if started:
        with open(started, "w") as file:
            file.write("in the app")
    await wait_for_gate(query(scope, "gate"))
    await respond(send, b"gate opened")


async def headers(scope: Scope, receive: Receive, send: Send) -> None:
    pairs = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]]
    await respond_json(send, pairs)


async def scope_info(scope: Scope, receive: Receive, send: Send) -> None:
    client = scope.get("client")
    await respond_json(
        send,
        {
            "type": scope["type"],
            "http_version": scope["http_version"],
            "method": scope["method"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "root_path": scope.get("root_path", ""),
            "query_string": scope["query_string"].decode("latin-1"),
            "client": list(client) if client else None,
            "server": list(scope["server"]) if scope.get("server") else None,
            "asgi": scope["asgi"],
            "state": {key: str(value) for key, value in scope.get("state", {}).items()},
            # Which build of esg's hot path serves this request.
            "compiled": "esg.http._protocol_c" in sys.modules,
        },
    )


async def context(scope: Scope, receive: Receive, send: Send) -> None:
    """Report what this request sees of task and context, then mark the context."""
    global _served_contexts
    _served_contexts += 1
    seen = REQUEST_MARK.get()
    REQUEST_MARK.set(f"request-{_served_contexts}")
    task = asyncio.current_task()
    await respond_json(send, {"seen": seen, "has_task": task is not None})


async def gated_continue(scope: Scope, receive: Receive, send: Send) -> None:
    """Wait for the gate before the first ``receive()`` (which is what triggers 100 Continue)."""
    await wait_for_gate(query(scope, "gate"))
    body, _ = await read_body(receive)
    await respond(send, b"got " + body)


async def refuse_upload(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer without ever reading the body."""
    await respond(send, b"too large for me", status=413)


async def big(scope: Scope, receive: Receive, send: Send) -> None:
    """``mb`` MiB in 64 KiB body messages: exercises write flow control."""
    block = bytes(range(256)) * 256
    count = int(query(scope, "mb", "1")) * 16
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(count):
        await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def wait_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """Read until the client goes away, then write the ``marker`` file."""
    with open(query(scope, "started"), "w") as file:
        file.write("in the app")
    while (await receive())["type"] != "http.disconnect":
        pass
    with open(query(scope, "marker"), "w") as file:
        file.write("disconnected")


async def status(scope: Scope, receive: Receive, send: Send) -> None:
    code = int(query(scope, "code", "204"))
    await send({"type": "http.response.start", "status": code, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def error(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("route /error always fails")


async def error_after_start(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("failed half way through the body")


async def no_response(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def bad_header(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, b"never sent", extra=[(b"x-bad", b"ok\r\nx-injected: yes")])


async def too_short(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, b"12345", extra=[(b"content-length", b"10")])


async def too_long(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, b"0123456789", extra=[(b"content-length", b"3")])


ROUTES: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
    "/": hello,
    "/echo": echo,
    "/stream": stream,
    "/slow": slow,
    "/gated": gated,
    "/headers": headers,
    "/scope": scope_info,
    "/context": context,
    "/gated-continue": gated_continue,
    "/refuse-upload": refuse_upload,
    "/status": status,
    "/big": big,
    "/wait-disconnect": wait_disconnect,
    "/error": error,
    "/error-after-start": error_after_start,
    "/no-response": no_response,
    "/bad-header": bad_header,
    "/short": too_short,
    "/long": too_long,
}


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """Put a value in the lifespan state; write $ESG_TEST_MARKER on shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["greeting"] = "set at startup"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            marker = os.environ.get("ESG_TEST_MARKER")
            if marker:
                with open(marker, "w") as file:
                    file.write("lifespan shutdown ran")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    path = scope["path"]
    root_path = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    handler = ROUTES.get(path)
    if handler is None:
        await respond(send, b"no such route: " + path.encode(), status=404)
        return
    await handler(scope, receive, send)
