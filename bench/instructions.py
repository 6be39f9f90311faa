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

A request larger than ``--piece`` bytes (64 KiB by default) reaches ``data_received`` in pieces
of that size, as an event loop's reads deliver a large upload, with one loop iteration between
pieces and none while the protocol has paused reading.  The big workloads cost far more per
request: give them fewer ``--requests`` (e.g. 1000 for post64k, 200 for post1m).

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


async def drive(requests: int, request: bytes, piece: int = PIECE) -> None:
    from esg._compiled import load
    from esg.config import Config
    from esg.state import ServerState

    # The build callers get (compiled unless ESG_NO_EXTENSIONS=1): importing
    # esg.http.protocol itself would always drive the pure-Python twin.
    HttpProtocol = load("esg.http.protocol").HttpProtocol

    config = Config(app, access_log=False, log_config=None, lifespan="off")
    config.load()
    protocol = HttpProtocol(config, ServerState(), {})
    transport = NullTransport()
    per_read = request.count(b" HTTP/1.1\r\n")
    protocol.connection_made(transport)
    pieces = [request[start : start + piece] for start in range(0, len(request), piece)]
    for done in range(requests):
        for data in pieces:
            while not transport.reading:  # the protocol paused reading: the loop reads nothing
                await asyncio.sleep(0)
            protocol.data_received(data)
            # One loop turn per read whatever the server does with it, as a socket read has
            # (an eager start answers within data_received; a scheduled task runs in this turn).
            await asyncio.sleep(0)
        while transport.responses < (done + 1) * per_read:  # apps that suspended: to the answer
            await asyncio.sleep(0)
    assert transport.responses == requests * per_read


def count(requests: int, workload: str, piece: int = PIECE, loop: str = "asyncio") -> int:
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
    args = parser.parse_args()
    if args.drive is not None:
        main_coroutine = drive(args.drive, WORKLOADS[args.workload], args.piece)
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(main_coroutine)
        else:
            asyncio.run(main_coroutine)
        return
    base = min(500, args.requests // 10)
    small = count(base, args.workload, args.piece, args.loop)
    large = count(base + args.requests, args.workload, args.piece, args.loop)
    from esg import __version__, _compiled

    per_request = (large - small) / (args.requests * requests_per_read(args.workload))
    print(
        f"{args.workload}: {per_request:,.0f} instructions per request "
        f"({_compiled.describe(__version__)}, {args.loop} loop, {args.requests} requests)"
    )


if __name__ == "__main__":
    main()
