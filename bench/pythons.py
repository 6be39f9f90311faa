"""``python -m bench.pythons 3.11 3.12 3.13``: esg on several CPythons, one table.

For each version it builds esg in ``.venv-X.Y`` (``make build PY=X.Y``) and runs the harness on
that interpreter (``python -m bench --quick``: esg against uvicorn, each with its peers venv of
the same Python), writing that run's report to ``bench/results/python-X.Y/``.  Then it writes
``bench/results/pythons.md``: per workload and Python, esg's rate, its ratio to uvicorn measured
in the same run, its share of the load generator's ceiling, and esg's CPU time per request
(from /proc, the steadier figure on a shared machine).

The versions run one after another, never at once: two harnesses would share the two CPUs.

``python -m bench.pythons --instructions 3.11 3.12 3.13`` counts instructions per request with
callgrind instead (``bench.instructions`` on uvloop, in process, no sockets), the figure that
doesn't move with the machine's load, into ``bench/results/pythons-instructions.md``: esg's,
uvicorn's (driven the same way from its peers venv) and, for GET workloads, the app's alone.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
DEFAULT_WORKLOADS = "plaintext,post_1k,post_64k,pipelined_16,starlette_json,ws_echo"

sys.path.insert(0, str(BENCH_DIR))  # report.py's neighbours import each other by name

from report import ceiling_fraction  # noqa: E402


def run_on(version: str, workloads: str, rounds: int, seconds: float) -> dict[str, Any]:
    subprocess.run(["make", "-s", "build", f"PY={version}"], cwd=REPO_DIR, check=True)
    out = RESULTS / f"python-{version}"
    python = REPO_DIR / f".venv-{version}" / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "bench",
            "--quick",
            "--only",
            workloads,
            "--rounds",
            str(rounds),
            "--seconds",
            str(seconds),
            "--results",
            str(out),
        ],
        cwd=REPO_DIR,
        check=True,
    )
    results: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return results


def table(runs: dict[str, dict[str, Any]]) -> str:
    versions = list(runs)
    first = runs[versions[0]]
    lines = [
        "esg on each CPython (one worker, compiled; in each cell: esg req/s or msg/s, esg/uvicorn "
        "measured in the same run, esg's share of the load generator ceiling, and esg's CPU "
        "µs per request):",
        "",
        "| workload | "
        + " | ".join(f"CPython {runs[v]['meta']['python']}" for v in versions)
        + " |",
        "|---" * (1 + len(versions)) + "|",
    ]
    for name, data in first["workloads"].items():
        cells = []
        for version in versions:
            workload = runs[version]["workloads"].get(name)
            if workload is None:
                cells.append("")
                continue
            esg = workload["servers"]["esg"]
            cells.append(
                f"{esg['median_rps']:,.0f} ({workload['median_ratio']['uvicorn']:.2f}x, "
                f"{ceiling_fraction(runs[version], workload)}, {esg['cpu_us_per_request']:.1f} µs)"
            )
        lines.append(f"| {data['label']} | " + " | ".join(cells) + " |")
    meta = first["meta"]
    lines += [
        "",
        f"Measured {meta['date']} on {meta['machine']}; {meta['rounds']} round(s) of "
        f"{meta['seconds_per_run']:g} s per server and workload, {meta['load_generator']}. "
        "Peers: " + "; ".join(f"{v}: {_uvicorn(runs[v])}" for v in versions) + ".",
    ]
    return "\n".join(lines) + "\n"


INSTRUCTION_WORKLOADS = {
    "plaintext": "plaintext GET",
    "post": "1 KiB POST echo",
    "post64k": "64 KiB POST echo",
    "post1m": "1 MiB POST echo",
    "pipelined16": "pipelined x16",
    "starlette": "Starlette JSON, 64 connections",
}
# Fewer requests for the big bodies: each costs far more (see bench/instructions.py).
INSTRUCTION_REQUESTS = {
    "plaintext": 5000,
    "post": 5000,
    "post64k": 1000,
    "post1m": 100,
    "pipelined16": 1000,  # reads of 16 requests each
    "starlette": 2048,  # 32 rounds of the 64 connections
}
INSTRUCTION_CONNECTIONS = {"starlette": 64}
# The app alone (no server, no loop) for the GET workloads, so each server's own share shows.
APP_ALONE = ("plaintext", "starlette")


def _count(python: Path, workload: str, server: str) -> float:
    argv = [str(python), "-m", "bench.instructions", "--loop", "uvloop", "--server", server]
    argv += ["--workload", workload, "--requests", str(INSTRUCTION_REQUESTS[workload])]
    argv += ["--connections", str(INSTRUCTION_CONNECTIONS.get(workload, 1))]
    out = subprocess.run(argv, cwd=REPO_DIR, check=True, capture_output=True, text=True)
    found = re.search(r": ([\d,]+) instructions per request", out.stdout)
    assert found is not None, out.stdout
    return float(found[1].replace(",", ""))


def count_instructions(version: str) -> dict[str, dict[str, float]]:
    """{server: {workload: instructions per request}} for esg, uvicorn and the app alone."""
    subprocess.run(["make", "-s", "build", f"PY={version}"], cwd=REPO_DIR, check=True)
    python = REPO_DIR / f".venv-{version}" / "bin" / "python"
    peers = BENCH_DIR / f".venv-peers-{version}" / "bin" / "python"
    if not peers.exists():  # uvicorn's own venv for this Python, as `make bench PY=` makes it
        code = "from bench.peers import ensure_peers; ensure_peers()"
        subprocess.run([str(python), "-c", code], cwd=BENCH_DIR, check=True)
    counts: dict[str, dict[str, float]] = {"esg": {}, "uvicorn": {}, "none": {}}
    for workload in INSTRUCTION_REQUESTS:
        for server, interpreter in (("esg", python), ("uvicorn", peers), ("none", python)):
            if server == "none" and workload not in APP_ALONE:
                continue
            counts[server][workload] = _count(interpreter, workload, server)
            print(
                f"bench: {version} {workload} {server}: "
                f"{counts[server][workload]:,.0f} instructions/request",
                file=sys.stderr,
            )
    return counts


def instruction_table(counts: dict[str, dict[str, dict[str, float]]]) -> str:
    versions = list(counts)
    first = versions[0]
    lines = [
        "Instructions per request (callgrind, in process without sockets, uvloop; esg "
        f"compiled; change relative to CPython {first}):",
        "",
        "| workload | " + " | ".join(f"CPython {v}" for v in versions) + " |",
        "|---" * (1 + len(versions)) + "|",
    ]
    for workload, label in INSTRUCTION_WORKLOADS.items():
        base = counts[first]["esg"][workload]
        figures = [counts[v]["esg"][workload] for v in versions]
        cells = [f"{figure:,.0f} ({100 * (figure / base - 1):+.0f}%)" for figure in figures]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "uvicorn (httptools, same driver) against esg, in instructions per request: uvicorn's "
        "count / esg's count. For the GET workloads, the app alone (called directly, no "
        "server) and each server's own share on top of it:",
        "",
        "| workload | " + " | ".join(f"CPython {v}" for v in versions) + " |",
        "|---" * (1 + len(versions)) + "|",
    ]
    for workload, label in INSTRUCTION_WORKLOADS.items():
        cells = []
        for v in versions:
            esg, uvicorn = counts[v]["esg"][workload], counts[v]["uvicorn"][workload]
            cell = f"{uvicorn:,.0f} / {esg:,.0f} = {uvicorn / esg:.2f}x"
            alone = counts[v]["none"].get(workload)
            if alone is not None:
                cell += (
                    f"; app alone {alone:,.0f}, server share "
                    f"{uvicorn - alone:,.0f} / {esg - alone:,.0f} = "
                    f"{(uvicorn - alone) / (esg - alone):.2f}x"
                )
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _uvicorn(results: dict[str, Any]) -> str:
    versions = results["meta"]["versions"]
    return f"uvicorn {versions.get('uvicorn', '?')}, uvloop {versions.get('uvloop', '?')}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pythons", description=__doc__)
    parser.add_argument("versions", nargs="+", help="CPython versions, e.g. 3.11 3.12 3.13")
    parser.add_argument("--only", default=DEFAULT_WORKLOADS, help="comma-separated workloads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions with callgrind instead"
    )
    args = parser.parse_args()
    if args.instructions:
        counts = {v: count_instructions(v) for v in args.versions}
        text = instruction_table(counts)
        (RESULTS / "pythons-instructions.md").write_text(text)
        print(text)
        return
    runs = {v: run_on(v, args.only, args.rounds, args.seconds) for v in args.versions}
    text = table(runs)
    (RESULTS / "pythons.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
