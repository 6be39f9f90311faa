"""Robustness of a real esg process under load and faults: real sockets, real clients.

* Slowloris: 300 connections trickling a head byte by byte don't hold up ``ab -k`` on the same
  server, and are cut at ``--timeout-header`` with a 408.
* A client that never reads a 50 MiB stream costs the server bounded memory (the app is paused
  at the transport's high-water mark) and is reset after ``--timeout-body``; one that reads a
  large response slowly but steadily is never cut.
* 10,000 idle keep-alive connections, then closed: no file descriptor left behind; the memory
  each one costs is printed.
* The app failing, and the client vanishing, at points of the cycle: the server keeps serving,
  an app failure is logged exactly once, a vanished client not at all.  (The fine-grained
  points are covered on a fake transport in ``tests/http/test_faults.py``.)

Timings are never asserted: waits have generous upper bounds only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from utils import (
    ConnectionClosed,
    RawConnection,
    ServerProcess,
    request_bytes,
    run_server,
    wait_for,
)

pytestmark = pytest.mark.slow

APP = "apps.faults:app"
APP_EXCEPTION = "Exception in ASGI application"
MIB = 1024 * 1024
TCP_ESTABLISHED = 1
TCP_CLOSE = 7


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_nofile(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE (esg, started afterwards, inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def get_ok(server: ServerProcess, path: str = "/") -> bytes:
    """A normal request on a new connection; it must succeed."""
    with server.raw() as conn:
        conn.send(request_bytes("GET", path))
        response = conn.read_response()
    assert response.status == 200, response.body
    return response.body


def get_and_close(server: ServerProcess, path: str = "/") -> bytes:
    """A request with ``Connection: close``, read to the server's close: once this returns, the
    server has closed its socket (a count of its descriptors no longer includes it)."""
    with server.raw() as conn:
        conn.send(request_bytes("GET", path, {"Connection": "close"}))
        response = conn.read_response()
        assert conn.is_closed()
    assert response.status == 200, response.body
    return response.body


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


# -- 1. slowloris against ab -------------------------------------------------------------------

SLOW_CONNECTIONS = 300
SLOW_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            data += chunk
    return data


async def _trickle(
    writers: list[asyncio.StreamWriter], readers: list[asyncio.Task[bytes]], first: asyncio.Event
) -> int:
    """One byte to every connection still open, about once a second; returns the rounds."""
    rounds = 0
    while not all(task.done() for task in readers):
        await asyncio.sleep(0.9)
        for writer, task in zip(writers, readers, strict=True):
            if not task.done() and not writer.is_closing():
                writer.write(b"a")
        rounds += 1
        first.set()
    return rounds


async def _slowloris_and_ab(port: int) -> tuple[str, list[bytes], int, int]:
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.Task[bytes]] = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(SLOW_HEAD)
            writers.append(writer)
            readers.append(asyncio.ensure_future(_read_all(reader)))
        first_round = asyncio.Event()
        trickle = asyncio.ensure_future(_trickle(writers, readers, first_round))
        await asyncio.wait_for(first_round.wait(), 10)  # ab runs while they trickle
        open_when_ab_started = sum(not task.done() for task in readers)
        ab = await asyncio.create_subprocess_exec(
            "ab", "-q", "-k", "-n", "3000", "-c", "16", f"http://127.0.0.1:{port}/",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(ab.communicate(), 60)
        # Every slow connection is cut at the header deadline: a bounded wait.
        answers = await asyncio.wait_for(asyncio.gather(*readers), 30)
        rounds = await asyncio.wait_for(trickle, 5)
        return output.decode(errors="replace"), answers, open_when_ab_started, rounds
    finally:
        for task in readers:
            task.cancel()
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.mark.skipif(shutil.which("ab") is None, reason="needs ab (apache2-utils)")
def test_slowloris_does_not_starve_keep_alive_clients_and_is_cut_at_the_header_deadline() -> None:
    raise_nofile(4 * SLOW_CONNECTIONS + 256)
    with run_server(APP, "--timeout-header", "3", "--no-access-log") as server:
        output, answers, open_at_start, rounds = asyncio.run(_slowloris_and_ab(server.port or 0))
        after = get_ok(server)
        log = server.stderr()
    print(
        f"\nslowloris: {open_at_start} of {SLOW_CONNECTIONS} slow connections open when ab "
        f"started; {rounds} trickle rounds before the last was cut"
    )
    summary = r"(Complete requests|Failed|Non-2xx|Requests per|Time taken)"
    print("\n".join(line for line in output.splitlines() if re.match(summary, line)))
    assert re.search(r"^Complete requests:\s+3000$", output, re.M), output
    assert re.search(r"^Failed requests:\s+0$", output, re.M), output
    assert "Non-2xx responses" not in output, output
    assert re.search(r"^Keep-Alive requests:\s+3000$", output, re.M), output
    # Each slow connection got a 408 (nothing had been answered on it) and then EOF.
    statuses = {answer.split(b"\r\n", 1)[0] for answer in answers}
    assert statuses == {b"HTTP/1.1 408 Request Timeout"}, statuses
    assert after == b"hello"
    assert "Traceback" not in log


# -- 2. a client that never reads a 50 MiB stream ----------------------------------------------


@pytest.mark.parametrize("loop", ["auto", "asyncio"])  # uvloop's transports, and asyncio's
def test_client_that_never_reads_a_50_mib_stream_costs_bounded_memory(
    tmp_path: Path, loop: str
) -> None:
    marker = tmp_path / "app-ended"
    with run_server(APP, "--timeout-body", "3", "--no-access-log", "--loop", loop) as server:
        pid = server.proc.pid
        # Warm up: one whole streamed response, so the baseline has its buffers.
        assert len(get_and_close(server, "/big?mb=2")) == 2 * MIB
        baseline = rss_kib(pid)
        fds_before = fd_count(pid)

        with socket.socket() as stalled:
            # A small receive buffer: the kernel holds little, the server's buffer fills fast.
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            stalled.connect(("127.0.0.1", server.port or 0))
            stalled.sendall(request_bytes("GET", f"/big?mb=50&marker={marker}"))
            peak = baseline
            samples = 0
            deadline = time.monotonic() + 20
            # Until the server lets go (a reset: the socket leaves ESTABLISHED), sample its RSS.
            while tcp_state(stalled) == TCP_ESTABLISHED and time.monotonic() < deadline:
                peak = max(peak, rss_kib(pid))
                samples += 1
                time.sleep(0.1)
            state = tcp_state(stalled)
            fds_after = fd_count(pid)
            # Reset, not closed: the kernel dropped the unread data instead of keeping it
            # (and the socket) for as long as the client keeps its window shut.
            received = 0
            with contextlib.suppress(ConnectionResetError):
                while chunk := stalled.recv(MIB):
                    received += len(chunk)
        assert wait_for(marker.exists, timeout=10)  # send() raised: the app stopped
        after = get_ok(server)
        log = server.stderr()
    growth = peak - baseline
    print(
        f"\nstalled 50 MiB stream (--loop {loop}): RSS baseline {baseline} KiB, peak growth "
        f"{growth} KiB over {samples} samples; client received {received} bytes before the reset"
    )
    assert state == TCP_CLOSE, f"the stalled connection was not reset (TCP state {state})"
    assert growth < 20 * 1024
    assert received < 50 * MIB
    assert fds_after == fds_before
    assert after == b"hello"
    assert "Traceback" not in log and "ERROR" not in log, log


def test_slow_but_steady_reader_of_a_large_response_is_not_cut() -> None:
    # 20 MiB in one body message sit in the transport's buffer: writing stays paused for as
    # long as the download lasts, well over --timeout-body here.  Progress, not the pause, is
    # what the deadline measures, so the client gets every byte.
    size = 20 * MIB
    with run_server(APP, "--timeout-body", "2", "--no-access-log") as server:
        with server.raw(timeout=30) as conn:
            conn.send(request_bytes("GET", "/blob?mb=20"))
            head = conn.read_head()
            assert head.header("content-length") == str(size)
            received = len(conn.buffer)
            conn.buffer = b""
            started = time.monotonic()
            deadline = started + 120
            while received < size and time.monotonic() < deadline:
                chunk = conn.sock.recv(256 * 1024)  # about 5 MB/s at most: 4 s or more
                if not chunk:
                    break
                received += len(chunk)
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        log = server.stderr()
    print(f"\nslow reader: {received} of {size} bytes in {elapsed:.1f} s (--timeout-body 2)")
    assert received == size
    assert "Traceback" not in log and "ERROR" not in log, log


# -- 3. 10,000 idle keep-alive connections -------------------------------------------------------

IDLE_CONNECTIONS = 10_000
IDLE_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class _IdleClient(asyncio.Protocol):
    """Sends one request, waits for the whole response, then stays connected."""

    def __init__(self, answered: asyncio.Future[bytes], lost: asyncio.Future[None]) -> None:
        self.answered = answered
        self.lost = lost
        self.data = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(IDLE_REQUEST)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.data += data
        end = self.data.find(b"\r\n\r\n")
        if end >= 0 and not self.answered.done():
            match = re.search(rb"content-length: (\d+)", self.data[:end], re.I)
            if match and len(self.data) >= end + 4 + int(match.group(1)):
                self.answered.set_result(self.data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_exception(ConnectionClosed(f"closed early: {self.data!r}"))
        if not self.lost.done():
            self.lost.set_result(None)


async def _idle_connections(port: int, pid: int) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    lost: list[asyncio.Future[None]] = []
    gate = asyncio.Semaphore(200)  # connections being set up at once (the listen backlog)

    async def open_one() -> None:
        async with gate:
            answered: asyncio.Future[bytes] = loop.create_future()
            gone: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: _IdleClient(answered, gone), "127.0.0.1", port
            )
            transports.append(transport)
            lost.append(gone)
            response = await asyncio.wait_for(answered, 30)
            assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response

    figures = {"fds_before": fd_count(pid), "rss_before": rss_kib(pid)}
    try:
        await asyncio.wait_for(asyncio.gather(*(open_one() for _ in range(IDLE_CONNECTIONS))), 120)
        await asyncio.sleep(0.5)  # let the server settle before measuring
        figures["fds_open"] = fd_count(pid)
        figures["rss_open"] = rss_kib(pid)
    finally:
        for transport in transports:
            transport.close()
        await asyncio.wait_for(asyncio.gather(*lost), 60)
    return figures


def test_idle_keep_alive_connections_leak_no_descriptor() -> None:
    raise_nofile(IDLE_CONNECTIONS + 1024)
    options = ("--timeout-keep-alive", "300", "--timeout-header", "300", "--no-access-log")
    rounds: list[dict[str, int]] = []
    with run_server(APP, *options) as server:
        pid = server.proc.pid
        for _ in range(3):  # warm up: the first connections allocate what later ones reuse
            get_and_close(server)
        # Twice: what the first round leaves behind (allocator caches) the second reuses, so
        # a second peak well above the first would be a leak.
        for _ in range(2):
            figures = asyncio.run(_idle_connections(server.port or 0, pid))
            # The server sees each close (EOF) and lets the socket go: back to where it was.
            limit = figures["fds_before"] + 2
            closed = wait_for(lambda: fd_count(pid) <= limit, timeout=30)  # noqa: B023
            figures["fds_after"] = fd_count(pid)
            figures["rss_after"] = rss_kib(pid)
            rounds.append(figures)
            assert closed, f"{figures['fds_after']} fds after closing, {figures} before"
        after = get_ok(server)
        log = server.stderr()
    first, second = rounds
    cost = first["rss_open"] - first["rss_before"]
    per_connection = cost * 1024 / IDLE_CONNECTIONS
    for index, figures in enumerate(rounds, 1):
        print(
            f"\nround {index}, {IDLE_CONNECTIONS} idle keep-alive connections: fds "
            f"{figures['fds_before']} -> {figures['fds_open']} -> {figures['fds_after']}; RSS "
            f"{figures['rss_before']} -> {figures['rss_open']} -> {figures['rss_after']} KiB"
        )
    print(f"{per_connection / 1024:.1f} KiB per idle connection")
    for figures in rounds:
        assert figures["fds_open"] - figures["fds_before"] >= IDLE_CONNECTIONS  # all held open
        assert figures["fds_after"] <= first["fds_before"] + 2
    assert per_connection < 64 * 1024  # generous: a few KiB is expected
    assert second["rss_open"] - first["rss_open"] < cost / 2
    assert after == b"hello"
    assert "Traceback" not in log and "ERROR" not in log, log


# -- 4. the app failing, the client vanishing ------------------------------------------------------


@pytest.fixture(scope="module")
def faults_server() -> Iterator[ServerProcess]:
    with run_server(APP, "--no-access-log") as process:
        yield process


class LogWatch:
    """Counts what a test adds to the server's log (tests on the shared server run in turn)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.start = len(server.stderr())

    def new(self) -> str:
        return self.server.stderr()[self.start :]

    def count(self, text: str) -> int:
        return self.new().count(text)


# What the client gets when the app fails at each point (see apps/faults.py).
RAISE_CASES = {
    "before-start": "500",
    "after-body-read": "500",
    "in-receive": "500",
    "after-start": "cut",
    "between-chunks": "cut",
    "after-last-body": "complete",
    "after-complete": "complete",
}


@pytest.mark.parametrize("point", list(RAISE_CASES))
def test_app_failure_is_logged_once_and_the_server_keeps_serving(
    faults_server: ServerProcess, point: str
) -> None:
    watch = LogWatch(faults_server)
    outcome = RAISE_CASES[point]
    target = f"/raise?at={point}"
    with faults_server.raw() as conn:
        if point == "after-body-read":
            conn.send(request_bytes("POST", target, body=b"some body"))
        elif point == "in-receive":  # announces a body that never comes
            conn.send(request_bytes("POST", target, headers={"Content-Length": "10"}))
        else:
            conn.send(request_bytes("GET", target))
        if outcome == "500":
            response = conn.read_response()
            assert response.status == 500
            assert response.header("connection") == "close"
            assert conn.is_closed()
        elif outcome == "cut":
            head = conn.read_head()
            assert head.status == 200
            assert head.header("transfer-encoding") == "chunked"
            rest = conn.read_to_close()
            assert not rest.endswith(b"0\r\n\r\n")  # never a complete response
        else:
            response = conn.read_response()
            assert (response.status, response.body) == (200, b"firstlast")
            # The connection is still good for the next request.
            conn.send(request_bytes("GET", "/"))
            assert conn.read_response().body == b"hello"
    assert wait_for(lambda: watch.count(f"fault at {point}") >= 1, timeout=10)
    assert get_ok(faults_server) == b"hello"
    assert watch.count(APP_EXCEPTION) == 1
    assert watch.count(f"RuntimeError: fault at {point}") == 1
    assert watch.count("Traceback") == 1


def _vanish(conn: RawConnection, how: str) -> None:
    if how == "reset":
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.sock.close()


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("point", ["head", "upload", "receive", "stream", "after-response"])
def test_vanished_client_logs_nothing_and_the_server_keeps_serving(
    faults_server: ServerProcess, tmp_path: Path, point: str, how: str
) -> None:
    watch = LogWatch(faults_server)
    started, marker = tmp_path / "started", tmp_path / "marker"
    files = f"started={started}&marker={marker}"
    conn = faults_server.raw()
    try:
        if point == "head":
            conn.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Part")
        elif point == "upload":
            head = request_bytes("POST", f"/vanish-upload?{files}", {"Content-Length": "1000000"})
            conn.send(head + b"x" * 100_000)
        elif point == "receive":
            conn.send(request_bytes("GET", f"/vanish-wait?{files}"))
        elif point == "stream":
            conn.send(request_bytes("GET", f"/vanish-stream?{files}"))
            assert conn.read_head().status == 200
        else:
            conn.send(request_bytes("GET", "/"))
            assert conn.read_response().body == b"hello"
        if point in ("upload", "receive", "stream"):
            assert wait_for(started.exists)
    finally:
        _vanish(conn, how)
    if point in ("upload", "receive", "stream"):
        assert wait_for(marker.exists)  # the app learnt the client left, and ended
    assert get_ok(faults_server) == b"hello"
    new = watch.new()
    assert "Traceback" not in new and "ERROR" not in new and "WARNING" not in new, new


def test_server_survives_a_burst_of_every_fault(faults_server: ServerProcess) -> None:
    # Many failing and vanishing requests at once, then the server is still answering.
    watch = LogWatch(faults_server)
    conns: list[RawConnection] = []
    try:
        for index in range(40):
            conn = faults_server.raw()
            conns.append(conn)
            if index % 2:
                conn.send(request_bytes("GET", "/raise?at=before-start"))
            else:
                conn.send(b"GET /vanish-stream HTTP/1.1\r\nHost: x\r\n\r\n")
        for index, conn in enumerate(conns):
            if index % 2:
                assert conn.read_response().status == 500
            else:
                assert conn.read_head().status == 200
    finally:
        for conn in conns:
            _vanish(conn, "reset")
    assert wait_for(lambda: watch.count("fault at before-start") >= 20, timeout=20)
    for _ in range(5):
        assert get_ok(faults_server) == b"hello"
    assert watch.count(APP_EXCEPTION) == 20
    assert watch.count("Traceback") == 20
