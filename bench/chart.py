"""Draw latest.png from latest.json: throughput per workload, and esg's ratio to each peer.

Run with the peers' virtualenv (it has matplotlib): ``chart.py latest.json latest.png``.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"esg": "#d62728", "uvicorn": "#1f77b4", "granian": "#2ca02c", "hypercorn": "#9467bd"}


def main(source: str, target: str) -> None:
    with open(source) as file:
        results = json.load(file)
    workloads = results["workloads"]
    if not workloads:
        return  # only the HTTP/2 section ran (--only h2_...): no HTTP/1.1 chart to draw
    labels = [w["label"] for w in workloads.values()]
    servers = list(next(iter(workloads.values()))["servers"])
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8.5), height_ratios=[3, 2])
    width = 0.8 / len(servers)
    for index, server in enumerate(servers):
        values = [w["servers"][server]["median_rps"] for w in workloads.values()]
        xs = [i + (index - (len(servers) - 1) / 2) * width for i in range(len(labels))]
        bars = top.bar(xs, values, width, label=server, color=COLORS.get(server, "grey"))
        top.bar_label(bars, labels=[f"{v / 1000:.0f}k" for v in values], fontsize=7)
    ceiling = results["ceiling"].get("plaintext")
    if ceiling:
        top.axhline(ceiling, color="black", linestyle=":", linewidth=1)
        top.text(
            len(labels) - 0.5,
            ceiling,
            " load generator ceiling (plaintext)",
            va="bottom",
            ha="right",
            fontsize=8,
        )
    top.set_xticks(range(len(labels)), labels, fontsize=9)
    top.set_ylabel("requests per second (median)")
    top.set_title(f"esg vs peers, one worker, {results['meta']['date']}")
    top.legend()
    peers = [s for s in servers if s != "esg"]
    for index, peer in enumerate(peers):
        values = [w["median_ratio"][peer] for w in workloads.values()]
        xs = [i + (index - (len(peers) - 1) / 2) * (0.8 / len(peers)) for i in range(len(labels))]
        bars = bottom.bar(
            xs, values, 0.8 / len(peers), label=f"esg / {peer}", color=COLORS.get(peer, "grey")
        )
        bottom.bar_label(bars, labels=[f"{v:.1f}x" for v in values], fontsize=7)
    targets = [w["target_vs_uvicorn"] for w in workloads.values()]
    for i, goal in enumerate(targets):
        if goal:
            bottom.hlines(goal, i - 0.45, i + 0.45, color="black", linestyle="--", linewidth=1)
    bottom.axhline(1.0, color="grey", linewidth=0.8)
    bottom.set_yscale("log")
    bottom.set_xticks(range(len(labels)), labels, fontsize=9)
    bottom.set_ylabel("esg / peer (dashes: target vs uvicorn)")
    bottom.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
