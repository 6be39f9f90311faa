"""Run the real nginx and HAProxy, and esg instances, for the tests in tests/deploy.

The proxies run from the example configurations in ``examples/nginx`` and ``examples/haproxy``
as they are: the nginx file gets its ``@NAME@`` placeholders replaced (nothing else) and is
included from a small nginx.conf of the test's own (pid file, logs and temporary files in the
test's directory, so no root-only path is needed); HAProxy reads its file untouched and gets
the addresses from environment variables, which it expands itself.

A missing ``nginx``/``haproxy``/``wrk`` skips the test with one line saying what to install;
with ``ESG_REQUIRE_PROXIES=1`` (set by ``.ci/run``, which installs them) it fails instead.
Every wait here is bounded; every process started here is stopped by the context manager that
started it, the pid files and sockets live in a temporary directory that goes with it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from utils import REPO_DIR, STARTUP_TIMEOUT, STOP_TIMEOUT, esg_command, subprocess_env, wait_for

DEPLOY_DIR = Path(__file__).resolve().parent
NGINX_EXAMPLE = REPO_DIR / "examples" / "nginx" / "esg.conf"
HAPROXY_EXAMPLE = REPO_DIR / "examples" / "haproxy" / "haproxy.cfg"
REQUIRE_PROXIES = os.environ.get("ESG_REQUIRE_PROXIES", "") not in ("", "0")
PACKAGES = {"nginx": "nginx", "haproxy": "haproxy", "wrk": "wrk"}


def require_program(name: str) -> str:
    """The program's path; a skip (or, with ESG_REQUIRE_PROXIES=1, a failure) without it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is not None:
        return path
    message = f"{name} is not installed (apt-get install {PACKAGES.get(name, name)})"
    if REQUIRE_PROXIES:
        pytest.fail(f"ESG_REQUIRE_PROXIES=1 but {message}")
    pytest.skip(message)


def port_free_on(*hosts: str) -> int:
    """A TCP port nothing listens on at any of ``hosts`` (each loopback address a "host")."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port: int = probe.getsockname()[1]
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {hosts}")


def accepts(address: tuple[str, int] | str) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory other users may traverse: nginx's workers run as ``nobody`` when
    the tests run as root, and must reach an esg UNIX socket in it (the socket is 0666)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(signum)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(STOP_TIMEOUT)


# -- esg ---------------------------------------------------------------------------------------


class Esg:
    """One esg instance, started in a session of its own so that it can be killed whole (the
    supervisor and its workers: a host that dies).  ``start()`` again after a stop."""

    def __init__(self, args: list[str], log: Path, address: tuple[str, int] | str) -> None:
        self.command = esg_command(*args)
        self.log = log
        self.address = address
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=subprocess_env(),
                cwd=str(DEPLOY_DIR),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not accepts(self.address):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"esg did not start serving:\n{log_tail(self.log)}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill_all(self) -> None:
        """SIGKILL to the supervisor and every worker at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a worker left behind, if any


def esg_app_args() -> list[str]:
    """The app: tests/deploy/proxy_app.py (examples/deploy_app.py plus test routes)."""
    return ["proxy_app:app", "--app-dir", str(DEPLOY_DIR), "--no-access-log"]


# -- nginx -------------------------------------------------------------------------------------

NGINX_MAIN = """\
# Written by tests/deploy/proxies.py: everything nginx writes goes to this directory.
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/esg.conf;
}}
"""


def render_example(text: str, values: dict[str, str]) -> str:
    """The example with each ``@NAME@`` replaced; every placeholder must get a value."""
    rendered = re.sub(r"@([A-Z_]+)@", lambda match: values[match.group(1)], text)
    assert "@" not in re.sub(r"#.*", "", rendered), "a placeholder is left in the config"
    return rendered


class Nginx:
    def __init__(self, tmp: Path, http_port: int, https_port: int) -> None:
        self.tmp = tmp
        self.http_port = http_port
        self.https_port = https_port
        self.proc: subprocess.Popen[bytes] | None = None

    def error_log(self) -> str:
        return log_tail(self.tmp / "error.log")


@contextlib.contextmanager
def run_nginx(tmp: Path, upstream: str, certificate: Path, key: Path) -> Iterator[Nginx]:
    """nginx with examples/nginx/esg.conf, proxying to ``upstream`` (``host:port`` or
    ``unix:PATH``), on free HTTP and HTTPS ports of 127.0.0.1."""
    binary = require_program("nginx")
    http_port, https_port = port_free_on("127.0.0.1"), port_free_on("127.0.0.1")
    values = {
        "ESG_UPSTREAM": upstream,
        "HTTP_PORT": f"127.0.0.1:{http_port}",
        "HTTPS_PORT": f"127.0.0.1:{https_port}",
        "TLS_CERTIFICATE": str(certificate),
        "TLS_KEY": str(key),
    }
    (tmp / "esg.conf").write_text(render_example(NGINX_EXAMPLE.read_text(), values))
    # As root, nginx's workers would run as "nobody:nobody", a group Debian doesn't have.
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(NGINX_MAIN.format(tmp=tmp, user=user))
    nginx = Nginx(tmp, http_port, https_port)
    command = [binary, "-p", f"{tmp}/", "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]
    with open(tmp / "nginx.out", "wb") as out:
        proc = subprocess.Popen(
            [*command, "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    nginx.proc = proc
    try:
        ready = wait_for(
            lambda: (
                proc.poll() is not None
                or (accepts(("127.0.0.1", http_port)) and accepts(("127.0.0.1", https_port)))
            ),
            timeout=STARTUP_TIMEOUT,
        )
        if not ready or proc.poll() is not None:
            raise RuntimeError(
                f"nginx did not start:\n{log_tail(tmp / 'nginx.out')}\n{nginx.error_log()}"
            )
        yield nginx
    finally:
        stop_process(proc, signal.SIGTERM)  # nginx's fast shutdown


# -- HAProxy -----------------------------------------------------------------------------------


class HAProxy:
    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.stats_socket = tmp / "admin.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5.0)
            sock.connect(str(self.stats_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` by "proxy/server" (FRONTEND and BACKEND rows included)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {f"{row['pxname']}/{row['svname']}": row for row in rows if row.get("pxname")}

    def server_status(self, server: str) -> str:
        return self.stats()[f"esg/{server}"]["status"]

    def log(self) -> str:
        return log_tail(self.tmp / "haproxy.out")


@contextlib.contextmanager
def run_haproxy(tmp: Path, hosts: list[str]) -> Iterator[HAProxy]:
    """HAProxy with examples/haproxy/haproxy.cfg, untouched, balancing ``hosts``
    (``address:port`` each) and listening on a free port of 127.0.0.1."""
    binary = require_program("haproxy")
    port = port_free_on("127.0.0.1")
    haproxy = HAProxy(tmp, port)
    env = dict(os.environ)
    env["ESG_LB_BIND"] = f"127.0.0.1:{port}"
    env["ESG_LB_STATS"] = str(haproxy.stats_socket)
    for number, host in enumerate(hosts, 1):
        env[f"ESG_HOST_{number}"] = host
    with open(tmp / "haproxy.out", "wb") as out:
        # -db: stay in the foreground, one process, logs on stderr.
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(HAPROXY_EXAMPLE)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    haproxy.proc = proc
    try:
        ready = wait_for(
            lambda: (
                proc.poll() is not None
                or (accepts(("127.0.0.1", port)) and accepts(str(haproxy.stats_socket)))
            ),
            timeout=STARTUP_TIMEOUT,
        )
        if not ready or proc.poll() is not None:
            raise RuntimeError(f"haproxy did not start:\n{haproxy.log()}")
        yield haproxy
    finally:
        stop_process(proc, signal.SIGUSR1)  # HAProxy's soft stop: finish, then exit
