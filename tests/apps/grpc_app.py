"""A gRPC service written as a plain ASGI app: no gRPC library, no protoc.

The messages are raw bytes (a client calls it through a generic channel with no serializers),
framed as gRPC frames them on HTTP/2: a 1-byte compressed flag, a 4-byte big-endian length,
the message.  The status goes in the trailers (``grpc-status``, ``grpc-message``) through the
``http.response.trailers`` ASGI extension.  Methods of the service ``esg.test.Echo``:

* ``Unary``: one message in, ``echo:`` + it out.
* ``Count``: server streaming; the request is a decimal count, each answer ``item-<i>``
  leaves as its own body piece (the app waits a little between pieces).
* ``Collect``: client streaming; the answer is the messages received joined by ``,``.
* ``Fail``: an error status (3, INVALID_ARGUMENT) with a percent-encoded message, after one
  message of the response.
* ``Reject``: an error with no message at all ("trailers-only" in gRPC's terms: the status
  follows the head directly).
* ``Scope``: the request's scope (JSON) as the answer, to see what esg passed.
* any other path: status 12 (UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any
from urllib.parse import quote

from apps.basic import Receive, Scope, Send

SERVICE = "/esg.test.Echo/"
_PREFIX = struct.Struct(">BL")


def frame(message: bytes) -> bytes:
    """One gRPC length-prefixed message, uncompressed."""
    return _PREFIX.pack(0, len(message)) + message


def unframe(data: bytes) -> list[bytes]:
    """The messages of a complete request body."""
    messages = []
    offset = 0
    while offset < len(data):
        compressed, length = _PREFIX.unpack_from(data, offset)
        if compressed:
            raise ValueError("compressed gRPC message")
        offset += _PREFIX.size
        messages.append(data[offset : offset + length])
        offset += length
    return messages


async def read_messages(receive: Receive) -> list[bytes]:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionError("the client went away")
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return unframe(b"".join(parts))


async def start(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": True,
        }
    )


async def finish(send: Send, status: int, text: str = "") -> None:
    """End the body, then the status in the trailers."""
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    trailers = [(b"grpc-status", b"%d" % status)]
    if text:
        trailers.append((b"grpc-message", quote(text, safe=" ").encode("ascii")))
    await send({"type": "http.response.trailers", "headers": trailers})


async def unary(scope: Scope, receive: Receive, send: Send) -> None:
    (request,) = await read_messages(receive)
    await start(send)
    await send({"type": "http.response.body", "body": frame(b"echo:" + request), "more_body": True})
    await finish(send, 0)


async def count(scope: Scope, receive: Receive, send: Send) -> None:
    (request,) = await read_messages(receive)
    await start(send)
    for index in range(int(request)):
        body = frame(b"item-%d" % index)
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await asyncio.sleep(0.001)
    await finish(send, 0)


async def collect(scope: Scope, receive: Receive, send: Send) -> None:
    requests = await read_messages(receive)
    await start(send)
    body = frame(b",".join(requests))
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await finish(send, 0)


async def fail(scope: Scope, receive: Receive, send: Send) -> None:
    await read_messages(receive)
    await start(send)
    await send({"type": "http.response.body", "body": frame(b"partial"), "more_body": True})
    await finish(send, 3, "bad argument: 100% wrong \u2603")


async def reject(scope: Scope, receive: Receive, send: Send) -> None:
    await read_messages(receive)
    await start(send)
    await finish(send, 7, "no entry")


async def show_scope(scope: Scope, receive: Receive, send: Send) -> None:
    await read_messages(receive)
    shown: dict[str, Any] = {
        "http_version": scope["http_version"],
        "method": scope["method"],
        "path": scope["path"],
        "scheme": scope["scheme"],
        "headers": {name.decode(): value.decode() for name, value in scope["headers"]},
        "extensions": sorted(scope.get("extensions", {})),
    }
    await start(send)
    body = frame(json.dumps(shown).encode())
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await finish(send, 0)


METHODS = {
    "Unary": unary,
    "Count": count,
    "Collect": collect,
    "Fail": fail,
    "Reject": reject,
    "Scope": show_scope,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = (await receive())["type"]
            await send({"type": event + ".complete"})
            if event == "lifespan.shutdown":
                return
    assert scope["type"] == "http"
    assert "http.response.trailers" in scope["extensions"], "gRPC needs trailers"
    path = scope["path"]
    handler = METHODS.get(path[len(SERVICE) :]) if path.startswith(SERVICE) else None
    if handler is None:
        await read_messages(receive)
        await start(send)
        await finish(send, 12, f"no method {path}")
        return
    await handler(scope, receive, send)
