"""Helpers for end-to-end tests: run ``python -m esg`` in a subprocess and talk to it.

``run_server("apps.basic:app", "--root-path", "/api")`` starts esg on a free loopback port (or a
UNIX socket with ``uds=``), waits until it accepts connections and always stops and reaps the
process afterwards.  The subprocess inherits the environment (so ``ESG_NO_EXTENSIONS`` reaches
it) and imports apps from ``tests/`` (``apps.basic`` is ``tests/apps/basic.py``).

``RawConnection`` is a plain socket plus a small HTTP/1.x response reader, for the tests that
need exact bytes (pipelining, 100-continue, malformed requests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
STARTUP_TIMEOUT = 20.0  # generous: two cores shared with other test runs
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def esg_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "esg", *args]


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment (ESG_NO_EXTENSIONS included) with esg importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_DIR), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


class ServerProcess:
    """A running esg subprocess; its stderr is collected in a file (a pipe could fill up)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], stderr_path: Path, port: int | None, uds: str | None
    ) -> None:
        self.proc = proc
        self.stderr_path = stderr_path
        self.port = port
        self.uds = uds
        self.host = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A new client socket connected to the server."""
        if self.uds is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self.uds)
            except OSError:
                sock.close()
                raise
            return sock
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def raw(self, timeout: float = 10.0) -> RawConnection:
        return RawConnection(self.connect(timeout))

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it doesn't stop in time; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(STOP_TIMEOUT)


def _accepts_connections(server: ServerProcess) -> bool:
    try:
        server.connect(timeout=1.0).close()
    except OSError:
        return False
    return True


def _wait_until_ready(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"esg exited with status {server.proc.returncode} before accepting "
                f"connections:\n{server.stderr()}"
            )
        if _accepts_connections(server):
            return
        time.sleep(0.05)
    raise RuntimeError(f"esg did not accept connections within {timeout} s:\n{server.stderr()}")


@contextlib.contextmanager
def run_server(
    app: str,
    *args: str,
    uds: str | None = None,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    port: int | None = None,
    ready_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[ServerProcess]:
    """Run esg serving ``app`` with extra CLI ``args``; stop and clean up on exit.

    ``command`` replaces the whole command line (e.g. a script calling ``esg.run()``); it must
    then listen on ``port`` (the caller picks it with ``free_port()``).
    """
    if command is None:
        port = None if uds is not None else free_port()
        where = ["--uds", uds] if uds is not None else ["--port", str(port)]
        command = esg_command(app, "--app-dir", str(TESTS_DIR), *where, *args)
    with tempfile.TemporaryDirectory(prefix="esg-e2e-") as tmp:
        stderr_path = Path(tmp) / "stderr.txt"
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                command,
                env=subprocess_env(env),
                cwd=str(TESTS_DIR),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        server = ServerProcess(proc, stderr_path, port, uds)
        try:
            _wait_until_ready(server, ready_timeout)
            yield server
        finally:
            server.stop()
            if uds is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(uds)


def run_to_exit(
    app: str, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run an esg command that is expected to stop by itself (bad app, port in use ...)."""
    command = esg_command(app, "--app-dir", str(TESTS_DIR), *args)
    return subprocess.run(
        command,
        env=subprocess_env(env),
        cwd=str(TESTS_DIR),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- raw HTTP over a socket --------------------------------------------------------------------


class Response:
    """One parsed HTTP/1.x response."""

    def __init__(self, status: int, reason: str, version: str) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.chunked = False
        self.chunks: list[bytes] = []

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_names(self) -> list[str]:
        return [key.lower() for key, _ in self.headers]


class ConnectionClosed(Exception):
    """The server closed the connection before a complete response arrived."""


class RawConnection:
    """A client socket with a read buffer and a response reader; use as a context manager."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionClosed(f"connection closed; unparsed bytes: {self.buffer[:200]!r}")
        self.buffer += data

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_to_close(self) -> bytes:
        while True:
            try:
                self._fill()
            except ConnectionClosed:
                data, self.buffer = self.buffer, b""
                return data

    def read_head(self) -> Response:
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head[:-4].split("\r\n")
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        response = Response(int(status), reason, version)
        for line in lines:
            name, _, value = line.partition(":")
            response.headers.append((name, value.strip()))
        return response

    def read_response(self, head_request: bool = False) -> Response:
        """Read one whole response (Content-Length, chunked, or up to the connection's close)."""
        response = self.read_head()
        if head_request or response.status in (204, 304) or response.status < 200:
            return response
        length = response.header("content-length")
        if (response.header("transfer-encoding") or "").lower() == "chunked":
            response.chunked = True
            response.chunks = self._read_chunks()
            response.body = b"".join(response.chunks)
        elif length is not None:
            response.body = self.read_exact(int(length))
        else:
            response.body = self.read_to_close()
        return response

    def _read_chunks(self) -> list[bytes]:
        chunks: list[bytes] = []
        while True:
            size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
            if size == 0:
                self.read_until(b"\r\n")  # no trailers expected
                return chunks
            chunks.append(self.read_exact(size))
            if self.read_exact(2) != b"\r\n":
                raise AssertionError("chunk not followed by CRLF")

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True once the server has closed (EOF or reset); False if data or nothing arrives."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        if data:
            self.buffer += data
            return False
        return True


def request_bytes(
    method: str = "GET",
    path: str = "/",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """A well-formed request; Host is added, Content-Length too when there's a body."""
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    all_headers = dict(headers or {})
    if body and "Content-Length" not in all_headers and "Transfer-Encoding" not in all_headers:
        all_headers["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
