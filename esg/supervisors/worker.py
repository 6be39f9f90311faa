"""One worker process of a supervised esg, seen from both sides.

The supervisor forks the worker (``WorkerProcess.start``) before the app is imported, so each
worker imports the app afresh: a restart serves the code as it is on disk now.  The two talk
over a socketpair, one byte per message:

* worker → supervisor: ``READY`` once it serves (lifespan startup done, listening);
  ``RETIRING`` when it reached ``--limit-max-requests`` and stops accepting;
  ``PONG`` in answer to a ``PING``.
* supervisor → worker: ``PING``.  The answer comes from the worker's event loop, so a worker
  whose loop is blocked (an app stuck in a synchronous call) fails the health check.

A worker that loses its supervisor (the channel reaches EOF) shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING

from esg.server import Server

if TYPE_CHECKING:
    from esg.config import Config

READY = b"R"
RETIRING = b"L"
PING = b"P"
PONG = b"O"

# Signals the supervisor handles; a worker starts from the defaults (esg's Server then installs
# its own for SIGINT/SIGTERM).
SUPERVISOR_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)

logger = logging.getLogger("esg.error")


class WorkerProcess:
    """The supervisor's handle on one worker: its process, channel and state."""

    def __init__(
        self,
        config: Config,
        sockets: list[socket.socket],
        close_in_child: list[int],
        metrics_slot: mmap.mmap | None = None,
    ):
        self.config = config
        self.sockets = sockets
        # With --metrics under the supervisor: the worker publishes its numbers here.
        self.metrics_slot = metrics_slot
        self.channel, child_end = socket.socketpair()
        self.channel.setblocking(False)
        context = multiprocessing.get_context("fork")
        self.process = context.Process(
            target=_worker_main,
            args=(
                config,
                sockets,
                child_end,
                [*close_in_child, self.channel.fileno()],
                metrics_slot,
            ),
            name="esg-worker",
        )
        self._child_end = child_end
        self.pid = 0  # known once started
        self.started_at = 0.0
        self.ready = False  # sent READY
        self.retiring = False  # sent RETIRING: it stops by itself
        self.stopping = False  # the supervisor asked it to stop
        self.stop_deadline = float("inf")  # SIGKILL after this (monotonic)
        self.ping_sent_at: float | None = None  # an unanswered PING
        self.last_pong = 0.0
        self.replaces: WorkerProcess | None = None  # the old worker a SIGHUP restart replaces

    @property
    def serving(self) -> bool:
        """Counts towards the worker count: not on its way out."""
        return not (self.retiring or self.stopping)

    def start(self) -> None:
        self.process.start()
        self.pid = self.process.pid or 0
        self._child_end.close()
        self.started_at = time.monotonic()

    def fileno(self) -> int:
        return self.channel.fileno()

    def read_messages(self) -> tuple[bytes, bool]:
        """What the worker sent since the last call, and whether its end is still open."""
        chunks: list[bytes] = []
        while True:
            try:
                data = self.channel.recv(64)
            except BlockingIOError:
                return b"".join(chunks), True
            except OSError:
                return b"".join(chunks), False
            if not data:
                return b"".join(chunks), False
            chunks.append(data)

    def ping(self, now: float) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(PING)
            self.ping_sent_at = now

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def stop(self, grace: float | None) -> None:
        """Ask for a graceful stop; killed if still running ``grace`` (+ a margin) seconds on."""
        if self.stopping:
            return
        self.stopping = True
        self.signal(signal.SIGTERM)
        if grace is not None:
            self.stop_deadline = time.monotonic() + grace + 5.0

    def close(self) -> None:
        self.channel.close()
        self.process.join(0)
        with contextlib.suppress(ValueError):
            self.process.close()


def describe_exit(code: int) -> str:
    """A worker's exit code as the supervisors' log lines say it: "exit status 3", "killed by
    SIGKILL" (multiprocessing gives a signal as a negative code)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


class SupervisedServer(Server):
    """An esg ``Server`` that reports to its supervisor over the channel."""

    def __init__(self, config: Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        # Other workers serve on: keep-alive clients get their next request answered here
        # with connection: close rather than race a close (Server.retire_connections).
        self.retire_keep_alive = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._on_channel)
        self._send(READY)

    def request_limit_reached(self) -> None:
        self._send(RETIRING)  # first, so the supervisor starts the replacement at once
        super().request_limit_reached()

    def _on_channel(self) -> None:
        try:
            data = self.channel.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # The supervisor is gone: nobody would replace or stop us, so stop.
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
            if not self.should_exit:
                logger.warning("Lost the supervisor: shutting down")
                self.handle_exit(signal.SIGTERM, None)
            return
        if PING in data:
            self._send(PONG)

    def _send(self, message: bytes) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(message)


def _worker_main(
    config: Config,
    sockets: list[socket.socket],
    channel: socket.socket,
    close_fds: list[int],
    metrics_slot: mmap.mmap | None,
) -> None:
    """The worker process: runs in the fork, imports the app, serves until told to stop."""
    signal.set_wakeup_fd(-1)
    for signum in SUPERVISOR_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    for fd in close_fds:  # the supervisor's ends of every channel, ours included
        with contextlib.suppress(OSError):
            os.close(fd)
    from esg.logging import show_process_id

    show_process_id()
    config.setup_event_loop()
    try:
        config.load()  # a bad import string: logged as one line, SystemExit(1)
    except Exception:
        # An error inside the app's modules (a syntax error mid-edit): the user's traceback,
        # without multiprocessing's frames around it.
        logger.exception("Error loading the app %r", config.app)
        sys.exit(1)
    server = SupervisedServer(config, channel)
    server.metrics_slot = metrics_slot  # None: a lone worker (--reload) serves its own metrics
    server.run(sockets=sockets)
    if server.startup_failed:
        sys.exit(3)
