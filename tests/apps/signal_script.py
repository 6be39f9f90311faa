"""A program embedding esg, for the signal hand-back tests: ``python signal_script.py PORT MODE``.

MODE ``handlers``: the program installs its own SIGINT and SIGTERM handlers, then serves with
``esg.run()``.  MODE ``server``: it keeps Python's default handlers and serves with
``Server(config).run()``.  Each step is printed on its own line (stdout is unbuffered in the
tests), so the test can check what ran, and in which order.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any

import esg
from esg.config import Config
from esg.server import Server

lifespan_shutdown_done = False


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global lifespan_shutdown_done
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                lifespan_shutdown_done = True
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"embedded"})


def handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    print(f"program handler: {name} (after the lifespan shutdown: {lifespan_shutdown_done})")


def main(port: int, mode: str) -> None:
    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "log_level": "info"}
    if mode == "handlers":
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        esg.run(app, **options)
        print("esg.run returned")
        restored = all(signal.getsignal(s) is handler for s in (signal.SIGINT, signal.SIGTERM))
        print(f"program handlers restored: {restored}")
        return
    try:
        Server(Config(app, **options)).run()
    except KeyboardInterrupt:
        print("KeyboardInterrupt out of Server.run")
    else:
        print("Server.run returned")
    sigint_back = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print(f"default SIGINT handler back: {sigint_back}")
    print(f"default SIGTERM disposition back: {signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
