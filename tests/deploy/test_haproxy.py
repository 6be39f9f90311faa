"""HAProxy in front of three esg "hosts", configured by examples/haproxy/haproxy.cfg as shipped.

Three esg instances, each ``--workers 2`` on the same port of 127.0.0.2, 127.0.0.3 and
127.0.0.4 (loopback addresses standing for three machines), behind one HAProxy.  Under load
from ``wrk`` (keep-alive, a few seconds, loopback only):

* ``test_sighup_rolling_restart``: host1's supervisor gets SIGHUP and replaces both workers;
* ``test_sigterm_and_start_again``: host2 stops gracefully, HAProxy marks it down, it starts
  again and HAProxy sends it requests again;
* ``test_sigkill_host``: host3 (supervisor and workers) is killed at once, then started again.

Failed requests are what the client saw: non-2xx responses plus wrk's socket errors.  The
graceful cases must fail none; the kill fails at most the requests host3 had in progress.
Every test waits until all three hosts are up before it starts and leaves them up.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from proxies import (
    Esg,
    HAProxy,
    esg_app_args,
    port_free_on,
    require_program,
    run_haproxy,
    scratch_dir,
)
from test_e2e_workers import worker_pids
from utils import wait_for

pytestmark = pytest.mark.slow

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
WORKERS = 2
CONNECTIONS = 8  # wrk's connections: at most this many requests are in flight at once
LOAD_SECONDS = 6  # long enough to cover each event below with room to spare
WAIT = 20.0  # seconds any one event may take (a restart, a health check turning)


@dataclass
class Cluster:
    haproxy: HAProxy
    hosts: list[Esg]

    def wait_all_up(self) -> None:
        names = [f"host{n}" for n in range(1, len(self.hosts) + 1)]
        assert wait_for(
            lambda: all(self.haproxy.server_status(name) == "UP" for name in names), WAIT
        ), {name: self.haproxy.server_status(name) for name in names}

    def served_by(self, server: str) -> int:
        return int(self.haproxy.stats()[f"esg/{server}"]["stot"])

    def frontend_requests(self) -> int:
        return int(self.haproxy.stats()["www/FRONTEND"]["req_tot"])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_program("wrk")
    if os.environ.get("ESG_NO_EXTENSIONS", "") not in ("", "0") and not os.environ.get(
        "ESG_DEPLOY_LOAD_PURE"
    ):
        pytest.skip(
            "load tests run once, on the compiled build (ESG_DEPLOY_LOAD_PURE=1 runs them here)"
        )
    port = port_free_on(*HOSTS)
    with scratch_dir("esg-haproxy-") as tmp, ExitStack() as stack:
        hosts = []
        for number, host in enumerate(HOSTS, 1):
            # The example's command line for each host (examples/haproxy/haproxy.cfg).
            args = [*esg_app_args(), "--host", host, "--port", str(port)]
            args += ["--workers", str(WORKERS), "--forwarded-allow-ips", "127.0.0.1"]
            esg = Esg(args, tmp / f"host{number}.log", (host, port))
            stack.callback(esg.stop)
            esg.start()
            hosts.append(esg)
        haproxy = stack.enter_context(run_haproxy(tmp, [f"{host}:{port}" for host in HOSTS]))
        cluster = Cluster(haproxy, hosts)
        cluster.wait_all_up()
        yield cluster


@dataclass
class LoadResult:
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]
    output: str

    @property
    def failed(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


class Load:
    """wrk against HAProxy for LOAD_SECONDS; ``result()`` waits for it and parses its report."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        wrk = require_program("wrk")
        command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{LOAD_SECONDS}s", "--timeout", "10s"]
        self.proc = subprocess.Popen(
            [*command, f"{cluster.haproxy.url}/"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.stats_before = cluster.haproxy.stats()
        start = cluster.frontend_requests()
        # The event starts only once requests flow through every host.
        flowing = wait_for(lambda: cluster.frontend_requests() >= start + 300, WAIT)
        assert flowing, "no load reached HAProxy"

    def still_running(self) -> bool:
        return self.proc.poll() is None

    def result(self) -> LoadResult:
        output, _ = self.proc.communicate(timeout=LOAD_SECONDS + WAIT)
        assert self.proc.returncode == 0, output
        match = re.search(r"(\d+) requests in", output)
        assert match, output
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
        )
        socket_errors = dict.fromkeys(["connect", "read", "write", "timeout"], 0)
        if errors:
            socket_errors = dict(zip(socket_errors, map(int, errors.groups()), strict=True))
        return LoadResult(
            int(match.group(1)), int(non_2xx.group(1)) if non_2xx else 0, socket_errors, output
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=WAIT)


@pytest.fixture
def load(cluster: Cluster) -> Iterator[Load]:
    cluster.wait_all_up()
    running = Load(cluster)
    try:
        yield running
    finally:
        running.stop()


def report(cluster: Cluster, load: Load, result: LoadResult, name: str) -> str:
    """One line with what wrk saw and what HAProxy counted during this load (its counters
    are cumulative: the differences since the load started)."""
    before, after = load.stats_before, cluster.haproxy.stats()

    def delta(row: str, field: str) -> int:
        return int(after[row][field] or 0) - int(before[row][field] or 0)

    line = (
        f"{result.requests} requests, {result.failed} failed (non-2xx {result.non_2xx}, "
        f"socket errors {result.socket_errors}); HAProxy: "
        f"retries {delta('esg/BACKEND', 'wretr')}, "
        f"redispatches {delta('esg/BACKEND', 'wredis')}, "
        f"{name} connection errors {delta(f'esg/{name}', 'econ')}, "
        f"response errors {delta(f'esg/{name}', 'eresp')}"
    )
    print(line)  # shown with -s or -rA: the counts behind the assertion
    return line


def test_sighup_rolling_restart(cluster: Cluster, load: Load) -> None:
    """SIGHUP: esg replaces its workers one by one on the socket it keeps open; HAProxy's
    pooled connections to the old workers are closed after a `connection: close` answer.
    No request fails, and no retry is needed for that."""
    host = cluster.hosts[0]
    old = worker_pids(host.pid)
    assert len(old) == WORKERS
    host.signal(signal.SIGHUP)

    def replaced() -> bool:
        now = worker_pids(host.pid)
        return len(now) == WORKERS and not now & old

    assert wait_for(replaced, WAIT), host.output()[-3000:]
    assert host.output().count("replaces worker") >= WORKERS
    assert load.still_running(), "the load ended before the restart did: raise LOAD_SECONDS"
    result = load.result()
    line = report(cluster, load, result, "host1")
    assert result.requests > 0
    assert result.failed == 0, line + "\n" + result.output


def test_sigterm_and_start_again(cluster: Cluster, load: Load) -> None:
    """SIGTERM: esg stops accepting, finishes its requests and exits 0; HAProxy retries what
    it sent there meanwhile on another host and its health check marks the host down.  Started
    again, the host is marked up and serves again.  No request fails."""
    host = cluster.hosts[1]
    host.signal(signal.SIGTERM)
    assert host.wait() == 0
    assert wait_for(lambda: cluster.haproxy.server_status("host2").startswith("DOWN"), WAIT)
    host.start()
    assert wait_for(lambda: cluster.haproxy.server_status("host2") == "UP", WAIT)
    served = cluster.served_by("host2")
    assert wait_for(lambda: cluster.served_by("host2") > served + 50, WAIT), "host2 got no load"
    assert load.still_running(), "the load ended before host2 was back: raise LOAD_SECONDS"
    result = load.result()
    line = report(cluster, load, result, "host2")
    assert result.requests > 0
    assert result.failed == 0, line + "\n" + result.output


def test_sigkill_host(cluster: Cluster, load: Load) -> None:
    """SIGKILL to host3's supervisor and workers at once (a machine that dies): requests it
    had in progress are lost, except that HAProxy retries those that got no byte back; new
    requests are retried elsewhere until the health check marks host3 down."""
    host = cluster.hosts[2]
    host.kill_all()
    assert wait_for(lambda: cluster.haproxy.server_status("host3").startswith("DOWN"), WAIT)
    assert load.still_running(), "the load ended before host3 was marked down"
    result = load.result()
    line = report(cluster, load, result, "host3")
    # The bound: wrk keeps at most CONNECTIONS requests in flight (one per connection, no
    # pipelining), so at most that many were in progress on host3 when it died.  Only those
    # can fail: every request sent to host3 afterwards fails to connect and is retried on
    # another host (conn-failure, redispatch), up to `retries` times, and two hosts are up.
    assert result.failed <= CONNECTIONS, line + "\n" + result.output
    host.start()  # back for the other tests
    cluster.wait_all_up()
