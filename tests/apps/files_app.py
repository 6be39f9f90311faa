"""Apps for the ASGI extension tests (tests/test_e2e_extensions.py).

``app`` is Starlette, unmodified: ``/file?path=...`` answers with ``FileResponse`` (which uses
``http.response.pathsend`` when the scope offers it, and handles Range requests itself).  The
other routes are plain ASGI, for what Starlette doesn't send:

* ``/scope``: the scope's extensions as JSON (the ``tls`` one whole);
* ``/zerocopy?path=...&offset=N&count=N&parts=N``: the file through
  ``http.response.zerocopysend`` messages (``parts`` > 1: that many, ``more_body`` between);
* ``/mixed?path=...``: 2 MiB of ``x`` as a body message, then the file by zerocopysend;
* ``/hints``: two ``http.response.early_hint`` messages, then a small 200;
* ``/truncate?path=...``: sends the file with pathsend after truncating it from another task
  at the first chance (the file ends before its Content-Length);
* ``/missing``: pathsend of a path that doesn't exist.
* ``/trailing?path=...``: a response announced with trailers, the file by pathsend, then a
  ``grpc-status`` trailer;
* ``/nocontent?path=...``: a 204 whose body would be the file (HEAD gets no Content-Length);
* ``/retry``: a response announced with trailers whose pathsend fails (no such file); the app
  catches that and answers again, without trailers.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route


async def file_endpoint(request: Request) -> Response:
    return FileResponse(request.query_params["path"])


starlette_app = Starlette(routes=[Route("/file", file_endpoint, methods=["GET", "HEAD"])])


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "websocket":
            await send({"type": "websocket.close"})
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        return
    handler = _ROUTES.get(scope["path"])
    if handler is None:
        await starlette_app(scope, receive, send)
    else:
        query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
        await handler(scope, query, send)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _scope(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    extensions = {name: value for name, value in scope["extensions"].items()}
    tls = extensions.get("tls")
    if tls is not None:
        extensions["tls"] = {**tls, "client_cert_chain": list(tls["client_cert_chain"])}
    body = json.dumps({"http_version": scope["http_version"], "extensions": extensions}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _zerocopy(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    parts = int(query.get("parts", "1"))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    with open(query["path"], "rb") as file:
        if "offset" not in query:
            message: dict[str, Any] = {"type": "http.response.zerocopysend", "file": file}
            await send(message)
            return
        offset, count = int(query["offset"]), int(query["count"])
        size = count // parts
        for part in range(parts):
            last = part == parts - 1
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file.fileno(),
                    "offset": offset + part * size,
                    "count": count - part * size if last else size,
                    "more_body": not last,
                }
            )


async def _mixed(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x" * (2 << 20), "more_body": True})
    with open(query["path"], "rb") as file:
        await send({"type": "http.response.zerocopysend", "file": file})


async def _hints(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    await send(
        {"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]}
    )
    await send(
        {"type": "http.response.early_hint", "links": [b"</app.js>; rel=preload; as=script"]}
    )
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hinted"})


async def _truncate(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    path = query["path"]
    size = os.path.getsize(path)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % size)],
        }
    )
    os.truncate(path, size // 2)  # before the send: the file has shrunk under its length
    await send({"type": "http.response.pathsend", "path": path})


async def _missing(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.pathsend", "path": "/nonexistent/esg-missing-file"})


async def _trailing(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
    await send({"type": "http.response.pathsend", "path": query["path"]})
    await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})


async def _nocontent(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.pathsend", "path": query["path"]})


async def _retry(scope: dict[str, Any], query: dict[str, str], send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
    try:
        await send({"type": "http.response.pathsend", "path": "/nonexistent/esg-missing-file"})
    except OSError:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"second"})


_ROUTES = {
    "/scope": _scope,
    "/zerocopy": _zerocopy,
    "/mixed": _mixed,
    "/hints": _hints,
    "/truncate": _truncate,
    "/missing": _missing,
    "/trailing": _trailing,
    "/nocontent": _nocontent,
    "/retry": _retry,
}
