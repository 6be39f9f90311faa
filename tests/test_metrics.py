"""``--metrics``: the numbers, their text format, and the listener, with real processes.

The exposition text is checked with prometheus_client's own parser, and a real Prometheus
server (Debian's ``prometheus``) scrapes esg with ``--workers 2``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_e2e_workers import all_serving, worker_pids
from utils import ServerProcess, free_port, run_server, run_to_exit, wait_for

from esg import metrics

PROMETHEUS = shutil.which("prometheus")
REQUIRE_PROMETHEUS = os.environ.get("ESG_REQUIRE_PROMETHEUS", "") not in ("", "0")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, by name and sorted labels (the parser validates)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


# -- the numbers and their text, in one process ---------------------------------------------


def test_render_parses_and_holds_what_was_recorded() -> None:
    recorder = metrics.Metrics()
    recorder.response_done("GET", 200, 0.0004)
    recorder.response_done("GET", 404, 0.003)
    recorder.response_done("BREW", 503, 7.0)  # unknown methods count as OTHER
    recorder.rejected_with(431)
    recorder.rejected_with(400, "Conflicting Content-Length values")
    recorder.rejected_with(299)  # not a reason esg rejects for: ignored
    recorder.timed_out("header")
    recorder.connections_open = 3
    text = metrics.render(recorder.snapshot()).decode()
    assert value(text, "esg_requests_total", method="GET", status="2xx") == 1
    assert value(text, "esg_requests_total", method="GET", status="4xx") == 1
    assert value(text, "esg_requests_total", method="OTHER", status="5xx") == 1
    assert value(text, "esg_rejected_requests_total", reason="header_too_large") == 1
    assert value(text, "esg_rejected_requests_total", reason="bad_framing") == 1
    assert value(text, "esg_timeouts_total", kind="header") == 1
    assert value(text, "esg_connections_open") == 3
    assert value(text, "esg_request_duration_seconds_bucket", le="0.0005") == 1
    assert value(text, "esg_request_duration_seconds_bucket", le="0.005") == 2
    assert value(text, "esg_request_duration_seconds_bucket", le="+Inf") == 3
    assert value(text, "esg_request_duration_seconds_count") == 3
    assert value(text, "esg_request_duration_seconds_sum") == pytest.approx(7.0034)


def test_every_400_of_the_parser_has_a_kind() -> None:
    """Each ParseError(400, ...) reason in esg's sources lands in a kind, not the catch-all."""
    sources = [
        Path(metrics.__file__).parent / "http" / name
        for name in ("parser.py", "headscan.py", "_headscan_c.pyx")
    ]
    reasons = set()
    for source in sources:
        reasons |= set(re.findall(r'ParseError\(400, "([^"]+)"', source.read_text()))
    assert len(reasons) > 20
    unclassified = {r for r in reasons if metrics.parse_error_kind(r) == "bad_request"}
    assert unclassified == set()
    assert metrics.parse_error_kind("Both Content-Length and Transfer-Encoding") == "bad_framing"
    assert metrics.parse_error_kind("Bare CR or LF in trailers") == "bad_line_ending"
    assert metrics.parse_error_kind("Invalid trailer field") == "bad_chunked_body"
    assert metrics.parse_error_kind("Invalid request target") == "bad_request_line"
    assert metrics.parse_error_kind("Obsolete line folding is not allowed") == "bad_header"


def test_workers_add_up_and_a_dead_worker_keeps_its_counters_not_its_gauges() -> None:
    first, second = metrics.Metrics(), metrics.Metrics()
    first.response_done("POST", 201, 0.01)
    first.connections_open = 2
    second.response_done("POST", 201, 0.01)
    second.connections_open = 5
    total = metrics.empty()
    metrics.add(total, metrics.without_gauges(first.snapshot()))  # gone
    metrics.add(total, second.snapshot())  # still serving
    text = metrics.render(total).decode()
    assert value(text, "esg_requests_total", method="POST", status="2xx") == 2
    assert value(text, "esg_connections_open") == 5


def test_a_slot_carries_a_snapshot_across_processes() -> None:
    slot = metrics.new_slot()
    recorder = metrics.Metrics()
    recorder.slot = slot
    recorder.sent_bytes = 12345
    pid = os.fork()
    if pid == 0:  # the child publishes, as a worker does each second
        recorder.received_bytes = 678
        recorder.publish()
        os._exit(0)
    os.waitpid(pid, 0)
    text = metrics.render(metrics.read_slot(slot)).decode()
    assert value(text, "esg_sent_bytes_total") == 12345
    assert value(text, "esg_received_bytes_total") == 678


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n", b"200"),
        (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"200"),
        (b"GET / HTTP/1.1\r\n\r\n", b"404"),
        (b"POST /metrics HTTP/1.1\r\n\r\n", b"405"),
        (b"garbage\r\n\r\n", b"400"),
    ],
)
def test_the_listener_answers(head: bytes, status: bytes) -> None:
    response = metrics.answer(head, b"body\n")
    assert response.startswith(b"HTTP/1.1 " + status)
    assert b"connection: close\r\n" in response


def test_head_gets_no_body() -> None:
    response = metrics.answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", b"body\n")
    assert response.endswith(b"\r\n\r\n") and b"content-length: 5\r\n" in response


# -- a real server ----------------------------------------------------------------------------


def scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == metrics.CONTENT_TYPE.decode()
    return response.text


@pytest.fixture
def metrics_port() -> int:
    return free_port()


def test_one_process_counts_requests_rejections_and_connections(metrics_port: int) -> None:
    options = ("--metrics", "--metrics-port", str(metrics_port), "--limit-request-body", "10")
    with run_server("apps.basic:app", *options) as server:
        with httpx.Client(base_url=server.url) as client:
            for _ in range(5):
                assert client.get("/").status_code == 200
            assert client.get("/missing").status_code == 404
            assert client.post("/echo", content=b"x" * 100).status_code == 413
        with server.raw() as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            assert conn.read_response().status == 400
        # The app's port never serves the metrics: /metrics there is the app's business.
        assert httpx.get(f"{server.url}/metrics").text == "no such route: /metrics"
        assert wait_for(lambda: value(scrape(metrics_port), "esg_connections_open") == 0)
        text = scrape(metrics_port)
    assert value(text, "esg_requests_total", method="GET", status="2xx") == 5
    assert value(text, "esg_requests_total", method="GET", status="4xx") == 2  # + /metrics
    assert value(text, "esg_rejected_requests_total", reason="body_too_large") == 1
    assert value(text, "esg_rejected_requests_total", reason="bad_header") == 1  # two Hosts
    assert value(text, "esg_keepalive_requests_total") >= 5
    # The client, the raw connection, /metrics on the app port and run_server's first probe.
    accepted = value(text, "esg_connections_accepted_total")
    assert accepted >= 4
    assert value(text, "esg_connections_closed_total") == accepted
    assert value(text, "esg_requests_in_flight") == 0
    assert value(text, "esg_received_bytes_total") > 0 and value(text, "esg_sent_bytes_total") > 0


def test_a_metrics_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_to_exit(
            "apps.basic:app", "--port", str(free_port()), "--metrics", "--metrics-port", str(port)
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [
        f"ERROR:    Could not serve metrics on 127.0.0.1:{port}: address already in use"
    ]


@pytest.fixture
def metered_workers(metrics_port: int) -> Iterator[ServerProcess]:
    options = ("--workers", "2", "--metrics", "--metrics-port", str(metrics_port))
    with run_server("apps.workers:app", *options) as server:
        assert wait_for(lambda: all_serving(server, 2))
        yield server


def test_workers_are_added_up_and_survive_a_worker_death(
    metered_workers: ServerProcess, metrics_port: int
) -> None:
    for _ in range(40):
        httpx.get(f"{metered_workers.url}/pid", headers={"connection": "close"})

    def requests_counted() -> float:
        return value(scrape(metrics_port), "esg_requests_total", method="GET", status="2xx")

    assert wait_for(lambda: requests_counted() == 40, timeout=10)
    victim = min(worker_pids(metered_workers.proc.pid))
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: "starting a new one" in metered_workers.stderr())
    text = scrape(metrics_port)
    # What a killed worker published before it died stays counted (published once a second,
    # so at most its last second is lost; here every request is older than that).
    assert value(text, "esg_requests_total", method="GET", status="2xx") == 40
    assert value(text, "esg_worker_restarts_total", cause="died") == 1
    assert wait_for(lambda: value(scrape(metrics_port), "esg_workers") == 2, timeout=20)


# -- Prometheus itself --------------------------------------------------------------------------


def prometheus_query(port: int, query: str) -> float | None:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.load(response)
    except OSError:
        return None
    result = data.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_workers(metered_workers: ServerProcess, metrics_port: int) -> None:
    if PROMETHEUS is None:
        if REQUIRE_PROMETHEUS:
            pytest.fail("prometheus is not installed (apt-get install prometheus)")
        pytest.skip("no prometheus binary (apt-get install prometheus)")
    for _ in range(25):
        httpx.get(f"{metered_workers.url}/pid", headers={"connection": "close"})
    web_port = free_port()
    with tempfile.TemporaryDirectory(prefix="esg-prometheus-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: esg\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{metrics_port}']\n"
        )
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={Path(tmp) / 'data'}",
                f"--web.listen-address=127.0.0.1:{web_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            query = 'sum(esg_requests_total{method="GET",status="2xx"})'
            deadline = time.monotonic() + 60
            seen = None
            while time.monotonic() < deadline and seen != 25:
                seen = prometheus_query(web_port, query)
                time.sleep(0.5)
            assert seen == 25
            assert prometheus_query(web_port, "esg_workers") == 2
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
