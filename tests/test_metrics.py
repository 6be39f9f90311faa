"""``--metrics``: the numbers, their text format, and the listener, with real processes.

The exposition text is checked with prometheus_client's own parser, and a real Prometheus
server (Debian's ``prometheus``) scrapes esg with ``--workers 2``.
"""

from __future__ import annotations

import asyncio
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
from typing import Any

import fake_transport as fake
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_e2e_workers import all_serving, worker_pids
from utils import ServerProcess, free_port, run_server, run_to_exit, wait_for

from esg import metrics
from esg.state import ServerState

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
    recorder.rejected_with("header_too_large")
    recorder.rejected_with("bad_framing")
    recorder.rejected_with(None)  # an answer the metrics have no label for: ignored
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


# A refusal as its raise site writes it: the class, then a literal status, reason and kind.
REFUSAL = re.compile(r'\b(ParseError|HandshakeError)\(\s*(\d+),\s*"([^"]+)",\s*(None|"\w+")')
REFUSAL_CALL = re.compile(r"(?<!class )\b(?:ParseError|HandshakeError)\(")


def refusals() -> list[tuple[str, int, str, str | None]]:
    """(class, status, reason, kind) of every ParseError and HandshakeError in esg's sources."""
    package = Path(metrics.__file__).parent
    found = []
    for source in sorted([*package.rglob("*.py"), *package.rglob("*.pyx")]):
        text = source.read_text()
        sites = REFUSAL.findall(text)
        assert len(sites) == len(REFUSAL_CALL.findall(text)), (
            f"{source.name}: every refusal states its status, reason and kind as literals"
        )
        for name, status, reason, kind in sites:
            found.append((name, int(status), reason, None if kind == "None" else kind.strip('"')))
    return found


def test_the_rejection_labels_stay_the_same() -> None:
    # Their order is the layout of a snapshot, which workers and supervisor share.
    assert metrics.REJECT_LABELS == (
        "bad_request_line",
        "bad_header",
        "bad_framing",
        "bad_chunked_body",
        "bad_line_ending",
        "bad_request",
        "header_timeout",
        "body_too_large",
        "request_line_too_long",
        "expectation_failed",
        "header_too_large",
        "not_implemented",
        "limit_concurrency",
        "version_not_supported",
    )


def test_every_refusal_states_a_kind_the_metrics_count() -> None:
    """Each raise site names its kind: a 400 one of the parse error kinds, any other status
    that status's label; a reason has one kind wherever it is raised (so both builds count a
    request alike); a few reasons are pinned to the labels they have always been counted
    under."""
    sites = refusals()
    parse_errors = [site for site in sites if site[0] == "ParseError"]
    assert len(parse_errors) > 60  # parser.py, headscan.py and _headscan_c.pyx
    for _, status, reason, kind in sites:
        if status == 400:
            assert kind in metrics.PARSE_ERROR_KINDS, reason
        elif status in metrics.REJECT_REASONS:
            assert kind == metrics.REJECT_REASONS[status], reason
        else:
            assert kind is None, reason  # the handshake's 426: no label, not counted
    kinds: dict[str, set[str | None]] = {}
    for _, _, reason, kind in sites:
        kinds.setdefault(reason, set()).add(kind)
    assert {reason: found for reason, found in kinds.items() if len(found) > 1} == {}
    assert {kind for name, status, _, kind in sites if status == 400 and name == "ParseError"} == (
        set(metrics.PARSE_ERROR_KINDS) - {"bad_request"}
    )
    assert kinds["Both Content-Length and Transfer-Encoding"] == {"bad_framing"}
    assert kinds["Bare CR or LF in trailers"] == {"bad_line_ending"}
    assert kinds["Invalid trailer field"] == {"bad_chunked_body"}
    assert kinds["Invalid request target"] == {"bad_request_line"}
    assert kinds["Obsolete line folding is not allowed"] == {"bad_header"}
    assert kinds["Invalid Sec-WebSocket-Key"] == {"bad_request"}


async def reading_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the body before answering, so that an error in it is answered by esg."""
    message = await receive()
    if message["type"] == "http.request":
        await fake.respond(send, b"ok")


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "bad_framing",
        ),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", "bad_line_ending"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "bad_header"),
        (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", "bad_request_line"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\n",
            "bad_chunked_body",
        ),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "version_not_supported"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: dance\r\n\r\n", "expectation_failed"),
        (fake.upgrade_request(key="c2hvcnQ="), "bad_request"),  # a key of 5 bytes, not 16
    ],
)
def test_a_connection_counts_a_refusal_under_its_kind(build: Any, data: bytes, label: str) -> None:
    async def scenario() -> list[int]:
        state = ServerState()
        state.metrics = build.module("esg.metrics").Metrics()
        conn = fake.connect(build, reading_app, state=state)
        conn.feed(data)
        await conn.response()
        return list(state.metrics.rejected)

    counts = fake.run(scenario())
    assert counts == [int(name == label) for name in metrics.REJECT_LABELS]


def test_a_connection_counts_its_own_408_and_503_and_not_a_426(build: Any) -> None:
    async def scenario() -> list[int]:
        state = ServerState()
        state.metrics = build.module("esg.metrics").Metrics()
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await go.wait()
            await fake.respond(send, b"ok")

        busy = fake.connect(build, app, state=state, limit_concurrency=1)
        busy.feed(fake.request())
        await busy.settle()
        refused = fake.connect(build, app, state=state, limit_concurrency=1)
        refused.feed(fake.request())
        assert (await refused.response()).status == 503
        go.set()
        await busy.response()
        slow = fake.connect(build, app, state=state)
        slow.feed(b"GET / HTTP/1.1\r\nHost: a")
        slow.protocol.check_deadlines(state.now + 31)
        assert (await slow.response()).status == 408
        old = fake.connect(build, app, state=state)
        old.feed(fake.upgrade_request(ws_version="12"))
        assert (await old.response()).status == 426
        return list(state.metrics.rejected)

    counts = fake.run(scenario())
    expected = {"limit_concurrency": 1, "header_timeout": 1}
    assert counts == [expected.get(name, 0) for name in metrics.REJECT_LABELS]


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


# -- HTTP/2's defences ------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
PING_FRAME = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"


def test_the_http2_defence_reasons_are_the_codecs_counters() -> None:
    from esg.http2.connection import COUNTERS

    assert set(metrics.HTTP2_DEFENCES) <= set(COUNTERS)
    assert len(set(metrics.HTTP2_DEFENCES)) == len(metrics.HTTP2_DEFENCES)


def test_an_http2_flood_counts_under_its_reason(build: Any) -> None:
    async def scenario() -> list[int]:
        state = ServerState()
        state.metrics = build.module("esg.metrics").Metrics()
        conn = fake.connect(build, fake.make_app(), state=state)
        conn.feed(PREFACE + PING_FRAME * 1500)  # beyond the burst of 1000 control frames
        await conn.closed()
        return list(state.metrics.http2_defences)

    counts = fake.run(scenario())
    assert counts == [int(reason == "ping_flood") for reason in metrics.HTTP2_DEFENCES]


def test_an_http2_connection_counts_its_refused_streams_when_it_ends(build: Any) -> None:
    async def scenario() -> list[int]:
        state = ServerState()
        state.metrics = build.module("esg.metrics").Metrics()
        conn = fake.connect(build, fake.make_app(), state=state)
        # A request whose header list breaks section 8.2.2 (connection: close), on stream 1.
        block = b"\x82\x86\x84\x41\x01a" + b"\x00\x0aconnection\x05close"
        headers = len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block
        conn.feed(PREFACE + headers)
        await conn.settle()
        assert list(state.metrics.http2_defences) == [0] * len(metrics.HTTP2_DEFENCES)
        conn.transport.peer_reset()  # counted as the connection ends
        await conn.closed()
        return list(state.metrics.http2_defences)

    counts = dict(zip(metrics.HTTP2_DEFENCES, fake.run(scenario()), strict=True))
    assert {reason: count for reason, count in counts.items() if count} == {
        "malformed_requests": 1,
        "stream_errors": 1,
    }


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


@pytest.mark.parametrize(
    ("flood", "reason"),
    [
        (PING_FRAME * 1500, "ping_flood"),
        # HEADERS without END_HEADERS, then empty CONTINUATIONs without end (CVE-2024-27316).
        (
            b"\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82"
            + b"\x00\x00\x00\x09\x00\x00\x00\x00\x01" * 200,
            "continuation_flood",
        ),
        # Rapid Reset (CVE-2023-44487): HEADERS and RST_STREAM, over and over.
        (
            b"".join(
                b"\x00\x00\x06\x01\x05"
                + sid.to_bytes(4, "big")
                + b"\x82\x86\x84\x01\x01a"
                + b"\x00\x00\x04\x03\x00"
                + sid.to_bytes(4, "big")
                + b"\x00\x00\x00\x08"
                for sid in range(1, 600, 2)
            ),
            "reset_flood",
        ),
    ],
)
def test_an_http2_flood_bumps_its_counter_on_the_listener(
    metrics_port: int, flood: bytes, reason: str
) -> None:
    options = ("--metrics", "--metrics-port", str(metrics_port), "--no-access-log")
    with run_server("apps.basic:app", *options) as server:
        with server.raw() as conn:
            conn.send(PREFACE + flood)
            ended = conn.read_to_close()
        assert ended.endswith(b"\x00\x00\x00\x0b")  # GOAWAY ENHANCE_YOUR_CALM, then close
        name = "esg_http2_defences_total"
        assert wait_for(lambda: value(scrape(metrics_port), name, reason=reason) == 1)
        text = scrape(metrics_port)
    others = {r: value(text, name, reason=r) for r in metrics.HTTP2_DEFENCES if r != reason}
    assert set(others.values()) == {0}


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
