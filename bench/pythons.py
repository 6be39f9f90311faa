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
doesn't move with the machine's load, into ``bench/results/pythons-instructions.md``; and
esg against uvicorn served over loopback (``bench.served_instructions``), with the ceiling's
and the app's own share where they apply.
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
    "starlette": "Starlette JSON",
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
# Served over loopback (bench.served_instructions): esg against uvicorn, and the ceiling's
# user-space cost, per workload; the in-process names they correspond to.
SERVED = {
    "plaintext": ("plaintext", ("esg", "uvicorn", "ceiling")),
    "post_1k": ("post", ("esg", "uvicorn")),
    "pipelined_16": ("pipelined16", ("esg", "uvicorn", "ceiling")),
    "starlette_json": ("starlette", ("esg", "uvicorn")),
}


def _in_process(python: Path, workload: str, server: str) -> float:
    argv = [str(python), "-m", "bench.instructions", "--loop", "uvloop", "--server", server]
    argv += ["--workload", workload, "--requests", str(INSTRUCTION_REQUESTS[workload])]
    argv += ["--connections", str(INSTRUCTION_CONNECTIONS.get(workload, 1))]
    out = subprocess.run(argv, cwd=REPO_DIR, check=True, capture_output=True, text=True)
    found = re.search(r": ([\d,]+) instructions per request", out.stdout)
    assert found is not None, out.stdout
    return float(found[1].replace(",", ""))


def _served(python: Path, workload: str, servers: tuple[str, ...]) -> dict[str, float]:
    argv = [str(python), "-m", "bench.served_instructions", "--requests", "5000"]
    argv += ["--workload", workload, "--servers", ",".join(servers)]
    out = subprocess.run(argv, cwd=REPO_DIR, check=True, capture_output=True, text=True)
    found = re.findall(r"^\S+ (\S+): ([\d,]+) instructions per request", out.stdout, re.M)
    assert len(found) == len(servers), out.stdout
    return {server: float(figure.replace(",", "")) for server, figure in found}


def count_instructions(version: str) -> dict[str, dict[str, float]]:
    """{kind: {workload: instructions per request}}: esg and the app alone in process, and
    "served:SERVER" over loopback."""
    subprocess.run(["make", "-s", "build", f"PY={version}"], cwd=REPO_DIR, check=True)
    python = REPO_DIR / f".venv-{version}" / "bin" / "python"
    if not (BENCH_DIR / f".venv-peers-{version}").exists():  # as `make bench PY=` makes it
        code = "from peers import ensure_peers; ensure_peers()"
        subprocess.run([str(python), "-c", code], cwd=BENCH_DIR, check=True)
    counts: dict[str, dict[str, float]] = {"esg": {}, "none": {}}
    for workload in INSTRUCTION_REQUESTS:
        counts["esg"][workload] = _in_process(python, workload, "esg")
        if workload in APP_ALONE:
            counts["none"][workload] = _in_process(python, workload, "none")
    for workload, (_, servers) in SERVED.items():
        for server, figure in _served(python, workload, servers).items():
            counts.setdefault(f"served:{server}", {})[workload] = figure
    print(f"bench: {version}: {counts}", file=sys.stderr)
    return counts


def instruction_table(counts: dict[str, dict[str, dict[str, float]]]) -> str:
    versions = list(counts)
    first = versions[0]
    header = ["| workload | " + " | ".join(f"CPython {v}" for v in versions) + " |"]
    header.append("|---" * (1 + len(versions)) + "|")
    lines = [
        "Instructions per request, esg in process (`bench.instructions`: callgrind, no sockets, "
        f"uvloop, compiled; change relative to CPython {first}):",
        "",
        *header,
    ]
    for workload, label in INSTRUCTION_WORKLOADS.items():
        base = counts[first]["esg"][workload]
        figures = [counts[v]["esg"][workload] for v in versions]
        cells = [f"{figure:,.0f} ({100 * (figure / base - 1):+.0f}%)" for figure in figures]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Served over loopback (`bench.served_instructions`: the server's process under "
        "callgrind, h2load with 64 connections; user space only): esg's instructions per "
        "request, uvicorn's as a multiple of esg's, and the ceiling's (the bare uvloop "
        "protocol) where it applies:",
        "",
        *header,
    ]
    for workload, (in_process, _) in SERVED.items():
        cells = []
        for v in versions:
            esg = counts[v]["served:esg"][workload]
            cell = f"{esg:,.0f}; uvicorn {counts[v]['served:uvicorn'][workload] / esg:.2f}x"
            ceiling = counts[v].get("served:ceiling", {}).get(workload)
            if ceiling is not None:
                cell += f"; ceiling {ceiling:,.0f}"
            alone = counts[v]["none"].get(in_process)
            if alone is not None:
                cell += f"; the app alone {alone:,.0f}"
            cells.append(cell)
        lines.append(f"| {INSTRUCTION_WORKLOADS[in_process]} | " + " | ".join(cells) + " |")
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
