"""``python -m bench.h2``: esg's HTTP/2 against its own HTTP/1.1, on the same server, A B A B.

One esg process (one worker, pinned to CPU 1, ``apps:plaintext``) answers, in turn,
``h2load -n N -c 64 -m 10 -t 1`` (cleartext HTTP/2 with prior knowledge: 64 connections with
10 streams each in flight) and ``wrk -t1 -c64`` (HTTP/1.1 keep-alive) for about as long; the load
generators run pinned to CPU 0, as in ``python -m bench``.  Reported per protocol: requests per
second (median over the rounds) and esg's CPU microseconds per request, which is the figure that
says what a request costs esg whatever the load generator manages on a shared machine.

Needs ``h2load`` (Debian: nghttp2-client) and ``wrk``.  Not part of ``make bench`` (yet): its
peers (granian, hypercorn) are not run here.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the harness's own modules

from loadgen import cpu_seconds, wrk
from servers import CLIENT_CPU, SERVERS, pinned, running


def h2load(url: str, requests: int, *, connections: int = 64, streams: int = 10) -> float:
    """Requests per second of one h2load run; raises if any request failed."""
    argv = ["h2load", "-n", str(requests), "-c", str(connections), "-m", str(streams), "-t", "1"]
    out = subprocess.run(
        pinned(CLIENT_CPU, [*argv, url]), capture_output=True, text=True, check=True, timeout=120
    ).stdout
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    done = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    if rate is None or done is None or int(done.group(1)) != requests:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    return float(rate.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="per h2load run")
    parser.add_argument("--seconds", type=float, default=8.0, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for tool in ("h2load", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    figures: dict[str, dict[str, list[float]]] = {
        "HTTP/2 (h2load -c 64 -m 10)": {"rps": [], "cpu": []},
        "HTTP/1.1 (wrk -c 64)": {"rps": [], "cpu": []},
    }
    h2_key, h1_key = figures
    with running(SERVERS["esg"], "plaintext") as (pid, port):
        url = f"http://127.0.0.1:{port}/"
        h2load(url, args.requests // 10)  # warm-up
        wrk(url, 1)
        for _ in range(args.rounds):
            before = cpu_seconds(pid)
            rate = h2load(url, args.requests)
            cpu = cpu_seconds(pid) - before
            figures[h2_key]["rps"].append(rate)
            figures[h2_key]["cpu"].append(1e6 * cpu / args.requests)
            before = cpu_seconds(pid)
            result = wrk(url, args.seconds)
            cpu = cpu_seconds(pid) - before
            figures[h1_key]["rps"].append(result.rps)
            figures[h1_key]["cpu"].append(1e6 * cpu / max(1, result.requests))
    print(f"esg on {sys.implementation.name} {sys.version.split()[0]}, plaintext GET, one worker")
    for name, values in figures.items():
        print(
            f"{name:30} {statistics.median(values['rps']):>10,.0f} req/s"
            f"  {statistics.median(values['cpu']):6.1f} us CPU per request"
        )


if __name__ == "__main__":
    main()
