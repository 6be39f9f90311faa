"""A WSGI app: echoes the method, path and the POST body read from ``wsgi.input``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    text = f"wsgi {environ['REQUEST_METHOD']} {environ['PATH_INFO']} {environ['QUERY_STRING']}"
    payload = text.encode() + b" body=" + body
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("X-Wsgi-Multithread", str(environ["wsgi.multithread"]))],
    )
    return [payload]
