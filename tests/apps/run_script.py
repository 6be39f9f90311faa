"""Serve an app object with ``esg.run()`` as a script: ``python run_script.py PORT``."""

from __future__ import annotations

import sys
from typing import Any

import esg


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served by esg.run()"})


if __name__ == "__main__":
    esg.run(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="off", log_level="warning")
