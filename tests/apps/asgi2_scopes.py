"""An ASGI 2 app that reports the ``scope["asgi"]`` of each kind of scope it was called with.

``GET /versions`` answers ``{"lifespan": {...}, "http": {...}}`` (the lifespan scope's ``asgi``
as seen at startup); a WebSocket is accepted and sent its own scope's ``asgi`` as JSON text.
"""

from __future__ import annotations

import json
from typing import Any

SEEN: dict[str, Any] = {}


class App:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        kind = self.scope["type"]
        if kind == "lifespan":
            SEEN["lifespan"] = self.scope["asgi"]
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": json.dumps(self.scope["asgi"])})
            await send({"type": "websocket.close", "code": 1000})
            return
        await receive()
        body = json.dumps({"lifespan": SEEN.get("lifespan"), "http": self.scope["asgi"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})


app = App
