"""Instructions per request of a server serving real loopback connections, counted by callgrind.

``bench.instructions`` drives esg's protocol in process, which is the steady figure for
comparing two versions of esg but not for comparing esg with another server: its driver's own
loop turns and Python transport weigh differently on each.  This runs the real server
process (the command line the harness uses, from bench/servers.py) under callgrind, sends it a
fixed number of requests with ``h2load`` over loopback (64 connections), stops it, and does the
same with more requests; the difference divided by the extra requests is what one request
costs the server in user space: its Python, the event loop, the C extensions, libc.  The
kernel's share (the socket reads and writes, epoll) is not counted; it is the same for every
server that does one read and one write per request, and ``ceiling`` (the bare uvloop
protocol of raw_server.py) shows what user space costs with no HTTP and no ASGI at all.

    python -m bench.served_instructions                      # esg, uvicorn, ceiling; plaintext
    python -m bench.served_instructions --servers esg,granian --workload h2_plaintext
    make bench-instructions        # esg in process and served, on each CPython, for the README

Figures match the wall-clock ratios of the harness closely (CPython 3.11 plaintext: 1.65x
uvicorn counted here, 1.67x measured by wrk) and repeat within about 1% on a busy machine.
Needs ``valgrind`` and ``h2load`` (Debian's nghttp2-client).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # servers.py is imported by name

from servers import BENCH_DIR, SERVERS, free_port, wait_until_accepting  # noqa: E402


@dataclass(frozen=True)
class Workload:
    app: str  # the bench/apps.py attribute served
    h2load: tuple[str, ...]  # h2load's options besides -n and the URL
    body: bytes | None = None  # a request body (h2load -d), or a GET
    http2: bool = False


WORKLOADS = {
    "plaintext": Workload("plaintext", ("--h1", "-c", "64", "-m", "1", "-t", "1")),
    "post_1k": Workload("echo", ("--h1", "-c", "64", "-m", "1", "-t", "1"), b"x" * 1024),
    # h2load's -m is the pipeline depth over HTTP/1.1: 16 requests in flight per connection.
    "pipelined_16": Workload("plaintext", ("--h1", "-c", "64", "-m", "16", "-t", "1")),
    "starlette_json": Workload("starlette_json", ("--h1", "-c", "64", "-m", "1", "-t", "1")),
    "h2_plaintext": Workload("plaintext", ("-c", "64", "-m", "10", "-t", "1"), http2=True),
    "h2_post_1k": Workload("echo", ("-c", "64", "-m", "10", "-t", "1"), b"x" * 1024, True),
}


def server_argv(server: str, workload: Workload, port: int) -> list[str]:
    """The harness's command line; granian serves HTTP/2 only when told to (esg and hypercorn
    recognise the cleartext preface themselves)."""
    argv = [part.format(app=workload.app, port=port) for part in SERVERS[server].argv]
    if server == "granian" and workload.http2:
        at = argv.index("--http")
        argv[at + 1] = "2"
    return argv


def count(server: str, workload_name: str, requests: int) -> int:
    """Instructions the server process (and any it starts) ran for ``requests`` requests."""
    workload = WORKLOADS[workload_name]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="esg-served-") as tmp:
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",  # granian and hypercorn serve from a child process
            f"--callgrind-out-file={tmp}/callgrind.%p",
            *server_argv(server, workload, port),
        ]
        env = dict(os.environ, PYTHONPATH=str(BENCH_DIR), PYTHONHASHSEED="0")
        process = subprocess.Popen(
            argv,
            cwd=BENCH_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until_accepting(port, process, 180.0)  # callgrind starts slowly
            load = ["h2load", *workload.h2load, "-n", str(requests)]
            if workload.body is not None:
                body = Path(tmp) / "body"
                body.write_bytes(workload.body)
                load += ["-d", str(body)]
            path = "/echo" if workload.body is not None else "/"
            result = subprocess.run(
                [*load, f"http://127.0.0.1:{port}{path}"],
                capture_output=True,
                text=True,
                timeout=900,
            )
            done = re.search(r"(\d+) succeeded", result.stdout)
            if done is None or int(done[1]) != requests:
                raise RuntimeError(f"{server}: h2load did not finish:\n{result.stdout[-800:]}")
        finally:
            # SIGTERM: every server here stops on it, and callgrind still writes its counts
            # when it ends a process (raw_server.py) by default action.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
        total = 0
        for out in Path(tmp).glob("callgrind.*"):
            found = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.M)
            if found is not None:
                total += int(found[1])
        if total == 0:
            raise RuntimeError(f"{server}: callgrind wrote no counts")
        return total


def per_request(server: str, workload: str, requests: int) -> float:
    base = requests // 5
    small = count(server, workload, base)
    large = count(server, workload, base + requests)
    return (large - small) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="esg,uvicorn,ceiling", help="comma-separated")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="plaintext")
    parser.add_argument("--requests", type=int, default=10000, help="the larger run's extra")
    args = parser.parse_args()
    servers = args.servers.split(",")
    for server in servers:
        if server not in SERVERS:
            parser.error(f"unknown server {server!r}; one of {', '.join(SERVERS)}")
    figures = {}
    python = f"CPython {sys.version.split()[0]}"
    for server in servers:  # each line as soon as it is counted: a whole run takes minutes
        figure = figures[server] = per_request(server, args.workload, args.requests)
        line = f"{args.workload} {server}: {figure:,.0f} instructions per request ({python})"
        if server != "esg" and "esg" in figures and server not in ("ceiling", "ws_ceiling"):
            line += f", {figure / figures['esg']:.2f}x esg's"
        print(line, flush=True)


if __name__ == "__main__":
    main()
