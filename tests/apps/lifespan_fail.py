"""An app whose lifespan startup fails with a message the user must see."""

from __future__ import annotations

from typing import Any

STARTUP_MESSAGE = "database at db.invalid is unreachable"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": STARTUP_MESSAGE})
        return
    raise AssertionError("no request should reach an app that failed to start")
