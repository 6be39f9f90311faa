"""gunicorn with esg's worker class, ``-k esg.workers.ESGWorker``.

The process tests run the real thing on 127.0.0.1: ``python -m gunicorn`` with the apps of
``tests/apps/gunicorn_apps.py`` (which say which worker answered and leave a marker file per
worker pid).  Reloads and request limits run under load from ``ab -k`` when it is installed,
else from keep-alive httpx clients in threads; not one request may fail.  The other tests check
how gunicorn's settings become esg's, and gunicorn's access log format, without processes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from utils import TESTS_DIR, free_port, subprocess_env, wait_for

pytest.importorskip("gunicorn", reason="gunicorn is not installed (pip install 'esg[gunicorn]')")

from gunicorn.config import Config as GunicornConfig  # noqa: E402
from gunicorn.glogging import SafeAtoms  # noqa: E402

from esg import _compiled  # noqa: E402
from esg.config import Config  # noqa: E402
from esg.workers import (  # noqa: E402
    ESG_HEAD_LIMIT,
    WORKER_BOOT_ERROR,
    AccessLogHandler,
    ESGWorker,
    esg_settings,
)

WORKER = "esg.workers.ESGWorker"
AB = shutil.which("ab")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
# gunicorn >= 25.1 opens a control socket under $HOME unless told not to.
NO_CONTROL_SOCKET = (
    ["--no-control-socket"] if "control_socket_disable" in GunicornConfig().settings else []
)


# -- running gunicorn -------------------------------------------------------------------------


class Gunicorn:
    """A running gunicorn master; its stdout and stderr are collected in files."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, out: Path, err: Path) -> None:
        self.proc = proc
        self.port = port
        self.out = out
        self.err = err

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def booted_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", self.stderr())]

    def exited_pids(self) -> set[int]:
        return {int(pid) for pid in re.findall(r"Worker exiting \(pid: (\d+)\)", self.stderr())}

    def get(self, path: str) -> httpx.Response:
        """A GET on a new connection (so any worker may take it)."""
        return httpx.get(self.url + path, timeout=20)

    def worker_pid(self) -> int:
        return int(self.get("/pid").text)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def wait_ready(self, workers: int) -> None:
        """Until every worker finished its lifespan startup and the port takes connections."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.stderr()}")
            started = self.stderr().count("Application startup complete.")
            if started >= workers and _accepts_connections(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn's workers did not start in time:\n{self.stderr()}")

    def stop(self) -> None:
        """TERM (then KILL) the master; make sure none of its workers outlives the test."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        # Orphaned workers notice that their parent is gone within a second and exit.
        for pid in self.booted_pids():
            if not wait_for(lambda pid=pid: not _is_gunicorn_process(pid), timeout=5):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def _is_gunicorn_process(pid: int) -> bool:
    """A live process with that pid that runs gunicorn (zombies have an empty command line)."""
    try:
        return b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def run_gunicorn(
    app: str = "app",
    *args: str,
    workers: int = 2,
    env: dict[str, str] | None = None,
    ready: bool = True,
) -> Iterator[Gunicorn]:
    """gunicorn serving ``apps.gunicorn_apps:<app>`` with ``workers`` ESGWorkers."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        f"apps.gunicorn_apps:{app}",
        "--worker-class",
        WORKER,
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        *NO_CONTROL_SOCKET,
        *args,
    ]
    with tempfile.TemporaryDirectory(prefix="esg-gunicorn-") as tmp:
        out, err = Path(tmp) / "stdout.txt", Path(tmp) / "stderr.txt"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen(
                command,
                cwd=str(TESTS_DIR),
                env=subprocess_env(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        server = Gunicorn(proc, port, out, err)
        try:
            if ready:
                server.wait_ready(workers)
            yield server
        finally:
            server.stop()


# -- load -------------------------------------------------------------------------------------


class Load:
    """The outcome of a load run: requests answered 200, requests that failed, a report."""

    def __init__(self, completed: int, failed: int, report: str) -> None:
        self.completed = completed
        self.failed = failed
        self.report = report


def run_load(url: str, requests: int, concurrency: int) -> Load:
    """``requests`` keep-alive GETs of ``url`` over ``concurrency`` connections."""
    if AB is not None:
        return _ab_load(AB, url, requests, concurrency)
    return _thread_load(url, requests, concurrency)


def _ab_load(ab: str, url: str, requests: int, concurrency: int) -> Load:
    command = [ab, "-k", "-n", str(requests), "-c", str(concurrency), "-s", "30", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    report = result.stdout + result.stderr
    complete = re.search(r"Complete requests:\s+(\d+)", report)
    failed = re.search(r"Failed requests:\s+(\d+)", report)
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", report)
    if result.returncode != 0 or complete is None or failed is None:
        return Load(0, requests, report)  # ab gave up (e.g. a reset connection)
    failures = int(failed.group(1)) + (int(non_2xx.group(1)) if non_2xx else 0)
    return Load(int(complete.group(1)) - failures, failures, report)


def _thread_load(url: str, requests: int, concurrency: int) -> Load:
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}
    errors: list[str] = []

    def client(count: int) -> None:
        with httpx.Client(timeout=30) as session:
            for _ in range(count):
                try:
                    ok = session.get(url).status_code == 200
                except httpx.HTTPError as exc:
                    ok = False
                    errors.append(repr(exc))
                with lock:
                    counts["ok" if ok else "failed"] += 1

    share, extra = divmod(requests, concurrency)
    threads = [
        threading.Thread(target=client, args=(share + (1 if index < extra else 0),))
        for index in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return Load(counts["ok"], counts["failed"], "\n".join(errors[:20]))


# -- serving ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[Gunicorn]:
    with run_gunicorn("app", "--access-logfile", "-") as server:
        yield server


@pytest.mark.slow
def test_serves_get_and_post_from_two_workers(served: Gunicorn) -> None:
    workers = served.booted_pids()
    assert len(workers) == 2
    response = served.get("/pid")
    assert response.status_code == 200
    assert int(response.text) in workers
    assert response.headers["server"] == "esg"
    posted = httpx.post(served.url + "/echo", content=b"x" * 100_000, timeout=20)
    assert (posted.status_code, posted.content) == (200, b"x" * 100_000)


@pytest.mark.slow
def test_workers_use_the_selected_build(served: Gunicorn) -> None:
    expected = "compiled" if _compiled.extensions_active() else "pure"
    assert served.get("/build").text == expected


@pytest.mark.slow
def test_workers_run_uvloop_when_it_is_installed(served: Gunicorn) -> None:
    expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert served.get("/loop").text.split(".")[0] == expected


@pytest.mark.slow
def test_access_lines_go_to_gunicorns_access_log(served: Gunicorn) -> None:
    served.get("/pid?access=1")
    assert wait_for(lambda: "/pid?access=1" in served.stdout())
    line = next(line for line in served.stdout().splitlines() if "/pid?access=1" in line)
    # gunicorn's default format; esg knows no response size, referer or user agent.
    pattern = r'127\.0\.0\.1 - - \[[^\]]+\] "GET /pid\?access=1 HTTP/1\.1" 200 - "-" "-"'
    assert re.fullmatch(pattern, line), line
    assert "/pid?access=1" not in served.stderr()


@pytest.mark.slow
def test_limits_come_from_gunicorn() -> None:
    with run_gunicorn("app", "--limit-request-line", "100", workers=1) as server:
        assert server.get("/pid?" + "a" * 50).status_code == 200
        assert server.get("/pid?" + "a" * 200).status_code == 414


@pytest.mark.slow
def test_tls_from_gunicorns_certfile_and_keyfile(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    options = ("--certfile", str(certfile), "--keyfile", str(keyfile))
    with run_gunicorn("app", *options, workers=1) as server:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        url = f"https://127.0.0.1:{server.port}/scheme"
        assert httpx.get(url, verify=context, timeout=20).text == "https"
        # esg speaks HTTP/2 too, and prefers it (ALPN).
        context.set_alpn_protocols(["http/1.1", "h2"])
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        with raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"


# -- signals, reloads and recycling -----------------------------------------------------------


@pytest.mark.slow
def test_term_runs_the_lifespan_shutdown_in_every_worker(tmp_path: Path) -> None:
    with run_gunicorn("app", env={"ESG_TEST_MARKER_DIR": str(tmp_path)}) as server:
        workers = server.booted_pids()
        assert server.worker_pid() in workers
        server.signal(signal.SIGTERM)
        status = server.wait()
        stdout, stderr = server.stdout(), server.stderr()
    assert status == 0, stderr
    assert len(workers) == 2
    for pid in workers:
        assert (tmp_path / f"startup-{pid}").exists()
        assert (tmp_path / f"shutdown-{pid}").exists(), stderr
    assert "Traceback" not in stderr
    # No --access-logfile: gunicorn logs no access, and neither does esg.
    assert "GET /pid" not in stdout + stderr


@pytest.mark.slow
def test_quit_exits_without_waiting_for_requests(tmp_path: Path) -> None:
    # The held request would take 60 s and the graceful timeout is 60 s: only a quick exit
    # ends the worker, and with it gunicorn, well before the 20 s the test waits.
    markers = {"ESG_TEST_MARKER_DIR": str(tmp_path)}
    with run_gunicorn("app", "--graceful-timeout", "60", workers=1, env=markers) as server:
        [pid] = server.booted_pids()
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as client:
            client.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
            assert wait_for((tmp_path / f"held-{pid}").exists)
            server.signal(signal.SIGQUIT)
            status = server.wait(timeout=20)
            with contextlib.suppress(OSError):
                while client.recv(65536):
                    pass  # whatever came, the connection ended
        stderr = server.stderr()
    assert status == 0, stderr
    assert not (tmp_path / f"shutdown-{pid}").exists()  # quick: no lifespan shutdown
    assert "SIGKILL" not in stderr


@pytest.mark.slow
def test_quit_during_the_startup_does_not_wait_for_it(tmp_path: Path) -> None:
    markers = {"ESG_TEST_MARKER_DIR": str(tmp_path)}
    with run_gunicorn("slow_startup_app", workers=1, env=markers, ready=False) as server:
        assert wait_for(lambda: any(tmp_path.glob("startup-begun-*")), timeout=READY_TIMEOUT)
        server.signal(signal.SIGQUIT)
        status = server.wait(timeout=20)  # the startup alone would take 60 s
        stderr = server.stderr()
    assert status == 0, stderr
    assert "SIGKILL" not in stderr


@pytest.mark.slow
def test_heartbeat_keeps_idle_workers_and_a_blocked_loop_times_out() -> None:
    with run_gunicorn("app", "--timeout", "2", workers=1) as server:
        [pid] = server.booted_pids()
        time.sleep(3.5)  # idle for longer than --timeout: the heartbeat keeps the worker
        assert server.worker_pid() == pid
        assert "WORKER TIMEOUT" not in server.stderr()
        # A request that blocks the event loop stops the heartbeat: gunicorn aborts the
        # worker and starts another.
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(server.url + "/block?s=20", timeout=30)
        assert wait_for(lambda: pid in server.exited_pids(), timeout=30), server.stderr()
        assert f"WORKER TIMEOUT (pid:{pid})" in server.stderr()
        assert wait_for(lambda: len(server.booted_pids()) == 2, timeout=30)
        assert server.worker_pid() != pid


@pytest.mark.slow
def test_hup_replaces_every_worker_without_failing_a_request(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    with run_gunicorn("app", "--access-logfile", str(access)) as server:
        old = set(server.booted_pids())
        outcome: list[Load] = []
        load = threading.Thread(
            target=lambda: outcome.append(run_load(server.url + "/slow?ms=5", 2000, 8))
        )
        load.start()
        try:
            # Reload once the load is under way.
            assert wait_for(lambda: _line_count(access) >= 100, timeout=60)
            server.signal(signal.SIGHUP)
        finally:
            load.join(200)
        assert outcome, "the load did not finish"
        result = outcome[0]
        assert (result.completed, result.failed) == (2000, 0), result.report

        def replaced() -> bool:
            return old <= server.exited_pids() and len(server.booted_pids()) >= 4

        assert wait_for(replaced, timeout=30), server.stderr()
        new = set(server.booted_pids()) - old
        answering = {server.worker_pid() for _ in range(20)}
        assert answering <= new
        assert len(old) == len(new) == 2


def _line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_max_requests_recycles_workers_without_failing_a_request() -> None:
    options = ("--max-requests", "20", "--max-requests-jitter", "10")
    with run_gunicorn("app", *options) as server:
        result = run_load(server.url + "/slow?ms=2", 1000, 8)
        assert (result.completed, result.failed) == (1000, 0), result.report
        # Every worker that reached its limit was replaced.
        assert len(server.booted_pids()) > 2, server.stderr()
        stderr = server.stderr()
    assert "Maximum request limit" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_usr1_reopens_the_log_files(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with run_gunicorn("app", "--access-logfile", str(log), workers=1) as server:
        server.get("/pid?before")
        assert wait_for(lambda: "/pid?before" in log.read_text())
        log.rename(tmp_path / "access.log.1")  # what logrotate does
        server.signal(signal.SIGUSR1)

        def logged_to_new_file() -> bool:
            server.get("/pid?after")
            time.sleep(0.1)
            return log.exists() and "/pid?after" in log.read_text()

        assert wait_for(logged_to_new_file, timeout=20), server.stderr()


@pytest.mark.slow
def test_failed_lifespan_startup_stops_gunicorn(tmp_path: Path) -> None:
    from apps.gunicorn_apps import STARTUP_MESSAGE

    markers = {"ESG_TEST_MARKER_DIR": str(tmp_path)}
    with run_gunicorn("failing_app", env=markers, ready=False) as server:
        status = server.wait(timeout=60)
        stderr = server.stderr()
    # Exit status 3 (WORKER_BOOT_ERROR), or 1 when gunicorn trips over the second failed
    # worker while halting for the first (it raises HaltServer again, uncaught).
    assert status != 0, stderr
    assert STARTUP_MESSAGE in stderr
    assert f"exited with code {WORKER_BOOT_ERROR}" in stderr
    assert "Worker failed to boot" in stderr
    # Each of the two workers tried once; none was replaced.
    assert 1 <= len(list(tmp_path.glob("boot-*"))) <= 2


# -- gunicorn settings as esg settings (no processes) -----------------------------------------


def gunicorn_cfg(**settings: Any) -> GunicornConfig:
    cfg = GunicornConfig()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def test_default_settings() -> None:
    cfg = gunicorn_cfg()
    kwargs = esg_settings(cfg, sys.maxsize)
    assert kwargs["limit_request_line"] == 4094  # gunicorn's default, not esg's 8190
    assert kwargs["limit_request_fields"] == 100
    assert kwargs["limit_request_field_size"] == 8190
    assert kwargs["timeout_keep_alive"] == 2
    assert kwargs["timeout_graceful_shutdown"] == 29  # the arbiter kills at 30
    assert kwargs["backlog"] == 2048
    assert kwargs["forwarded_allow_ips"] == cfg.forwarded_allow_ips
    assert kwargs["proxy_headers"] is True
    assert kwargs["limit_max_requests"] is None
    assert "limit_concurrency" not in kwargs  # worker_connections is not a 503 threshold
    assert kwargs["log_config"] is None
    config = Config("", **kwargs)  # esg takes every one of them
    assert config.forwarded_allow_ips == list(cfg.forwarded_allow_ips)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("limit_request_line", 0, ESG_HEAD_LIMIT),  # gunicorn: unlimited; esg: the head limit
        ("limit_request_line", 100, 100),
        ("limit_request_line", 20000, 8190),  # gunicorn's ceiling
        ("limit_request_fields", 0, 32768),
        ("limit_request_fields", 50, 50),
        ("limit_request_fields", 40000, 32768),
        ("limit_request_field_size", 0, ESG_HEAD_LIMIT),
        ("limit_request_field_size", 20000, 20000),
        ("keepalive", 0, 0),
        ("graceful_timeout", 1, 1),
        ("graceful_timeout", 0, 0),
        ("graceful_timeout", 10, 9),
        ("backlog", 64, 64),
    ],
)
def test_setting_mapping(setting: str, value: int, expected: int) -> None:
    names = {
        "keepalive": "timeout_keep_alive",
        "graceful_timeout": "timeout_graceful_shutdown",
    }
    kwargs = esg_settings(gunicorn_cfg(**{setting: value}), sys.maxsize)
    assert kwargs[names.get(setting, setting)] == expected


def test_max_requests_is_the_workers_own_jittered_limit() -> None:
    assert esg_settings(gunicorn_cfg(max_requests=100), 107)["limit_max_requests"] == 107
    assert esg_settings(gunicorn_cfg(max_requests=0), sys.maxsize)["limit_max_requests"] is None


def test_forwarded_allow_ips() -> None:
    cfg = gunicorn_cfg(forwarded_allow_ips="10.0.0.1,192.168.0.0/16")
    config = Config("", **esg_settings(cfg, sys.maxsize))
    assert config.forwarded_allow_ips == ["10.0.0.1", "192.168.0.0/16"]


class _Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def warning(self, message: str, *args: Any) -> None:
        self.messages.append(message % args)


def test_settings_esg_ignores_are_warned_about() -> None:
    log = _Warnings()
    ESGWorker.check_config(gunicorn_cfg(), log)
    assert log.messages == []
    ESGWorker.check_config(gunicorn_cfg(threads=4), log)
    assert len(log.messages) == 1
    assert "--threads" in log.messages[0]


# -- gunicorn's access log format -------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _access_line(log_format: str, args: tuple[Any, ...], **extra: Any) -> str:
    target = logging.getLogger("test_gunicorn_worker.access")
    target.propagate = False
    target.setLevel(logging.INFO)
    lines = _Lines()
    target.addHandler(lines)
    try:
        handler = AccessLogHandler(target, log_format, SafeAtoms)
        record = logging.LogRecord(
            "esg.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
        )
        record.__dict__.update(extra)
        handler.handle(record)
    finally:
        target.removeHandler(lines)
    [line] = lines.lines
    return line


def test_access_line_in_gunicorns_default_format() -> None:
    log_format = GunicornConfig().access_log_format
    line = _access_line(log_format, ("10.1.2.3:5000", "GET", "/a?b=1", "1.1", 200), duration_ms=2)
    assert re.fullmatch(r'10\.1\.2\.3 - - \[[^\]]+\] "GET /a\?b=1 HTTP/1\.1" 200 - "-" "-"', line)


def test_access_line_atoms() -> None:
    log_format = "%(h)s|%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(D)s|%(M)s|%(L)s|%(b)s|%({x-id}i)s"
    args = ("::1:5000", "POST", "/p?x=1", "1.0", 201)
    line = _access_line(log_format, args, duration_ms=1234.5678)
    assert line == "::1|POST|/p|x=1|HTTP/1.0|201|1234567|1234|1.234567|-|-"


def test_access_line_without_a_duration_or_client() -> None:
    # A record without a duration (a --log-config formatter's own); a UNIX socket client is "-".
    line = _access_line("%(h)s %(r)s %(s)s %(D)s", ("-", "WebSocket", "/ws", "1.1", 101))
    assert line == "- WebSocket /ws HTTP/1.1 101 -"
