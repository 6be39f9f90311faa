"""Serve with ``esg.run()`` and keyword arguments written for uvicorn.

``python uvicorn_kwargs.py PORT '{"host": null, ...}'`` passes the JSON object to ``esg.run()``;
``"notify_marker": PATH`` becomes a ``callback_notify`` that appends a line to PATH each time it
is called (uvicorn's gunicorn worker passes its heartbeat this way).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import esg


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"], "server": scope["server"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def notifier(path: str) -> Callable[[], Awaitable[None]]:
    async def callback_notify() -> None:
        with open(path, "a", encoding="utf-8") as file:
            file.write("notified\n")

    return callback_notify


if __name__ == "__main__":
    settings: dict[str, Any] = json.loads(sys.argv[2])
    marker = settings.pop("notify_marker", None)
    if marker is not None:
        settings["callback_notify"] = notifier(marker)
    esg.run(app, port=int(sys.argv[1]), lifespan="off", **settings)
