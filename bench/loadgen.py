"""Load generators (wrk, h2load, hey, an asyncio idle-connection opener) and /proc accounting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from servers import BENCH_DIR, CLIENT_CPU, pinned

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    errors: int


def _process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its descendants."""
    total = 0
    for each in _process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    total = 0
    for each in _process_tree(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            total += int(match.group(1)) * 1024
    return total


def wrk(
    url: str,
    seconds: float,
    *,
    connections: int = 64,
    script: str | None = None,
    env: dict[str, str] | None = None,
) -> WrkResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    if script:
        argv[1:1] = ["-s", str(BENCH_DIR / "lua" / script)]
    out = subprocess.run(
        pinned(CLIENT_CPU, argv),
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, **(env or {})),
        timeout=seconds + 30,
    ).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if done is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(done.group(1))
    elapsed = float(done.group(2)) / (1000.0 if done.group(3) == "ms" else 1.0)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return WrkResult(requests, elapsed, requests / elapsed, errors)


def h2load(
    url: str,
    seconds: float,
    *,
    connections: int = 64,
    streams: int = 10,
    data: Path | None = None,
) -> WrkResult:
    """Cleartext HTTP/2 with prior knowledge: ``h2load -c 64 -m 10 -t 1`` for ``seconds``
    (64 connections, 10 streams each in flight); ``data``: a file POSTed as every request's
    body.  Failed, errored and non-2xx requests are the errors."""
    argv = ["h2load", "-D", str(max(1, round(seconds)))]
    argv += ["-c", str(connections), "-m", str(streams), "-t", "1"]
    if data is not None:
        argv += ["-d", str(data)]
    out = subprocess.run(
        pinned(CLIENT_CPU, [*argv, url]),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    done = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if finished is None or done is None or codes is None:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    elapsed = float(finished.group(1)) / (1000.0 if finished.group(2) == "ms" else 1.0)
    requests = int(done.group(1))
    errors = int(done.group(2)) + int(done.group(3))
    errors += int(codes.group(2)) + int(codes.group(3)) + int(codes.group(4))
    return WrkResult(requests, elapsed, float(finished.group(3)), errors)


def ws_echo(port: int, seconds: float, *, deflate: bool = False, warmup: float = 1.0) -> WrkResult:
    """WebSocket echo messages/s from ws_load.py (32 connections, bursts of 16 x 64 bytes)."""
    argv = [
        sys.executable,
        str(BENCH_DIR / "ws_load.py"),
        str(port),
        "--duration",
        str(seconds),
        "--warmup",
        str(warmup),
    ]
    if deflate:
        argv.append("--deflate")
    out = subprocess.run(
        pinned(CLIENT_CPU, argv), capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    errors = 1 if found["error"] else 0
    return WrkResult(found["messages"], found["seconds"], found["messages_per_s"], errors)


def hey_latency(url: str, seconds: float, rate: float, connections: int = 32) -> dict[str, float]:
    """p50/p99 latency in ms at a fixed total ``rate`` (requests/s)."""
    per_worker = max(1.0, rate / connections)
    argv = [
        "hey",
        "-z",
        f"{max(1, round(seconds))}s",
        "-c",
        str(connections),
        "-q",
        f"{per_worker:.1f}",
        url,
    ]
    out = subprocess.run(
        pinned(CLIENT_CPU, argv),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    found = dict(re.findall(r"(\d+)% in ([\d.]+) secs", out))
    total = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "p50_ms": float(found.get("50", "nan")) * 1000,
        "p99_ms": float(found.get("99", "nan")) * 1000,
        "achieved_rps": float(total.group(1)) if total else float("nan"),
    }


async def _open_one(port: int) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    await reader.readuntil(b"Hello, world!")
    return writer


# The client's side of an HTTP/2 connection with prior knowledge: the preface, empty SETTINGS,
# and one GET / on stream 1 (HPACK: :method GET, :scheme http, :path / from the static table,
# :authority "bench" as a literal), END_STREAM | END_HEADERS.
_H2_SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
_H2_HELLO = (
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    + b"\x00\x00\x0a\x01\x05\x00\x00\x00\x01"
    + b"\x82\x86\x84\x01\x05bench"
)


async def _open_one_h2(port: int) -> asyncio.StreamWriter:
    """An HTTP/2 connection whose one stream has been answered, the server's SETTINGS acked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_H2_HELLO)
    while True:
        head = await reader.readexactly(9)
        await reader.readexactly(int.from_bytes(head[:3], "big"))
        kind, flags, stream = head[3], head[4], int.from_bytes(head[5:9], "big")
        if kind == 4 and not flags & 1:
            writer.write(_H2_SETTINGS_ACK)
        elif kind == 7:
            raise RuntimeError("the server sent GOAWAY to an HTTP/2 client")
        elif stream == 1 and kind in (0, 1) and flags & 1:  # DATA or HEADERS with END_STREAM
            return writer


async def _open_idle(port: int, count: int, http2: bool = False) -> list[asyncio.StreamWriter]:
    # In batches, so all are open well within every server's 5 s keep-alive timeout.
    opener = _open_one_h2 if http2 else _open_one
    writers: list[asyncio.StreamWriter] = []
    while len(writers) < count:
        batch = min(200, count - len(writers))
        writers += await asyncio.gather(*(opener(port) for _ in range(batch)))
    return writers


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def idle_connection_memory(
    pid: int, port: int, count: int, http2: bool = False, limit: float = 60.0
) -> float:
    """Extra server RSS per idle keep-alive connection that has served one request (over
    cleartext HTTP/2 with prior knowledge with ``http2``).  Raises ``RuntimeError`` when the
    server hasn't answered them all within ``limit`` seconds (one that stops accepting would
    leave the harness waiting for ever)."""

    async def measure() -> float:
        before = rss_bytes(pid)
        try:
            writers = await asyncio.wait_for(_open_idle(port, count, http2), limit)
        except asyncio.TimeoutError:
            raise RuntimeError(
                f"{count} idle connections not all answered in {limit:.0f} s"
            ) from None
        await asyncio.sleep(0.5)
        after = rss_bytes(pid)
        for writer in writers:
            writer.close()
        return (after - before) / count

    return asyncio.run(measure())
