"""An app for the multi-process tests: every answer says which process gave it.

``/pid`` answers the worker's pid; ``/block`` blocks the worker's event loop (a synchronous
sleep, bounded) so that it stops answering health checks; ``/hold`` writes ``holding`` into
``$ESG_TEST_MARKER_DIR`` and answers once a file ``release`` appears there (bounded).  On lifespan shutdown each worker
writes ``<pid>`` into the directory ``$ESG_TEST_MARKER_DIR``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["path"] == "/block":
        time.sleep(30)  # the whole worker stops: no health-check answers either
    elif scope["path"] == "/hold":
        directory = os.environ["ESG_TEST_MARKER_DIR"]
        with open(os.path.join(directory, "holding"), "w") as file:
            file.write(str(os.getpid()))
        release = os.path.join(directory, "release")
        for _ in range(600):  # 30 s at most
            if os.path.exists(release):
                break
            await asyncio.sleep(0.05)
    body = b"%010d" % os.getpid()  # one length for every worker (ab checks lengths)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            directory = os.environ.get("ESG_TEST_MARKER_DIR")
            if directory:
                with open(os.path.join(directory, str(os.getpid())), "w") as file:
                    file.write("lifespan shutdown ran")
            await send({"type": "lifespan.shutdown.complete"})
            return
