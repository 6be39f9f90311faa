"""``--workers N``: the supervisor with real processes, over loopback, bounded in time."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from utils import (
    TESTS_DIR,
    ServerProcess,
    esg_command,
    free_port,
    run_server,
    run_to_exit,
    subprocess_env,
    wait_for,
)

pytestmark = pytest.mark.slow

AB = shutil.which("ab")
needs_ab = pytest.mark.skipif(AB is None, reason="needs ab (apache2-utils)")


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's live child processes, from /proc."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    try:
        return {int(pid) for pid in children.read_text().split()}
    except FileNotFoundError:
        return set()


def all_serving(server: ServerProcess, workers: int) -> bool:
    """Every worker has finished its startup (not only been forked)."""
    return server.stderr().count("esg running on") >= workers


def pid_from(server: ServerProcess) -> int:
    # A new connection each time, so the kernel hands it to any worker.
    response = httpx.get(f"{server.url}/pid", headers={"connection": "close"}, timeout=10)
    assert response.status_code == 200
    return int(response.text)


def serving_pids(server: ServerProcess, expected: int, attempts: int = 400) -> set[int]:
    """Pids seen answering, until ``expected`` different ones did (bounded)."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(pid_from(server))
        if len(seen) >= expected:
            break
    return seen


def run_ab(server: ServerProcess, *args: str) -> subprocess.Popen[str]:
    assert AB is not None
    return subprocess.Popen(
        [AB, "-q", "-r", *args, f"{server.url}/pid"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ab_result(proc: subprocess.Popen[str]) -> tuple[int, int, str]:
    """(complete, failed, output) of a finished ab run."""
    output, _ = proc.communicate(timeout=120)
    complete = re.search(r"Complete requests:\s+(\d+)", output)
    failed = re.search(r"Failed requests:\s+(\d+)", output)
    assert complete and failed, output
    return int(complete.group(1)), int(failed.group(1)), output


@pytest.fixture
def marker_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "markers"
    directory.mkdir()
    return directory


@pytest.fixture
def two_workers(marker_dir: Path) -> Iterator[ServerProcess]:
    env = {"ESG_TEST_MARKER_DIR": str(marker_dir)}
    with run_server("apps.workers:app", "--workers", "2", env=env) as server:
        assert wait_for(lambda: all_serving(server, 2))
        yield server


# -- the basics ----------------------------------------------------------------------------


def test_workers_share_the_socket_and_log_with_their_pid(two_workers: ServerProcess) -> None:
    pids = worker_pids(two_workers.proc.pid)
    assert serving_pids(two_workers, 2) == pids
    stderr = two_workers.stderr()
    supervisor = two_workers.proc.pid
    assert f"[{supervisor}] Started supervisor process [{supervisor}] for 2 workers" in stderr
    for pid in pids:
        assert f"[{supervisor}] Started worker process [{pid}]" in stderr
        assert f"[{pid}] Application startup complete." in stderr


def test_sigterm_stops_every_worker_with_its_lifespan_shutdown(
    two_workers: ServerProcess, marker_dir: Path
) -> None:
    pids = worker_pids(two_workers.proc.pid)
    two_workers.signal(signal.SIGTERM)
    assert two_workers.wait(20) == 0, two_workers.stderr()
    assert {int(name) for name in os.listdir(marker_dir)} == pids
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    assert "Traceback" not in two_workers.stderr()


def test_sigterm_refuses_new_connections_while_the_workers_drain(
    two_workers: ServerProcess, marker_dir: Path
) -> None:
    # A load balancer retries a refused connection safely; one the kernel accepted into the
    # backlog of a socket nobody will accept from again is reset with its request on it.
    held = two_workers.connect()
    held.sendall(b"GET /hold HTTP/1.1\r\nHost: esg\r\n\r\n")
    assert wait_for(lambda: (marker_dir / "holding").exists())
    two_workers.signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            socket.create_connection((two_workers.host, two_workers.port), timeout=2).close()
        except ConnectionRefusedError:
            return True
        return False

    try:
        assert wait_for(refused), "new connections were still accepted while draining"
    finally:
        (marker_dir / "release").touch()
    assert held.recv(4096).startswith(b"HTTP/1.1 200 ")  # the request in flight finished
    held.close()
    assert two_workers.wait(20) == 0, two_workers.stderr()


def test_a_killed_worker_is_replaced(two_workers: ServerProcess) -> None:
    supervisor = two_workers.proc.pid
    before = worker_pids(supervisor)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(worker_pids(supervisor) - before) == 1, timeout=20)
    after = worker_pids(supervisor)
    assert victim not in after and len(after) == 2
    assert serving_pids(two_workers, 2) == after
    assert f"Worker [{victim}] died (killed by SIGKILL): starting a new one" in (
        two_workers.stderr()
    )


def test_a_worker_with_a_blocked_event_loop_is_replaced() -> None:
    with run_server(
        "apps.workers:app", "--workers", "2", "--timeout-worker-healthcheck", "1"
    ) as server:
        supervisor = server.proc.pid
        assert wait_for(lambda: all_serving(server, 2))
        before = worker_pids(supervisor)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(b"GET /block HTTP/1.1\r\nhost: x\r\n\r\n")
            pattern = r"Worker \[(\d+)\] did not answer the health check within 1 s"
            assert wait_for(lambda: re.search(pattern, server.stderr()), timeout=20)
        match = re.search(pattern, server.stderr())
        assert match is not None
        blocked = int(match.group(1))
        assert blocked in before
        assert wait_for(lambda: len(worker_pids(supervisor) - before) == 1, timeout=20)
        # Replaced at once, so it may be reaped (gone from /proc) a moment later.
        assert wait_for(lambda: blocked not in worker_pids(supervisor), timeout=20)
        assert pid_from(server) in worker_pids(supervisor)


def test_ttin_adds_a_worker_and_ttou_removes_one(two_workers: ServerProcess) -> None:
    supervisor = two_workers.proc.pid
    two_workers.signal(signal.SIGTTIN)
    assert wait_for(lambda: len(worker_pids(supervisor)) == 3, timeout=20)
    assert wait_for(lambda: "Received SIGTTIN: 3 workers wanted" in two_workers.stderr())
    three = worker_pids(supervisor)
    two_workers.signal(signal.SIGTTOU)
    assert wait_for(lambda: len(worker_pids(supervisor)) == 2, timeout=20)
    assert worker_pids(supervisor) < three
    # Never fewer than one.
    two_workers.signal(signal.SIGTTOU)
    assert wait_for(lambda: len(worker_pids(supervisor)) == 1, timeout=20)
    two_workers.signal(signal.SIGTTOU)
    assert wait_for(lambda: two_workers.stderr().count("Received SIGTTOU: 1 workers") == 2)
    assert len(worker_pids(supervisor)) == 1
    assert pid_from(two_workers) in worker_pids(supervisor)


# -- restarts under load -------------------------------------------------------------------


@needs_ab
def test_sighup_replaces_every_worker_while_ab_runs_without_a_failed_request(
    two_workers: ServerProcess,
) -> None:
    supervisor = two_workers.proc.pid
    before = worker_pids(supervisor)
    load = run_ab(two_workers, "-k", "-c", "8", "-t", "8", "-n", "2000000")
    time.sleep(1.0)  # let ab get going (not an assertion: only where the restart starts)
    two_workers.signal(signal.SIGHUP)
    replaced = wait_for(lambda: not (worker_pids(supervisor) & before), timeout=30)
    complete, failed, output = ab_result(load)
    assert replaced, two_workers.stderr()
    assert len(worker_pids(supervisor)) == 2
    assert complete > 0 and failed == 0, output
    assert two_workers.stderr().count("replaces worker") == 2


@needs_ab
@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "close"])
def test_recycling_at_the_request_limit_fails_no_request(keep_alive: bool) -> None:
    options = ("--workers", "2", "--limit-max-requests", "50", "--limit-max-requests-jitter", "10")
    with run_server("apps.workers:app", *options) as server:
        assert wait_for(lambda: all_serving(server, 2))
        load = run_ab(server, *(["-k"] if keep_alive else []), "-c", "4", "-n", "1000")
        complete, failed, output = ab_result(load)
        stderr = server.stderr()
        assert (complete, failed) == (1000, 0), output
        assert stderr.count("reached its request limit") >= 5, stderr
        assert "died" not in stderr and "Traceback" not in stderr


# -- startup failures ----------------------------------------------------------------------


def test_a_lifespan_failure_stops_the_supervisor_with_status_3() -> None:
    port = free_port()
    result = run_to_exit(
        "apps.lifespan_fail:app", "--workers", "2", "--lifespan", "on", "--port", str(port)
    )
    assert result.returncode == 3, result.stderr
    assert "database at db.invalid is unreachable" in result.stderr
    assert "failed to start (exit status 3): stopping" in result.stderr
    assert result.stderr.count("Started worker process") == 2  # no respawn loop


def test_an_import_error_stops_the_supervisor_with_status_1() -> None:
    result = run_to_exit("apps.broken_import:app", "--workers", "2", "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert "failed to start (exit status 1): stopping" in result.stderr
    assert result.stderr.count("Started worker process") == 2


def test_workers_and_reload_cannot_be_combined() -> None:
    result = run_to_exit("apps.workers:app", "--workers", "2", "--reload")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --reload and --workers can't be combined; choose one."
    ]


# -- sockets -------------------------------------------------------------------------------


def test_workers_serve_an_inherited_file_descriptor() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    command = esg_command("apps.workers:app", "--app-dir", str(TESTS_DIR), "--fd", str(fd))
    proc = subprocess.Popen(
        [*command, "--workers", "2"],
        env=subprocess_env(),
        cwd=str(TESTS_DIR),
        pass_fds=(fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        listener.close()  # only the server holds it now
        server = ServerProcess(proc, Path(os.devnull), port, None)
        assert len(serving_pids(server, 2)) == 2
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_on_a_unix_socket_with_its_mode(tmp_path: Path) -> None:
    path = str(tmp_path / "esg.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # a socket file left behind by a server that died
    stale.close()
    with run_server("apps.workers:app", "--workers", "2", "--uds-mode", "600", uds=path) as server:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport, base_url="http://esg") as client:
            pids = {
                int(client.get("/pid", headers={"connection": "close"}).text) for _ in range(50)
            }
        assert pids <= worker_pids(server.proc.pid)
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0
        assert not os.path.exists(path)  # removed at exit


def test_a_unix_socket_in_use_is_not_taken_over(tmp_path: Path) -> None:
    path = str(tmp_path / "esg.sock")
    with run_server("apps.workers:app", uds=path):
        result = run_to_exit("apps.workers:app", "--workers", "2", "--uds", path)
        assert result.returncode == 1
        assert "address already in use (a server is listening)" in result.stderr
        assert stat.S_ISSOCK(os.stat(path).st_mode)  # still there, still the first server's


def test_a_bad_uds_mode_is_a_one_line_error() -> None:
    result = run_to_exit("apps.workers:app", "--uds", "/tmp/x.sock", "--uds-mode", "9x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: Invalid value for '--uds-mode': '9x' is not an octal mode such as 660."
    ]
