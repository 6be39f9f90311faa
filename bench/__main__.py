"""``python -m bench [--quick]``: esg against its peers, A B A B, pinned, with a ceiling.

Every workload runs each server in turn within a round (the order rotates between rounds), so
each esg/peer ratio compares two runs made minutes apart at most; the report gives the median
ratio over the rounds.  HTTP/2 (h2load) has a section of its own, in bench/http2.py.  See
bench/README.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the harness's own modules

from http2 import H2_WORKLOADS, H2Settings, run_http2
from loadgen import (
    cpu_seconds,
    hey_latency,
    idle_connection_memory,
    raise_file_limit,
    wrk,
    ws_echo,
)
from peers import ensure_peers, peer_versions
from report import write_reports
from servers import BENCH_DIR, SERVERS, ServerSpec, running


@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    app: str
    script: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    target: float | None = None  # the esg/uvicorn ratio the issues ask for
    websocket: bool = False  # measured in messages/s with ws_load.py instead of wrk
    # Which load generator ceiling applies (the bare protocol of raw_server.py run with that
    # workload's requests), or None where it can't frame the requests: it answers per head
    # seen in a read, so a body split over several reads would get extra answers.
    ceiling: str | None = None


# GET workloads share plaintext's ceiling: the bare protocol answers them the same way.
WORKLOADS = [
    Workload("plaintext", "plaintext GET", "plaintext", target=3.0, ceiling="plaintext"),
    Workload(
        "post_1k",
        "1 KiB POST echo",
        "echo",
        "post.lua",
        {"BODY_SIZE": "1024"},
        2.5,
        ceiling="post_1k",
    ),
    Workload("post_64k", "64 KiB POST echo", "echo", "post.lua", {"BODY_SIZE": "65536"}, 1.5),
    Workload("post_1m", "1 MiB POST echo", "echo", "post.lua", {"BODY_SIZE": "1048576"}),
    Workload(
        "pipelined_16",
        "pipelined x16",
        "plaintext",
        "pipeline.lua",
        {"DEPTH": "16"},
        5.0,
        ceiling="pipelined_16",
    ),
    Workload("stream_10", "streamed response, 10 chunks", "stream", ceiling="plaintext"),
    Workload("starlette_json", "Starlette JSON", "starlette_json", target=1.5, ceiling="plaintext"),
    Workload(
        "ws_echo",
        "WebSocket echo, 64 B (msg/s)",
        "ws_echo",
        target=2.0,
        websocket=True,
        ceiling="ws_echo",
    ),
    Workload(
        "ws_echo_deflate",
        "WebSocket echo, permessage-deflate (msg/s)",
        "ws_echo",
        env={"DEFLATE": "1"},
        target=1.5,
        websocket=True,
        ceiling="ws_echo",
    ),
]


@dataclass
class Settings:
    servers: list[str]
    rounds: int
    seconds: float
    warmup: float
    idle_connections: int
    latency_seconds: float


def measure(server: str, workload: Workload, settings: Settings) -> dict[str, float]:
    if workload.websocket:
        return measure_websocket(server, workload, settings)
    with running(SERVERS[server], workload.app) as (pid, port):
        url = f"http://127.0.0.1:{port}/"
        wrk(url, settings.warmup, script=workload.script, env=workload.env)
        cpu_before = cpu_seconds(pid)
        result = wrk(url, settings.seconds, script=workload.script, env=workload.env)
        cpu = cpu_seconds(pid) - cpu_before
    return {
        "rps": result.rps,
        "cpu_us_per_request": 1e6 * cpu / max(1, result.requests),
        "errors": result.errors,
    }


def measure_websocket(server: str, workload: Workload, settings: Settings) -> dict[str, float]:
    spec = SERVERS[server]
    # granian serves WebSockets only when they aren't switched off for the HTTP workloads.
    spec = ServerSpec(spec.name, tuple(arg for arg in spec.argv if arg != "--no-ws"))
    deflate = "DEFLATE" in workload.env
    with running(spec, workload.app) as (pid, port):
        cpu_before = cpu_seconds(pid)
        result = ws_echo(port, settings.seconds, deflate=deflate, warmup=settings.warmup)
        cpu = cpu_seconds(pid) - cpu_before
    return {
        "rps": result.rps,
        "cpu_us_per_request": 1e6 * cpu / max(1, result.requests),
        "errors": result.errors,
    }


def run_workload(workload: Workload, settings: Settings) -> dict[str, object]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in settings.servers}
    ratios: dict[str, list[float]] = {name: [] for name in settings.servers if name != "esg"}
    for round_index in range(settings.rounds):
        shift = round_index % len(settings.servers)
        order = settings.servers[shift:] + settings.servers[:shift]
        this_round = {name: measure(name, workload, settings) for name in order}
        for name, run in this_round.items():
            runs[name].append(run)
        for peer in ratios:
            ratios[peer].append(this_round["esg"]["rps"] / this_round[peer]["rps"])
        summary = ", ".join(f"{n} {this_round[n]['rps']:,.0f}" for n in settings.servers)
        print(f"bench: {workload.name} round {round_index + 1}: {summary} req/s", file=sys.stderr)
    servers = {
        name: {
            "rps": [run["rps"] for run in per],
            "median_rps": statistics.median(run["rps"] for run in per),
            "cpu_us_per_request": statistics.median(run["cpu_us_per_request"] for run in per),
            "errors": sum(int(run["errors"]) for run in per),
        }
        for name, per in runs.items()
    }
    return {
        "label": workload.label,
        "target_vs_uvicorn": workload.target,
        "ceiling": workload.ceiling,
        "servers": servers,
        "median_ratio": {peer: statistics.median(values) for peer, values in ratios.items()},
    }


# The 1 MiB static file (Starlette FileResponse): esg with pathsend, esg without it, and the
# peers, A B A B; CPU µs per request is CPU µs per MiB sent.
STATIC_FILE = Workload("static_file", "1 MiB static file, Starlette FileResponse", "static_file")
STATIC_SERVERS = ("esg", "esg-no-pathsend", "granian", "uvicorn")


def run_static_file(settings: Settings) -> dict[str, object]:
    from apps import STATIC_FILE as path
    from apps import ensure_static_file

    ensure_static_file()
    names = [n for n in STATIC_SERVERS if n in settings.servers or n == "esg-no-pathsend"]
    try:
        result = run_workload(STATIC_FILE, Settings(names, *_rest(settings)))
    finally:
        path.unlink(missing_ok=True)
    return result


def _rest(settings: Settings) -> tuple[int, float, float, int, float]:
    return (
        settings.rounds,
        settings.seconds,
        settings.warmup,
        settings.idle_connections,
        settings.latency_seconds,
    )


FEATURE_VARIANTS = ("esg+metrics", "esg+access_log")


def run_feature_cost(settings: Settings) -> dict[str, object]:
    """Plaintext throughput of esg with --metrics, and with the access log, against plain esg.

    Measured like the peers: A B A B with the order rotating, the median of the ratios.
    """
    plaintext = next(w for w in WORKLOADS if w.name == "plaintext")
    names = ["esg", *FEATURE_VARIANTS]
    runs: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in FEATURE_VARIANTS}
    for round_index in range(settings.rounds):
        shift = round_index % len(names)
        this_round = {
            n: measure(n, plaintext, settings)["rps"] for n in names[shift:] + names[:shift]
        }
        for name, rps in this_round.items():
            runs[name].append(rps)
        for name in FEATURE_VARIANTS:
            ratios[name].append(this_round[name] / this_round["esg"])
        summary = ", ".join(f"{n} {this_round[n]:,.0f}" for n in names)
        print(f"bench: feature cost round {round_index + 1}: {summary} req/s", file=sys.stderr)
    return {
        "median_rps": {name: statistics.median(values) for name, values in runs.items()},
        "median_ratio_to_esg": {name: statistics.median(v) for name, v in ratios.items()},
    }


def run_ceiling(settings: Settings, chosen: list[Workload]) -> dict[str, float]:
    """The bare protocol's rate for each ceiling the chosen workloads refer to."""
    ceiling = {}
    by_name = {w.name: w for w in WORKLOADS}
    for name in dict.fromkeys(w.ceiling for w in chosen if w.ceiling):
        if name == "ws_echo":
            with running(SERVERS["ws_ceiling"], "-") as (_, port):
                ceiling[name] = ws_echo(port, settings.seconds, warmup=settings.warmup).rps
        else:
            ceiling[name] = measure("ceiling", by_name[name], settings)["rps"]
    return ceiling


def run_latency(settings: Settings, uvicorn_max: float) -> dict[str, object]:
    rate = 0.5 * uvicorn_max
    found: dict[str, object] = {"rate": rate}
    for name in settings.servers:
        with running(SERVERS[name], "plaintext") as (_, port):
            url = f"http://127.0.0.1:{port}/"
            wrk(url, settings.warmup)
            found[name] = hey_latency(url, settings.latency_seconds, rate)
    return found


def run_memory(settings: Settings) -> dict[str, float]:
    memory = {}
    for name in settings.servers:
        with running(SERVERS[name], "plaintext") as (pid, port):
            memory[name] = idle_connection_memory(pid, port, settings.idle_connections)
    return memory


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="esg vs uvicorn only, short runs")
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument(
        "--idle-connections", type=int, help="connections for the memory measurement"
    )
    parser.add_argument("--rounds", type=int, help="rounds per workload (3, or 1 with --quick)")
    parser.add_argument("--seconds", type=float, help="seconds per measured run")
    parser.add_argument(
        "--results",
        type=Path,
        default=BENCH_DIR / "results",
        help="directory for latest.json, latest.md and latest.png",
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only measure memory per idle connection; print it, write no report",
    )
    args = parser.parse_args()
    if args.quick:
        settings = Settings(["esg", "uvicorn"], 1, 2.0, 1.0, 500, 3.0)
    else:
        settings = Settings(["esg", "uvicorn", "granian", "hypercorn"], 3, 5.0, 2.0, 3000, 8.0)
    if args.idle_connections:
        settings.idle_connections = args.idle_connections
    if args.rounds:
        settings.rounds = args.rounds
    if args.seconds:
        settings.seconds = args.seconds
    raise_file_limit(settings.idle_connections + 1024)
    ensure_peers()
    if args.memory_only:
        memory = run_memory(settings)
        count = settings.idle_connections
        for name, per_connection in memory.items():
            print(f"{name}: {per_connection / 1024:.1f} KiB per idle connection ({count:,} open)")
        return
    started = time.time()
    chosen = [w for w in WORKLOADS if not args.only or w.name in args.only.split(",")]
    if args.only == "static_file":  # alone: no table of the other workloads
        chosen = []
    results: dict[str, object] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
            "quick": args.quick,
            "rounds": settings.rounds,
            "seconds_per_run": settings.seconds,
            "load_generator": "wrk -t1 -c64 (hey for latency), pinned to CPU 0; servers on CPU 1",
            "versions": {"esg": _esg_version(), **peer_versions()},
        },
        "ceiling": run_ceiling(settings, chosen),
        "workloads": {w.name: run_workload(w, settings) for w in chosen},
    }
    workloads = results["workloads"]
    assert isinstance(workloads, dict)
    http2 = [w.name for w in H2_WORKLOADS if not args.only or w.name in args.only.split(",")]
    if http2:
        # granian is the peer the HTTP/2 targets name; hypercorn is the slow reference.
        peers = ["granian"] if args.quick else ["granian", "hypercorn"]
        h2_settings = H2Settings(
            ["esg", *peers],
            settings.rounds,
            settings.seconds,
            settings.warmup,
            settings.idle_connections,
        )
        results["http2"] = run_http2(h2_settings, http2.__contains__)
    if "plaintext" in workloads:
        uvicorn_max = workloads["plaintext"]["servers"]["uvicorn"]["median_rps"]
        results["latency"] = run_latency(settings, uvicorn_max)
    if chosen:
        results["memory_per_idle_connection"] = run_memory(settings)
    if not args.only or "feature_cost" in args.only.split(","):
        results["feature_cost"] = run_feature_cost(settings)
    if not args.only or "static_file" in args.only.split(","):
        results["static_file"] = run_static_file(settings)
    results["meta"]["duration_s"] = round(time.time() - started)  # type: ignore[index]
    write_reports(results, args.results)
    print((args.results / "latest.md").read_text())


def _esg_version() -> str:
    sys.path.insert(0, str(Path(BENCH_DIR).parent))
    import esg
    from esg._compiled import extensions_active

    return f"{esg.__version__} ({'compiled' if extensions_active() else 'pure Python'})"


if __name__ == "__main__":
    main()
