"""The systemd units in examples/systemd, run the way systemd would run them.

The socket address and the esg command line are read from the unit files themselves, so the
example can't drift from what is tested.  ``systemd-socket-activate`` (from the systemd
package) hands esg the listening socket as fd 3 exactly as ``esg.socket`` would; without it, a
small launcher does the same (bind, put the socket on fd 3, exec esg).
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_e2e_workers import all_serving, serving_pids, worker_pids
from utils import (
    REPO_DIR,
    TESTS_DIR,
    ServerProcess,
    _wait_until_ready,
    free_port,
    subprocess_env,
    wait_for,
)

pytestmark = pytest.mark.slow

UNITS = REPO_DIR / "examples" / "systemd"
LAUNCHER = """
import os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((host, port))
sock.listen(2048)
if sock.fileno() != 3:
    os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[3], sys.argv[3:])
"""


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def exec_start_arguments() -> list[str]:
    """ExecStart's arguments after the esg executable, with the app swapped for a test app."""
    words = shlex.split(read_unit("esg.service")["Service"]["ExecStart"])
    assert Path(words[0]).name == "esg", words
    arguments = words[1:]
    assert arguments[0] == "example:app"
    return ["apps.workers:app", *arguments[1:]]


@pytest.fixture
def activated_server() -> Iterator[ServerProcess]:
    listen = read_unit("esg.socket")["Socket"]["ListenStream"]
    host, _ = listen.rsplit(":", 1)
    port = free_port()  # the unit's port (8000) may be taken on a test machine
    arguments = exec_start_arguments()
    assert arguments[arguments.index("--fd") + 1] == "3"
    esg = [sys.executable, "-m", "esg", *arguments, "--app-dir", str(TESTS_DIR)]
    activate = shutil.which("systemd-socket-activate")
    if activate is not None:
        command = [activate, "-l", f"{host}:{port}", *esg]
    else:
        command = [sys.executable, "-c", LAUNCHER, host, str(port), *esg]
    with tempfile.TemporaryDirectory(prefix="esg-systemd-") as tmp:
        log = Path(tmp) / "stderr.txt"
        with open(log, "wb") as output:
            proc = subprocess.Popen(
                command,
                env=subprocess_env({"FORWARDED_ALLOW_IPS": "127.0.0.1"}),
                cwd=str(TESTS_DIR),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
        server = ServerProcess(proc, log, port, None)
        server.host = host
        try:
            _wait_until_ready(server, 20)
            yield server
        finally:
            server.stop()


def test_the_units_describe_socket_activation_with_reload_and_graceful_stop() -> None:
    service = read_unit("esg.service")["Service"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillMode"] == "mixed"  # SIGTERM to the supervisor only
    arguments = exec_start_arguments()
    grace = int(arguments[arguments.index("--timeout-graceful-shutdown") + 1])
    assert int(service["TimeoutStopSec"]) > grace
    assert read_unit("esg.service")["Unit"]["Requires"] == "esg.socket"


def test_socket_activated_workers_serve_reload_and_stop(activated_server: ServerProcess) -> None:
    supervisor = activated_server.proc.pid
    arguments = exec_start_arguments()
    workers = int(arguments[arguments.index("--workers") + 1])
    assert wait_for(lambda: all_serving(activated_server, workers))
    before = worker_pids(supervisor)
    assert len(before) == workers
    assert serving_pids(activated_server, 2) <= before
    activated_server.signal(signal.SIGHUP)  # systemctl reload
    assert wait_for(lambda: not (worker_pids(supervisor) & before), timeout=40)
    assert serving_pids(activated_server, 1) <= worker_pids(supervisor)
    activated_server.signal(signal.SIGTERM)  # systemctl stop (KillMode=mixed)
    assert activated_server.wait(30) == 0, activated_server.stderr()
    assert "Traceback" not in activated_server.stderr()
