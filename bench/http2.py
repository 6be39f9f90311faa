"""The HTTP/2 section of ``make bench``; ``python -m bench.http2`` runs it alone.

Cleartext HTTP/2 with prior knowledge, ``h2load -c 64 -m 10 -t 1`` (64 connections with 10
streams each in flight) pinned to CPU 0, each server with one worker pinned to CPU 1, as the
HTTP/1.1 workloads are: a plaintext GET and a 1 KiB POST echo (the apps of bench/apps.py),
against granian (``--http 2``) and hypercorn (h2c on its HTTP/1.1 port, as esg).  A B A B: in
every round each server runs each workload in turn, the order rotating between rounds; ratios
compare runs of the same round and the report gives their median.  Reported: requests per
second, esg's ratio to each peer, CPU microseconds per request (from /proc, whatever the
generator manages), esg's HTTP/2 rate against its HTTP/1.1 rate on the same requests (wrk, when
the HTTP/1.1 workload ran), and memory per idle HTTP/2 connection beside HTTP/1.1's (RSS growth
after opening N connections that each served one request, divided by N).

Needs ``h2load`` (Debian: nghttp2-client).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the harness's own modules

from loadgen import cpu_seconds, h2load, idle_connection_memory, raise_file_limit
from servers import SERVERS, running

# Server name in the report -> its command line in SERVERS for HTTP/2 (granian serves one
# protocol at a time: its HTTP/1.1 line is SERVERS["granian"]).
H2_SPECS = {"esg": "esg", "granian": "granian-h2", "hypercorn": "hypercorn"}
# The targets for esg on the HTTP/2 GET.
TARGETS = {"granian": 1.5, "hypercorn": 10.0}


@dataclass(frozen=True)
class H2Workload:
    name: str
    label: str
    app: str
    body_size: int = 0  # POSTed by every request when not 0
    http1: str | None = None  # the HTTP/1.1 workload (bench/__main__.py) with these requests


H2_WORKLOADS = [
    H2Workload("h2_plaintext", "HTTP/2 plaintext GET", "plaintext", http1="plaintext"),
    H2Workload("h2_post_1k", "HTTP/2 1 KiB POST echo", "echo", 1024, http1="post_1k"),
]


@dataclass
class H2Settings:
    servers: list[str]
    rounds: int
    seconds: float
    warmup: float
    idle_connections: int


def measure(
    server: str, workload: H2Workload, settings: H2Settings, body: Path | None
) -> dict[str, float]:
    with running(SERVERS[H2_SPECS[server]], workload.app) as (pid, port):
        url = f"http://127.0.0.1:{port}/"
        h2load(url, settings.warmup, data=body)
        before = cpu_seconds(pid)
        result = h2load(url, settings.seconds, data=body)
        cpu = cpu_seconds(pid) - before
    return {
        "rps": result.rps,
        "cpu_us_per_request": 1e6 * cpu / max(1, result.requests),
        "errors": result.errors,
    }


def run_workload(workload: H2Workload, settings: H2Settings, folder: Path) -> dict[str, Any]:
    body = None
    if workload.body_size:
        body = folder / f"body-{workload.body_size}"
        body.write_bytes(b"x" * workload.body_size)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in settings.servers}
    ratios: dict[str, list[float]] = {name: [] for name in settings.servers if name != "esg"}
    for round_index in range(settings.rounds):
        shift = round_index % len(settings.servers)
        order = settings.servers[shift:] + settings.servers[:shift]
        this_round = {name: measure(name, workload, settings, body) for name in order}
        for name, run in this_round.items():
            runs[name].append(run)
        for peer in ratios:
            ratios[peer].append(this_round["esg"]["rps"] / this_round[peer]["rps"])
        summary = ", ".join(f"{n} {this_round[n]['rps']:,.0f}" for n in settings.servers)
        print(f"bench: {workload.name} round {round_index + 1}: {summary} req/s", file=sys.stderr)
    return {
        "label": workload.label,
        "http1": workload.http1,
        "servers": {
            name: {
                "rps": [run["rps"] for run in per],
                "median_rps": statistics.median(run["rps"] for run in per),
                "cpu_us_per_request": statistics.median(run["cpu_us_per_request"] for run in per),
                "errors": sum(int(run["errors"]) for run in per),
            }
            for name, per in runs.items()
        },
        "median_ratio": {peer: statistics.median(values) for peer, values in ratios.items()},
    }


# granian stops accepting HTTP/2 connections past its --backpressure (1024 by default): more
# idle connections than that would never be answered.  Both protocols' figures use this many.
IDLE_LIMIT = 1000


def idle_count(settings: H2Settings) -> int:
    return min(settings.idle_connections, IDLE_LIMIT)


def run_memory(settings: H2Settings, http2: bool) -> dict[str, float]:
    """Bytes of RSS per idle connection (HTTP/2 or HTTP/1.1), per server."""
    memory = {}
    for name in settings.servers:
        spec = SERVERS[H2_SPECS[name] if http2 else name]
        with running(spec, "plaintext") as (pid, port):
            try:
                memory[name] = idle_connection_memory(pid, port, idle_count(settings), http2)
            except RuntimeError as exc:  # reported without that server's figure
                print(f"bench: {name}: memory per idle connection: {exc}", file=sys.stderr)
    return memory


def run_http2(
    settings: H2Settings, chosen: Callable[[str], bool] = lambda name: True
) -> dict[str, Any]:
    """The HTTP/2 section: every chosen workload, then memory per idle connection."""
    with tempfile.TemporaryDirectory(prefix="esg-bench-h2-") as folder:
        workloads = {
            w.name: run_workload(w, settings, Path(folder)) for w in H2_WORKLOADS if chosen(w.name)
        }
    return {
        "load_generator": "h2load -c 64 -m 10 -t 1 (cleartext, prior knowledge), pinned to CPU 0",
        "servers": settings.servers,
        "workloads": workloads,
        "idle_connections": idle_count(settings),
        "memory_per_idle_connection": run_memory(settings, True),
        "memory_per_idle_http1_connection": run_memory(settings, False),
    }


def markdown(http2: dict[str, Any], http1: dict[str, Any] | None = None) -> list[str]:
    """The section's lines for latest.md; ``http1``: the HTTP/1.1 results of the same run
    (``python -m bench``), for esg's HTTP/2 rate against its HTTP/1.1 rate."""
    servers: list[str] = http2["servers"]
    peers = [s for s in servers if s != "esg"]
    http1_workloads = (http1 or {}).get("workloads", {})
    lines = [
        "",
        f"HTTP/2, {http2['load_generator']}; one worker per server, pinned as above:",
        "",
        "| workload | "
        + " | ".join(f"{s} req/s" for s in servers)
        + "".join(f" | esg/{p}" for p in peers)
        + " | esg HTTP/2 / HTTP/1.1 |",
        "|---" * (2 + len(servers) + len(peers)) + "|",
    ]
    for data in http2["workloads"].values():
        row = [data["label"]]
        row += [f"{data['servers'][s]['median_rps']:,.0f}" for s in servers]
        row += [f"{data['median_ratio'][p]:.2f}x" for p in peers]
        same = http1_workloads.get(data["http1"] or "")
        if same and "esg" in same["servers"]:
            http1_rps = same["servers"]["esg"]["median_rps"]
            row.append(f"{data['servers']['esg']['median_rps'] / http1_rps:.2f}x")
        else:
            row.append("n/a")
        lines.append("| " + " | ".join(row) + " |")
    targets = ", ".join(f">= {t:g}x {p}" for p, t in TARGETS.items())
    lines += ["", f"Targets on the GET: {targets}; esg's HTTP/2 rate at least its HTTP/1.1 rate."]
    lines += ["", "CPU time per HTTP/2 request (µs, from /proc; lower is better):", ""]
    lines.append("| workload | " + " | ".join(servers) + " |")
    lines.append("|---" * (1 + len(servers)) + "|")
    for data in http2["workloads"].values():
        cpu = [f"{data['servers'][s]['cpu_us_per_request']:.1f}" for s in servers]
        lines.append(f"| {data['label']} | " + " | ".join(cpu) + " |")
    errors = {
        f"{s} on {d['label']}": d["servers"][s]["errors"]
        for d in http2["workloads"].values()
        for s in servers
        if d["servers"][s]["errors"]
    }
    if errors:
        lines += ["", "Failed requests: " + ", ".join(f"{k}: {v}" for k, v in errors.items()) + "."]
    memory = http2.get("memory_per_idle_connection") or {}
    memory1 = http2.get("memory_per_idle_http1_connection") or {}
    if memory:
        count = http2.get("idle_connections", 0)
        lines += [
            "",
            f"Memory per idle connection (RSS growth / {count:,} connections that each served "
            "one request), HTTP/2 beside HTTP/1.1:",
            "",
        ]
        lines += ["| server | HTTP/2 KiB | HTTP/1.1 KiB |", "|---|---|---|"]
        for s in servers:
            if s in memory:
                h1 = f"{memory1[s] / 1024:.1f}" if s in memory1 else "n/a"
                lines.append(f"| {s} | {memory[s] / 1024:.1f} | {h1} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http2", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 200 idle connections")
    parser.add_argument("--servers", default=",".join(H2_SPECS), help="comma-separated, esg first")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--idle-connections", type=int)
    args = parser.parse_args()
    servers = args.servers.split(",")
    if servers[0] != "esg" or not set(servers) <= set(H2_SPECS):
        sys.exit(f"--servers: esg first, then any of {', '.join(H2_SPECS)}")
    if args.quick:
        settings = H2Settings(servers, 1, 2.0, 1.0, 200)
    else:
        settings = H2Settings(servers, 3, 5.0, 2.0, 3000)
    settings.rounds = args.rounds or settings.rounds
    settings.seconds = args.seconds or settings.seconds
    settings.idle_connections = args.idle_connections or settings.idle_connections
    raise_file_limit(settings.idle_connections + 1024)
    if any(name != "esg" for name in servers):
        from peers import ensure_peers

        ensure_peers()
    print("\n".join(markdown(run_http2(settings))))


if __name__ == "__main__":
    main()
