"""Instructions per request, counted by callgrind: the steady figure on a noisy machine.

Wall-clock rates on a shared 2-core machine move by 10-30% from one minute to the next;
callgrind counts the instructions the CPU executes, which are the same for the same binary and
input whatever else runs.  This drives esg's HTTP connection in process (no sockets, no kernel:
only esg's own work plus the event loop's) for keep-alive requests of one kind, under callgrind
twice with different request counts, and reports the difference per request, so interpreter
start-up and imports cancel out.

    python -m bench.instructions                 # plaintext GET, compiled build
    python -m bench.instructions --workload post # 1 KiB POST echo
    python -m bench.instructions --workload post1m --requests 200
    ESG_NO_EXTENSIONS=1 python -m bench.instructions
    python -m bench.instructions --loop uvloop   # the loop esg picks when uvloop is installed
    python -m bench.instructions --workload pipelined16 --requests 1000   # 16 per read
    python -m bench.instructions --workload starlette --connections 64   # as wrk -c 64 drives it
    bench/.venv-peers-3.11/bin/python -m bench.instructions --server uvicorn   # the peer
    python -m bench.instructions --workload starlette --server none   # the app alone

A request larger than ``--piece`` bytes (64 KiB by default) reaches ``data_received`` in pieces
of that size, as an event loop's reads deliver a large upload, with one loop iteration between
pieces and none while the protocol has paused reading.  The big workloads cost far more per
request: give them fewer ``--requests`` (e.g. 1000 for post64k, 200 for post1m).

``--connections N`` keeps N connections open and gives each one request per loop turn in
turn, as a load generator with N connections does: objects of N requests in flight at once
(what the garbage collector walks) are part of the figure.

Needs ``valgrind``.  ``--drive N`` runs the loop itself (what callgrind is given).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

WORKLOADS = {
    "plaintext": b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n",
    "post": (
        b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 1024\r\n\r\n" + b"x" * 1024
    ),
    "post64k": (
        b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 65536\r\n\r\n" + b"x" * 65536
    ),
    "post1m": (
        b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 1048576\r\n\r\n" + b"x" * 1048576
    ),
    # 16 plaintext requests in one read, as wrk's pipeline.lua sends them: figures are per
    # request, not per read.
    "pipelined16": b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n" * 16,
    # The harness's Starlette JSON endpoint (bench/apps.py), one GET per read.
    "starlette": b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n",
}


def requests_per_read(workload: str) -> int:
    return WORKLOADS[workload].count(b" HTTP/1.1\r\n")


PIECE = 65536  # uvloop and asyncio read up to 256 KiB at once; loopback segments are 64 KiB


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        # Gathered and joined once, as Starlette's Request.body() and bench/apps.py's echo do:
        # `body += chunk` would copy the body so far on every message and swamp the figure.
        parts = []
        more = True
        while more:
            message = await receive()
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(parts)
    else:
        body = b"Hello, world!"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class NullTransport(asyncio.Transport):
    """Takes every write; counts responses by their status lines."""

    def __init__(self) -> None:
        super().__init__()
        self.responses = 0
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        # Status lines start a write (or follow small answers gathered into one): searching
        # the first 4 KiB finds them without scanning a large echoed body.
        self.responses += bytes(data).count(b"HTTP/1.1 200", 0, 4096)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        pass


def _app_for(workload: str) -> Any:
    if workload == "starlette":
        from bench.apps import starlette_json

        return starlette_json
    return app


def _esg_protocols(app: Any) -> Any:
    from esg._compiled import load
    from esg.config import Config
    from esg.state import ServerState

    # The build callers get (compiled unless ESG_NO_EXTENSIONS=1): importing
    # esg.http.protocol itself would always drive the pure-Python twin.
    HttpProtocol = load("esg.http.protocol").HttpProtocol
    config = Config(app, access_log=False, log_config=None, lifespan="off")
    config.load()
    state = ServerState()
    return lambda: HttpProtocol(config, state, {})


def _uvicorn_protocols(app: Any) -> Any:
    # uvicorn's httptools protocol, as `uvicorn --http httptools` serves: the peer the
    # harness compares with, counted the same way (run under the peers' venv).
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app, access_log=False, log_config=None, lifespan="off", http="httptools")
    config.load()
    state = ServerState()
    return lambda: HttpToolsProtocol(config, state, {})


def call_app_alone(requests: int, app: Any) -> None:
    """The app's own cost: called directly with a ready scope, no server and no event loop.

    For GET workloads whose app answers without suspending (plaintext, starlette); what a
    server costs on top is its figure minus this one."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"user-agent", b"wrk")],
        "state": {},
    }
    request = {"type": "http.request", "body": b"", "more_body": False}
    sent: list[Any] = []

    async def receive() -> Any:
        return request

    async def send(message: Any) -> None:
        sent.append(message)

    for _ in range(requests):
        answer = app(dict(scope), receive, send)
        try:
            answer.send(None)
        except StopIteration:
            pass
        else:
            raise SystemExit("the app suspended: --server none needs one that doesn't")
    assert len(sent) == 2 * requests


async def drive(
    requests: int,
    request: bytes,
    piece: int = PIECE,
    app: Any = app,
    connections: int = 1,
    server: str = "esg",
) -> None:
    make_protocol = _uvicorn_protocols(app) if server == "uvicorn" else _esg_protocols(app)
    links = []
    for _ in range(connections):
        protocol = make_protocol()
        transport = NullTransport()
        protocol.connection_made(transport)
        links.append((protocol, transport))
    per_read = request.count(b" HTTP/1.1\r\n")
    pieces = [request[start : start + piece] for start in range(0, len(request), piece)]
    for done in range(0, requests, connections):
        for data in pieces:
            for protocol, transport in links:
                while not transport.reading:  # paused reading: the loop reads nothing
                    await asyncio.sleep(0)
                protocol.data_received(data)
            # One loop turn per read whatever the server does with it, as a socket read has
            # (an eager start answers within data_received; a scheduled task runs in this turn).
            await asyncio.sleep(0)
        for _protocol, transport in links:  # apps that suspended: to the answer
            while transport.responses < (done // connections + 1) * per_read:
                await asyncio.sleep(0)
    for _protocol, transport in links:
        assert transport.responses == -(-requests // connections) * per_read


def count(
    requests: int,
    workload: str,
    piece: int = PIECE,
    loop: str = "asyncio",
    connections: int = 1,
    server: str = "esg",
) -> int:
    """Instructions callgrind counts for a whole run of ``requests`` requests."""
    with tempfile.TemporaryDirectory(prefix="esg-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.instructions",
                "--workload",
                workload,
                "--drive",
                str(requests),
                "--piece",
                str(piece),
                "--loop",
                loop,
                "--connections",
                str(connections),
                "--server",
                server,
            ],
            check=True,
            capture_output=True,
            # Same hash seed each run: set and dict layouts (and so instruction counts) repeat.
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        with open(out) as data:
            summary = re.search(r"^summary:\s*(\d+)", data.read(), re.M)
        assert summary is not None, "callgrind wrote no summary"
        return int(summary[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="plaintext")
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=5000, help="the larger run's extra count")
    parser.add_argument("--piece", type=int, default=PIECE, help="bytes per data_received call")
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop driven"
    )
    parser.add_argument(
        "--connections", type=int, default=1, help="connections served in turn, one read each"
    )
    parser.add_argument(
        "--server",
        choices=("esg", "uvicorn", "none"),
        default="esg",
        help="whose HTTP/1.1 protocol (uvicorn: run with the peers' venv's python); "
        "none: the app alone, called directly (GET workloads)",
    )
    args = parser.parse_args()
    if args.drive is not None and args.server == "none":
        call_app_alone(args.drive, _app_for(args.workload))
        return
    if args.drive is not None:
        main_coroutine = drive(
            args.drive,
            WORKLOADS[args.workload],
            args.piece,
            _app_for(args.workload),
            args.connections,
            args.server,
        )
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(main_coroutine)
        else:
            asyncio.run(main_coroutine)
        return
    if args.requests % args.connections:
        parser.error("--requests must be a multiple of --connections")
    # The smaller run: a tenth of the requests (at most 500), whole rounds of the connections.
    base = max(
        args.connections, min(500, args.requests // 10) // args.connections * args.connections
    )
    settings = (args.workload, args.piece, args.loop, args.connections, args.server)
    small = count(base, *settings)
    large = count(base + args.requests, *settings)
    if args.server == "esg":
        from esg import __version__, _compiled

        who = _compiled.describe(__version__)
    elif args.server == "none":
        who = f"the app alone on CPython {sys.version.split()[0]}"
    else:
        from importlib.metadata import version

        who = f"uvicorn {version('uvicorn')} (httptools) on CPython {sys.version.split()[0]}"
    per_request = (large - small) / (args.requests * requests_per_read(args.workload))
    print(
        f"{args.workload}: {per_request:,.0f} instructions per request "
        f"({who}, {args.loop} loop, {args.requests} requests, "
        f"{args.connections} connection{'s' if args.connections > 1 else ''})"
    )


if __name__ == "__main__":
    main()
