"""What a load balancer or an orchestrator should probe, and what each probe proves.

* **Readiness / load-balancer check: the app's own route** (``GET /health`` of
  examples/deploy_app.py) on the app's port.  It answers only when a worker accepts, the app
  runs and its lifespan startup completed; HAProxy's ``option httpchk`` in
  examples/haproxy/haproxy.cfg probes exactly this (tests/deploy/test_haproxy.py watches it
  turn a stopped host down and a restarted one up).
* **Liveness of the supervisor: esg's ``--metrics`` listener**, a port of its own served by the
  supervisor.  It has no health endpoint, only ``/metrics`` (anything else is 404); its
  ``esg_workers`` gauge says how many workers serve.  It answers while the supervisor runs
  even when no worker does, so it is a liveness probe, never a readiness one.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from proxies import Esg, esg_app_args, port_free_on, scratch_dir
from test_e2e_workers import worker_pids
from utils import wait_for

pytestmark = pytest.mark.slow

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def esg() -> Iterator[tuple[Esg, str, str]]:
    port, metrics_port = port_free_on("127.0.0.1"), port_free_on("127.0.0.1")
    with scratch_dir("esg-health-") as tmp:
        args = [*esg_app_args(), "--port", str(port), "--workers", "2"]
        args += ["--metrics", "--metrics-port", str(metrics_port)]
        server = Esg(args, tmp / "esg.log", ("127.0.0.1", port))
        server.start()
        try:
            yield server, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
        finally:
            server.stop()


def serving_workers(metrics_url: str) -> int:
    text = httpx.get(f"{metrics_url}/metrics", timeout=TIMEOUT).text
    match = re.search(r"^esg_workers (\d+)$", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


def test_health_route_on_the_app_port(esg: tuple[Esg, str, str]) -> None:
    _, app_url, _ = esg
    response = httpx.get(f"{app_url}/health", timeout=TIMEOUT)
    assert (response.status_code, response.text) == (200, "ok\n")
    assert response.headers["cache-control"] == "no-store"


def test_metrics_listener_is_the_supervisors_liveness(esg: tuple[Esg, str, str]) -> None:
    server, _, metrics_url = esg
    # The workers publish their numbers once a second: wait until both have.
    assert wait_for(lambda: serving_workers(metrics_url) == 2, TIMEOUT)
    # No health endpoint of its own on the metrics port, and never the app's routes.
    assert httpx.get(f"{metrics_url}/health", timeout=TIMEOUT).status_code == 404
    # A worker that dies is counted out, then replaced: the gauge follows.
    victim = min(worker_pids(server.pid))
    server_pids_before = worker_pids(server.pid)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(
        lambda: victim not in worker_pids(server.pid) and len(worker_pids(server.pid)) == 2,
        TIMEOUT,
    ), server.output()[-2000:]
    assert worker_pids(server.pid) != server_pids_before
    assert wait_for(lambda: serving_workers(metrics_url) == 2, TIMEOUT)
    restarts = httpx.get(f"{metrics_url}/metrics", timeout=TIMEOUT).text
    assert 'esg_worker_restarts_total{cause="died"} 1' in restarts
