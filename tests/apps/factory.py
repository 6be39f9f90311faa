"""An app built by a factory function (served with ``--factory``)."""

from __future__ import annotations

from typing import Any

CALLS: list[str] = []


def create_app() -> Any:
    CALLS.append("called")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b"made by factory, calls=%d" % len(CALLS)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app
