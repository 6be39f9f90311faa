"""``--workers N``: a supervisor process that keeps N workers serving one listening socket.

The supervisor binds the socket, forks the workers (each imports the app itself) and then only
watches them:

* a worker that dies, or doesn't answer a health-check ping within
  ``--timeout-worker-healthcheck`` (its event loop is blocked), is replaced;
* a worker that fails at startup (import error, lifespan startup failure) stops the supervisor
  with that worker's exit status, instead of a respawn loop;
* a worker that reached ``--limit-max-requests`` says so, stops accepting and finishes its
  requests while its replacement starts;
* SIGHUP replaces every worker one by one: a new worker first, the old one stopped gracefully
  only once the new one serves, so capacity never drops and no request fails.  If a new worker
  fails to start, the restart is abandoned and the old workers keep serving;
* SIGTTIN / SIGTTOU add / remove a worker (never fewer than one);
* SIGINT / SIGTERM stop every worker gracefully (SIGTERM to each; a second signal forces them),
  within ``--timeout-graceful-shutdown`` when it is set.

The connections queue in the socket's backlog while no worker accepts them, so a restart
loses none.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import time

from esg import metrics
from esg.config import Config
from esg.logging import show_process_id
from esg.supervisors.signals import SignalInbox
from esg.supervisors.worker import PONG, READY, RETIRING, WorkerProcess, describe_exit
from esg.user_errors import fail

logger = logging.getLogger("esg.error")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CONTROL_SIGNALS = (*STOP_SIGNALS, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
PING_INTERVAL = 1.0  # seconds between health-check pings to one worker
LOOP_INTERVAL = 0.5
METRICS_CLIENT_TIMEOUT = 1.0  # seconds a scraper has to send its request head


class Multiprocess:
    """``Multiprocess(config, sockets).run()`` supervises until stopped; returns the exit code."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.target = max(1, int(config.workers))
        self.workers: list[WorkerProcess] = []
        self.restart_queue: list[WorkerProcess] = []
        self.should_exit = False
        self.stop_signals_seen = 0
        self.exit_code = 0
        self.selector = selectors.DefaultSelector()
        self.signals = SignalInbox(CONTROL_SIGNALS)
        # --metrics: the sum over every worker, served here (see esg.metrics).
        self.metrics_socket: socket.socket | None = None
        self.retired_metrics = metrics.empty()  # counters of workers that are gone
        self.restarts = dict.fromkeys(metrics.RESTART_CAUSES, 0)

    # -- running ---------------------------------------------------------------------------

    def run(self) -> int:
        show_process_id()
        logger.info("Started supervisor process [%d] for %d workers", os.getpid(), self.target)
        self.signals.install(self.selector, ("wake", None))
        if self.config.metrics:
            self._start_metrics()
        try:
            while len(self.workers) < self.target and not self.should_exit:
                self._spawn()
            while self.workers or not self.should_exit:
                self._wait()
                self._handle_signals()
                self._reap()
                self._check_health()
                if not self.should_exit:
                    self._restart_next()
                    self._adjust_worker_count()
        finally:
            self.signals.restore()
            for worker in self.workers:  # only after an unexpected error
                worker.signal(signal.SIGKILL)
                worker.close()
            self.selector.close()
            if self.metrics_socket is not None:
                self.metrics_socket.close()
            self.signals.close()
        logger.info("Stopped supervisor process [%d]", os.getpid())
        return self.exit_code

    def _wait(self) -> None:
        for key, _ in self.selector.select(LOOP_INTERVAL):
            kind, worker = key.data
            if kind == "wake":
                self.signals.drain()
            elif kind == "channel":
                self._read_channel(worker)
            elif kind == "metrics":
                self._accept_metrics_client()

    # -- workers ---------------------------------------------------------------------------

    def _spawn(self, replaces: WorkerProcess | None = None) -> WorkerProcess:
        # The child closes what belongs to the supervisor: the other workers' channels, the
        # wake-up socketpair and the selector.
        inherited = [w.fileno() for w in self.workers]
        inherited += [*self.signals.fds(), self.selector.fileno()]
        if self.metrics_socket is not None:
            inherited.append(self.metrics_socket.fileno())
        slot = metrics.new_slot() if self.metrics_socket is not None else None
        worker = WorkerProcess(self.config, self.sockets, inherited, slot)
        worker.replaces = replaces
        worker.start()
        self.workers.append(worker)
        self.selector.register(worker.channel, selectors.EVENT_READ, ("channel", worker))
        self.selector.register(worker.process.sentinel, selectors.EVENT_READ, ("exit", worker))
        logger.info("Started worker process [%d]", worker.pid)
        return worker

    def _read_channel(self, worker: WorkerProcess) -> None:
        data, open_ = worker.read_messages()
        if READY in data and not worker.ready:
            worker.ready = True
            worker.last_pong = time.monotonic()
            old = worker.replaces
            if old is not None:
                worker.replaces = None
                logger.info("Worker [%d] replaces worker [%d]", worker.pid, old.pid)
                self.restarts["sighup"] += 1
                old.stop(self.config.timeout_graceful_shutdown)
        if PONG in data:
            worker.ping_sent_at = None
            worker.last_pong = time.monotonic()
        if RETIRING in data and not worker.retiring:
            worker.retiring = True
            self.restarts["request_limit"] += 1
            logger.info(
                "Worker [%d] reached its request limit and finishes its open requests; "
                "starting its replacement",
                worker.pid,
            )
        if not open_:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.channel)

    def _reap(self) -> None:
        for worker in list(self.workers):
            code = worker.process.exitcode
            if code is None:
                continue
            # What it said before exiting may still be unread (its exit and its last message
            # can come in one select() round, the exit seen first): a worker that announced
            # reaching its request limit is a retirement, not a death.
            with contextlib.suppress(OSError):
                self._read_channel(worker)
            self._forget(worker)
            self._worker_exited(worker, code)

    def _forget(self, worker: WorkerProcess) -> None:
        self.workers.remove(worker)
        for fileobj in (worker.channel, worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fileobj)
        if worker in self.restart_queue:
            self.restart_queue.remove(worker)
        if worker.metrics_slot is not None:
            # Its counters stay in the totals; its gauges (open connections ...) don't.
            metrics.add(
                self.retired_metrics, metrics.without_gauges(metrics.read_slot(worker.metrics_slot))
            )
            worker.metrics_slot.close()
        worker.close()

    def _worker_exited(self, worker: WorkerProcess, code: int) -> None:
        status = describe_exit(code)
        if worker.stopping or worker.retiring or self.should_exit:
            logger.info("Worker [%d] stopped (%s)", worker.pid, status)
            return
        if not worker.ready:
            if worker.replaces is not None:
                logger.error(
                    "A new worker [%d] failed to start (%s): restart abandoned, the old "
                    "workers keep serving",
                    worker.pid,
                    status,
                )
                self.restart_queue.clear()
                return
            logger.error("Worker [%d] failed to start (%s): stopping", worker.pid, status)
            self.exit_code = code if code > 0 else 1
            self._stop_all()
            return
        logger.error("Worker [%d] died (%s): starting a new one", worker.pid, status)
        self.restarts["died"] += 1

    def _check_health(self) -> None:
        now = time.monotonic()
        timeout = self.config.timeout_worker_healthcheck
        for worker in self.workers:
            if now >= worker.stop_deadline:
                logger.error(
                    "Worker [%d] did not stop within the graceful shutdown timeout: killing it",
                    worker.pid,
                )
                worker.stop_deadline = float("inf")
                worker.signal(signal.SIGKILL)
                continue
            if not worker.ready or not worker.serving or timeout is None or timeout <= 0:
                continue
            if worker.ping_sent_at is None:
                if now - worker.last_pong >= PING_INTERVAL:
                    worker.ping(now)
            elif now - worker.ping_sent_at > timeout:
                logger.error(
                    "Worker [%d] did not answer the health check within %g s: killing it",
                    worker.pid,
                    timeout,
                )
                worker.ping_sent_at = None
                worker.stopping = True  # its replacement starts at once
                self.restarts["unresponsive"] += 1
                worker.signal(signal.SIGKILL)

    def _adjust_worker_count(self) -> None:
        # A new worker that replaces an old one isn't counted until the old one goes.
        serving = [w for w in self.workers if w.serving and w.replaces is None]
        if len(serving) < self.target:
            for _ in range(self.target - len(serving)):
                self._spawn()
        elif len(serving) > self.target:
            for worker in serving[: len(serving) - self.target]:  # the oldest first
                logger.info("Stopping worker [%d]: %d workers wanted", worker.pid, self.target)
                worker.stop(self.config.timeout_graceful_shutdown)

    def _restart_next(self) -> None:
        """SIGHUP: one replacement at a time; the next starts once the last one serves."""
        if any(w.replaces is not None for w in self.workers):
            return
        while self.restart_queue:
            old = self.restart_queue.pop(0)
            if old in self.workers and old.serving:
                self._spawn(replaces=old)
                return
        self.restart_queue.clear()

    def _stop_all(self) -> None:
        self.should_exit = True
        self.restart_queue.clear()
        for worker in self.workers:
            worker.stop(self.config.timeout_graceful_shutdown)
        # No worker will be started again: let go of the listening sockets, so that once the
        # workers have closed theirs new connections are refused (which a load balancer retries
        # elsewhere) instead of waiting in the backlog to be reset when esg exits.  (A rolling
        # restart or a scale-down keeps them: other workers serve on.)
        for sock in self.sockets:
            sock.close()

    # -- metrics ---------------------------------------------------------------------------

    def _start_metrics(self) -> None:
        host, port = self.config.metrics_host, self.config.metrics_port
        try:
            self.metrics_socket = metrics.bind_metrics_socket(host, port)
        except OSError as exc:
            fail(f"Could not serve metrics on {host}:{port}: {metrics.os_error_reason(exc)}")
        self.selector.register(self.metrics_socket, selectors.EVENT_READ, ("metrics", None))
        logger.info("Metrics for all workers on http://%s:%d/metrics", host, port)

    def _accept_metrics_client(self) -> None:
        """Answer one scrape.  Heads are tiny and so are answers: the supervisor serves them
        in place, with a short timeout, rather than keep connection state in its loop."""
        assert self.metrics_socket is not None
        try:
            conn, _ = self.metrics_socket.accept()
        except OSError:
            return
        with conn:
            # One deadline for the whole head, so a client sending a byte at a time can't
            # hold the supervisor (and its health checks) for long.
            deadline = time.monotonic() + METRICS_CLIENT_TIMEOUT
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) <= metrics.MAX_REQUEST_HEAD:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    conn.settimeout(remaining)
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                if b"\r\n\r\n" in head:
                    conn.settimeout(METRICS_CLIENT_TIMEOUT)
                    conn.sendall(metrics.answer(head, self._metrics_body()))
            except OSError:
                return

    def _metrics_body(self) -> bytes:
        total = metrics.empty()
        metrics.add(total, self.retired_metrics)
        for worker in self.workers:
            if worker.metrics_slot is not None:
                metrics.add(total, metrics.read_slot(worker.metrics_slot))
        serving = sum(1 for w in self.workers if w.ready and w.serving)
        extra = [
            "# HELP esg_workers Worker processes serving.",
            "# TYPE esg_workers gauge",
            f"esg_workers {serving}",
            "# HELP esg_worker_restarts_total Workers replaced, by cause.",
            "# TYPE esg_worker_restarts_total counter",
        ]
        extra += [f'esg_worker_restarts_total{{cause="{c}"}} {n}' for c, n in self.restarts.items()]
        return metrics.render(total, extra)

    # -- signals ---------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        for signum in self.signals.take():
            if signum in STOP_SIGNALS:
                self._on_stop_signal(signum)
            elif self.should_exit:
                continue
            elif signum == signal.SIGHUP:
                logger.info("Received SIGHUP: replacing the workers one by one")
                self.restart_queue = [w for w in self.workers if w.serving]
            elif signum == signal.SIGTTIN:
                self.target += 1
                logger.info("Received SIGTTIN: %d workers wanted", self.target)
            elif signum == signal.SIGTTOU:
                if self.target > 1:
                    self.target -= 1
                logger.info("Received SIGTTOU: %d workers wanted", self.target)

    def _on_stop_signal(self, signum: int) -> None:
        self.stop_signals_seen += 1
        name = signal.Signals(signum).name
        if self.stop_signals_seen == 1:
            logger.info("Received %s: stopping the workers gracefully", name)
            self._stop_all()
        elif self.stop_signals_seen == 2:
            # A worker that got SIGTERM takes SIGINT as "stop now" (requests are cancelled).
            logger.info("Received %s again: stopping the workers now", name)
            for worker in self.workers:
                worker.signal(signal.SIGINT)
        else:
            for worker in self.workers:
                worker.signal(signal.SIGKILL)
