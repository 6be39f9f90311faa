"""Write latest.json, latest.md and latest.png (the chart is drawn with the peers' matplotlib)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from http2 import markdown as http2_markdown
from servers import BENCH_DIR, PEERS_VENV


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    workloads = results["workloads"]
    if not workloads:  # --only with HTTP/2 workloads or static_file: no HTTP/1.1 table
        lines = http2_markdown(results["http2"], results) if results.get("http2") else []
        lines += _static_file(results)
        return "\n".join(lines).lstrip("\n") + "\n"
    servers = list(next(iter(workloads.values()))["servers"])
    peers = [s for s in servers if s != "esg"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']}, Python {meta['python']}; "
        f"{meta['rounds']} round(s) of {meta['seconds_per_run']:g} s per server and workload, "
        f"{meta['load_generator']}.",
        "",
        "| workload | "
        + " | ".join(f"{s} req/s" for s in servers)
        + " | "
        + " | ".join(f"esg/{p}" for p in peers)
        + " | esg of ceiling | target esg/uvicorn |",
        "|---" * (1 + len(servers) + len(peers) + 2) + "|",
    ]
    for data in workloads.values():
        row = [data["label"]]
        row += [_fmt(data["servers"][s]["median_rps"]) for s in servers]
        row += [f"{data['median_ratio'][p]:.2f}x" for p in peers]
        row.append(ceiling_fraction(results, data))
        target = data["target_vs_uvicorn"]
        row.append(f">= {target:g}x" if target else "")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "CPU time per request or message (µs, from /proc; lower is better):", ""]
    lines.append("| workload | " + " | ".join(servers) + " |")
    lines.append("|---" * (1 + len(servers)) + "|")
    for data in workloads.values():
        cpu = [f"{data['servers'][s]['cpu_us_per_request']:.1f}" for s in servers]
        lines.append(f"| {data['label']} | " + " | ".join(cpu) + " |")
    lines += _extras(results, servers)
    if results.get("http2"):
        lines += http2_markdown(results["http2"], results)
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines += ["", f"Versions: {versions}. Run time: {meta.get('duration_s', '?')} s."]
    return "\n".join(lines) + "\n"


def ceiling_fraction(results: dict[str, Any], workload: dict[str, Any]) -> str:
    """esg's rate as a share of the bare protocol's for the same requests, or "n/a"."""
    ceiling = results["ceiling"].get(workload.get("ceiling") or "")
    if not ceiling:
        return "n/a"
    return f"{100 * workload['servers']['esg']['median_rps'] / ceiling:.0f}%"


def _extras(results: dict[str, Any], servers: list[str]) -> list[str]:
    ceiling = results["ceiling"]
    lines = [
        "",
        "Load generator ceiling (a bare uvloop protocol that answers without parsing; "
        "GET workloads share plaintext's): "
        + ", ".join(
            f"{name} {_fmt(rps)} {'msg/s' if name.startswith('ws') else 'req/s'}"
            for name, rps in ceiling.items()
        )
        + ".",
    ]
    latency = results.get("latency")
    if latency:
        lines += [
            "",
            f"Latency at a fixed {latency['rate']:,.0f} req/s (50% of uvicorn's "
            "plaintext maximum), hey -c 32:",
            "",
            "| server | p50 ms | p99 ms | achieved req/s |",
            "|---|---|---|---|",
        ]
        for s in servers:
            found = latency[s]
            lines.append(
                f"| {s} | {found['p50_ms']:.2f} | {found['p99_ms']:.2f} | "
                f"{_fmt(found['achieved_rps'])} |"
            )
    memory = results.get("memory_per_idle_connection")
    if memory:
        lines += [
            "",
            "Memory per idle keep-alive connection (RSS growth / connections): "
            + ", ".join(f"{s} {memory[s] / 1024:.1f} KiB" for s in servers if s in memory)
            + ".",
        ]
    cost = results.get("feature_cost")
    if cost:
        base = cost["median_rps"]["esg"]
        lines += ["", f"Cost of features on plaintext GET (esg alone: {_fmt(base)} req/s):", ""]
        lines += ["| esg with | req/s | throughput vs esg alone |", "|---|---|---|"]
        labels = {"esg+metrics": "--metrics", "esg+access_log": "the access log (to /dev/null)"}
        for name, ratio in cost["median_ratio_to_esg"].items():
            lines.append(
                f"| {labels.get(name, name)} | {_fmt(cost['median_rps'][name])} | "
                f"{ratio * 100:.1f}% |"
            )
    return lines + _static_file(results)


def _static_file(results: dict[str, Any]) -> list[str]:
    static = results.get("static_file")
    if not static:
        return []
    lines = [
        "",
        "1 MiB static file, Starlette FileResponse unmodified (esg-no-pathsend: esg with "
        "ESG_NO_PATHSEND=1, so Starlette reads the file itself):",
        "",
        "| server | req/s (MiB/s) | CPU µs per MiB | esg's throughput / this |",
        "|---|---|---|---|",
    ]
    for name, data in static["servers"].items():
        ratio = static["median_ratio"].get(name)
        lines.append(
            f"| {name} | {_fmt(data['median_rps'])} | {data['cpu_us_per_request']:.0f} | "
            f"{f'{ratio:.2f}x' if ratio else ''} |"
        )
    return lines


def write_reports(results: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "latest.md").write_text(markdown(results))
    if not results["workloads"]:
        return  # (--only static_file: no chart)
    subprocess.run(
        [
            str(PEERS_VENV / "bin" / "python"),
            str(BENCH_DIR / "chart.py"),
            str(directory / "latest.json"),
            str(directory / "latest.png"),
        ],
        check=True,
    )
