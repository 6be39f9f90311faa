"""basic.py's routes plus what HTTP/2 adds: response trailers (a gRPC-style answer)."""

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


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] == "/trailers":
        await trailers(scope, receive, send)
        return
    await basic_app(scope, receive, send)
