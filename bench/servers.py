"""How to start each server on one core with the same app, and how to stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# The peers run on the same CPython as esg (the one running the harness: `make bench PY=3.13`),
# each minor version with a venv of its own.
PEERS_VENV = BENCH_DIR / f".venv-peers-{sys.version_info[0]}.{sys.version_info[1]}"
SERVER_CPU = "1"
CLIENT_CPU = "0"


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: tuple[str, ...]  # {app} and {port} are filled in
    env: tuple[tuple[str, str], ...] = ()  # added to the environment


def _peer(tool: str) -> str:
    return str(PEERS_VENV / "bin" / tool)


# esg takes uvicorn's command line: both get exactly the same settings.
_UVICORN_STYLE_FLAGS = (
    "apps:{app}",
    "--app-dir",
    str(BENCH_DIR),
    "--port",
    "{port}",
    "--no-access-log",
    "--log-level",
    "warning",
    "--lifespan",
    "off",
)

SERVERS = {
    "esg": ServerSpec("esg", (sys.executable, "-m", "esg", *_UVICORN_STYLE_FLAGS)),
    "uvicorn": ServerSpec(
        "uvicorn",
        (
            _peer("python"),
            "-m",
            "uvicorn",
            *_UVICORN_STYLE_FLAGS,
            "--http",
            "httptools",
            "--loop",
            "uvloop",
        ),
    ),
    "granian": ServerSpec(
        "granian",
        (
            _peer("granian"),
            "--interface",
            "asgi",
            "apps:{app}",
            "--working-dir",
            str(BENCH_DIR),
            "--port",
            "{port}",
            "--http",
            "1",
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--no-ws",
            "--log-level",
            "warning",
        ),
    ),
    # granian serves HTTP/2 only when told (cleartext: prior knowledge), and then no HTTP/1.1.
    "granian-h2": ServerSpec(
        "granian-h2",
        (
            _peer("granian"),
            "--interface",
            "asgi",
            "apps:{app}",
            "--working-dir",
            str(BENCH_DIR),
            "--port",
            "{port}",
            "--http",
            "2",
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--no-ws",
            "--log-level",
            "warning",
        ),
    ),
    # hypercorn and esg answer the HTTP/2 preface (h2c with prior knowledge) on their HTTP/1.1
    # port: the same command lines serve both protocols.
    "hypercorn": ServerSpec(
        "hypercorn",
        (
            _peer("hypercorn"),
            "apps:{app}",
            "--bind",
            "127.0.0.1:{port}",
            "--worker-class",
            "uvloop",
            "--log-level",
            "warning",
        ),
    ),
    # esg with one feature on, for the cost of each (plaintext): the metrics listener on an
    # ephemeral port, and the access log written (to /dev/null: the server's stdout here).
    "esg+metrics": ServerSpec(
        "esg+metrics",
        (sys.executable, "-m", "esg", *_UVICORN_STYLE_FLAGS, "--metrics", "--metrics-port", "0"),
    ),
    "esg+access_log": ServerSpec(
        "esg+access_log",
        (
            sys.executable,
            "-m",
            "esg",
            *(
                "info" if f == "warning" else f
                for f in _UVICORN_STYLE_FLAGS
                if f != "--no-access-log"
            ),
        ),
    ),
    # esg without the file extensions (ESG_NO_PATHSEND=1, esg/extensions.py): Starlette's
    # FileResponse then reads the file itself and sends it in chunks, as on uvicorn.
    "esg-no-pathsend": ServerSpec(
        "esg-no-pathsend",
        (sys.executable, "-m", "esg", *_UVICORN_STYLE_FLAGS),
        (("ESG_NO_PATHSEND", "1"),),
    ),
    # esg with every request's task scheduled (ESG_NO_EAGER=1, esg/http/protocol.py): on 3.12+
    # it measures what the eager start of pipelined reads gains (bench/eager.py).
    "esg-no-eager": ServerSpec(
        "esg-no-eager",
        (sys.executable, "-m", "esg", *_UVICORN_STYLE_FLAGS),
        (("ESG_NO_EAGER", "1"),),
    ),
    "ceiling": ServerSpec("ceiling", (sys.executable, str(BENCH_DIR / "raw_server.py"), "{port}")),
    "ws_ceiling": ServerSpec(
        "ws_ceiling", (sys.executable, str(BENCH_DIR / "raw_server.py"), "{port}", "--ws")
    ),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: str, argv: list[str]) -> list[str]:
    """Pin to ``cpu`` when the machine has two or more CPUs."""
    if (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpu, *argv]
    return argv


def wait_until_accepting(port: int, process: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before accepting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start accepting connections in time")


@contextmanager
def running(spec: ServerSpec, app: str) -> Iterator[tuple[int, int]]:
    """Start ``spec`` serving ``app`` pinned to the server CPU; yields (pid, port)."""
    port = free_port()
    argv = [part.format(app=app, port=port) for part in spec.argv]
    env = dict(os.environ, PYTHONPATH=str(BENCH_DIR))
    env.update(spec.env)
    process = subprocess.Popen(
        pinned(SERVER_CPU, argv),
        cwd=BENCH_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until_accepting(port, process, 20.0)
        yield process.pid, port
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    if process.stderr is not None:
        process.stderr.close()
