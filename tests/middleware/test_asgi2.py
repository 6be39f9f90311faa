from __future__ import annotations

import asyncio

from esg._types import Message, Receive, Scope, Send
from esg.middleware.asgi2 import ASGI2Middleware


class ASGI2App:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        request = await receive()
        await send({"type": "echo", "path": self.scope["path"], "body": request["body"]})


def test_asgi2_app_gets_scope_then_receive_and_send() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"hi"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(ASGI2Middleware(ASGI2App)({"type": "http", "path": "/x"}, receive, send))
    assert sent == [{"type": "echo", "path": "/x", "body": b"hi"}]
