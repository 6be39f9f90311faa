"""The apps every server in the benchmark runs, identical for all of them.

Paths: ``plaintext`` (13-byte body), ``echo`` (reads the whole body, sends it back), ``stream``
(10 chunks), ``starlette_json`` (a Starlette JSON endpoint), ``static_file`` (a 1 MiB file
through Starlette's ``FileResponse``, which sends ``http.response.pathsend`` where the server
offers it).  No lifespan handling, so every server is told to skip lifespan or tolerates its
absence.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

HELLO = b"Hello, world!"
PLAIN_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
CHUNK = b"x" * 1024


async def plaintext(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": PLAIN_HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    parts = []
    more = True
    while more:
        message = await receive()
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(parts)
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", b"%d" % len(body)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for _ in range(9):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": CHUNK})


async def ws_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts a WebSocket and sends every message back (plain HTTP gets 404)."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes")})


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"message": "Hello, world!", "id": 42, "ok": True})

    return Starlette(routes=[Route("/", endpoint)])


starlette_json = _starlette_app()

# The static file: made once (by the harness, or the first server to import this), shared.
STATIC_FILE = Path(tempfile.gettempdir()) / "esg-bench-static-1m.bin"
STATIC_SIZE = 1024 * 1024


def ensure_static_file() -> Path:
    """The 1 MiB file ``static_file`` serves, written atomically if it isn't there yet."""
    if not STATIC_FILE.exists() or STATIC_FILE.stat().st_size != STATIC_SIZE:
        partial = STATIC_FILE.with_name(f"{STATIC_FILE.name}.{os.getpid()}")
        partial.write_bytes(os.urandom(STATIC_SIZE))
        partial.replace(STATIC_FILE)
    return STATIC_FILE


def _static_file_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse
    from starlette.routing import Route

    path = ensure_static_file()

    async def endpoint(request: Request) -> FileResponse:
        return FileResponse(path)

    return Starlette(routes=[Route("/", endpoint)])


static_file = _static_file_app()
