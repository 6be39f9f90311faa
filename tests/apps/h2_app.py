"""basic.py's routes plus what HTTP/2 adds: response trailers (a gRPC-style answer), and a page
that shows a browser's view of the protocol it used (``/page``)."""

from __future__ import annotations

from apps.basic import app as basic_app
from esg._types import Receive, Scope, Send


async def trailers(scope: Scope, receive: Receive, send: Send) -> None:
    """A body in two pieces, then trailers, if the server offers the extension."""
    offered = "http.response.trailers" in scope.get("extensions", {})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": offered,
        }
    )
    await send({"type": "http.response.body", "body": b"first,", "more_body": True})
    await send({"type": "http.response.body", "body": b"second"})
    if offered:
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"grpc-status", b"0"), (b"grpc-message", b"fine")],
            }
        )


# The page writes what the browser negotiated into the DOM (a headless browser dumps it): the
# navigation's nextHopProtocol, then a fetch's, with the http_version esg put in its scope.
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>esg over HTTP/2</title></head>
<body><script>
"use strict";
const navigation = performance.getEntriesByType("navigation")[0];
document.body.setAttribute("data-navigation", navigation.nextHopProtocol);
fetch("/scope").then((response) => response.json()).then((scope) => {
  const entry = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/scope"));
  document.body.setAttribute("data-fetch", entry ? entry.nextHopProtocol : "none");
  document.body.setAttribute("data-scope", scope.http_version);
}).catch((error) => document.body.setAttribute("data-error", String(error)));
</script></body></html>
"""


async def page(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": PAGE})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] == "/trailers":
        await trailers(scope, receive, send)
        return
    if scope["type"] == "http" and scope["path"] == "/page":
        await page(scope, receive, send)
        return
    await basic_app(scope, receive, send)
