"""Serve an ASGI 2 ("double callable") app through the ASGI 3 interface."""

from __future__ import annotations

from esg._types import ASGI2App, Receive, Scope, Send


class ASGI2Middleware:
    """``app(scope)`` builds the per-connection instance; that instance takes receive and send."""

    def __init__(self, app: ASGI2App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)
