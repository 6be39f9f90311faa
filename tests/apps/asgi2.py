"""An ASGI 2 (double-callable, class based) app."""

from __future__ import annotations

from typing import Any


class App:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] == "lifespan":
            while True:
                message = await receive()
                reply = message["type"] + ".complete"
                await send({"type": reply})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        text = f"asgi2 {self.scope['method']} {self.scope['path']} " + body.decode()
        text += f" version={self.scope['asgi']['version']}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text.encode()})


app = App
