"""The ASGI extensions a connection offers in ``scope["extensions"]``, built once per connection.

Each is offered only where it works:

=============================  ========  ======  =================================================
extension                      HTTP/1.1  HTTP/2  notes
=============================  ========  ======  =================================================
``http.response.pathsend``     yes       yes     ``os.sendfile`` on plain sockets, reads elsewhere
``http.response.zerocopysend`` yes       yes     the same, from the app's file descriptor
``http.response.early_hint``   yes       yes     dropped for HTTP/1.0 clients
``http.response.trailers``     yes       yes     HTTP/1.1: sent on ``TE: trailers``, else dropped
``tls``                        TLS       TLS     also in WebSocket scopes
``websocket.http.response``    yes       yes     WebSocket scopes: a denial response
=============================  ========  ======  =================================================

(WebSocket scopes on HTTP/2 come from RFC 8441's extended CONNECT: esg/http2/websocket.py.)

The dict is built once per connection; each request's scope gets a shallow copy of it, so what
an app adds to its own scope's dict stays with that request.

``ESG_NO_PATHSEND=1`` in the environment leaves the two file extensions out; the benchmark
(bench/README.md) uses it to measure frameworks reading files themselves.
"""

from __future__ import annotations

import os
from typing import Any

from esg._ssl import tls_extension

__all__ = ["http_extensions", "http2_extensions", "websocket_extensions"]

_FILES = os.environ.get("ESG_NO_PATHSEND", "") in ("", "0")


def http_extensions(transport: Any) -> dict[str, Any]:
    """The extensions of an HTTP connection's scopes."""
    extensions: dict[str, Any] = {"http.response.early_hint": {}, "http.response.trailers": {}}
    if _FILES:
        extensions["http.response.pathsend"] = {}
        extensions["http.response.zerocopysend"] = {}
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is not None:
        extensions["tls"] = tls_extension(ssl_object)
    return extensions


def http2_extensions(http1: dict[str, Any]) -> dict[str, Any]:
    """An HTTP/2 connection's: the same as HTTP/1.1's, since each of them works on both."""
    return dict(http1)


def websocket_extensions(http1: dict[str, Any]) -> dict[str, Any]:
    """A WebSocket scope's (one per connection, so a new dict is no cost)."""
    extensions: dict[str, Any] = {"websocket.http.response": {}}
    tls = http1.get("tls")
    if tls is not None:
        extensions["tls"] = tls
    return extensions
