"""``python -m bench.eager``: esg's eager task start against scheduled tasks, and uvicorn.

On CPython 3.12+ esg starts the app of a pipelined read's requests as eager tasks and schedules
the app of a request that arrives alone in its read (esg/http/protocol.py, "Eager start").
This runs, on the CPython running it, esg as it is, esg with ``ESG_NO_EAGER=1`` (every task
scheduled) and uvicorn, A B A B as the harness does (servers pinned to CPU 1, wrk to CPU 0,
the order rotating between rounds), and prints each one's median req/s, its ratio to uvicorn
and its CPU µs per request:

    .venv-3.13/bin/python -m bench.eager --rounds 3 --seconds 4
    .venv-3.12/bin/python -m bench.eager --only plaintext,pipelined_16

On 3.10 and 3.11 the two esg lines run the same code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the harness's own modules

from loadgen import cpu_seconds, wrk  # noqa: E402
from servers import SERVERS, running  # noqa: E402

# name -> (app, wrk script, its environment): the harness's workloads (bench/__main__.py).
WORKLOADS = {
    "plaintext": ("plaintext", None, {}),
    "post_1k": ("echo", "post.lua", {"BODY_SIZE": "1024"}),
    "pipelined_16": ("plaintext", "pipeline.lua", {"DEPTH": "16"}),
    "starlette_json": ("starlette_json", None, {}),
}
SERVER_NAMES = ("esg", "esg-no-eager", "uvicorn")


def measure(server: str, workload: str, seconds: float) -> tuple[float, float]:
    """(req/s, CPU µs per request) of one warmed-up run."""
    app, script, env = WORKLOADS[workload]
    with running(SERVERS[server], app) as (pid, port):
        url = f"http://127.0.0.1:{port}/"
        wrk(url, 1.0, script=script, env=env)
        before = cpu_seconds(pid)
        result = wrk(url, seconds, script=script, env=env)
        cpu = cpu_seconds(pid) - before
    return result.rps, 1e6 * cpu / max(1, result.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    workloads = args.only.split(",")
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; one of {', '.join(WORKLOADS)}")
    print(f"CPython {sys.version.split()[0]}, {args.rounds} rounds of {args.seconds:g} s")
    print("| workload | server | req/s | / uvicorn | CPU µs per request |")
    print("|---|---|---|---|---|")
    for workload in workloads:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in SERVER_NAMES}
        for round_number in range(args.rounds):
            shift = round_number % len(SERVER_NAMES)
            for server in SERVER_NAMES[shift:] + SERVER_NAMES[:shift]:
                runs[server].append(measure(server, workload, args.seconds))
        uvicorn = statistics.median(rps for rps, _ in runs["uvicorn"])
        for server in SERVER_NAMES:
            rps = statistics.median(rps for rps, _ in runs[server])
            cpu = statistics.median(cpu for _, cpu in runs[server])
            print(
                f"| {workload} | {server} | {rps:,.0f} | {rps / uvicorn:.2f}x | {cpu:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
