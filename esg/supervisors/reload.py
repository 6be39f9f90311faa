"""``--reload``: a supervisor that restarts the worker whenever a watched source file changes.

The reloader process holds the listening socket and never imports the app.  It forks one worker
(``esg.supervisors.worker.WorkerProcess``) that imports the app afresh and serves the inherited
socket, and watches the ``--reload-dir`` directories (default: the current directory).  When a
file that passes the filters changes, it logs ``Detected changes in 'app.py', reloading``, stops
the worker gracefully, waits for it to exit and forks a new one.  The socket stays open in the
reloader all along, so connections made during the restart wait in its backlog: none is refused.

* A worker that fails to start (a syntax error in the file just saved, a lifespan startup
  failure) or that dies later doesn't stop the reloader: it logs one line and waits for the
  next change, which starts a new worker.  A worker that stops after ``--limit-max-requests``
  is replaced at once.
* Before a new worker starts, the cached bytecode (``__pycache__/*.pyc``) of the changed ``.py``
  files is removed: Python checks it against the source's size and modification time in whole
  seconds, so a same-size edit within the second of the previous save would be served stale.
* Stopping a worker: SIGTERM, then esg's "stop now" (SIGINT) once ``RELOAD_GRACE`` seconds have
  passed if ``--timeout-graceful-shutdown`` is not set (a dev server must not hang on an open
  stream), and SIGKILL when ``WorkerProcess.stop``'s deadline (that timeout + 5 s) passes.
* Signals: SIGINT / SIGTERM stop the worker gracefully and exit with status 0; a second one
  stops it now (SIGINT to the worker), a third kills it.  SIGHUP forces a reload.

Filters (``ChangeFilter``): a file triggers a reload when its name, or its path relative to a
watched directory, matches a ``--reload-include`` glob (``*.py`` by default) and no
``--reload-exclude`` glob (``.*``, ``.py[cod]``, ``.sw.*``, ``~*`` by default).  A default is
dropped by naming it in the other option (``--reload-exclude '*.py'``, ``--reload-include
'.*'``), and an include without wildcards (``.env``) wins over the excludes.  Globs are
``fnmatch`` patterns (``*`` also matches ``/``, so ``static/*`` covers the whole tree below
``static``).  Directories named like ``.git``, ``__pycache__``, ``.venv``, ``node_modules`` or
``site-packages`` (``IGNORED_DIR_NAMES``), the running virtualenv, directories matching an
exclude glob and existing directories given as ``--reload-exclude`` are never looked into.

Backends:

* watchfiles (when importable): its Rust watcher runs in a small child process, so the
  reloader stays single-threaded (forking the workers from a process with a running watcher
  thread would be unsafe) and learns of changes over a pipe it selects on together with its
  signals and the worker.  The child filters the events and exits when the reloader goes away.
  ``--reload-delay`` is the quiet time it waits for more events before reporting a batch.  If
  the child fails (e.g. the inotify watch limit), the reloader falls back to polling.
  watchfiles' own ``WATCHFILES_FORCE_POLLING`` is honoured (its Rust watcher then polls).
* polling: every ``--reload-delay`` seconds the reloader walks the directories and compares
  each included file's modification time, size and inode with the previous walk.  Set
  ``ESG_RELOAD_POLL=1`` to use it even when watchfiles is installed (network or container file
  systems that don't report events).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import selectors
import signal
import socket
import time
from typing import TYPE_CHECKING

from esg.logging import show_process_id
from esg.supervisors.signals import SignalInbox
from esg.supervisors.watch import (
    WATCHER_READY_WAIT,
    WATCHER_STOP_WAIT,
    ChangeFilter,
    PollingWatcher,
    WatchfilesWatcher,
    describe_changes,
    forget_bytecode,
    outermost,
    reload_roots,
)
from esg.supervisors.worker import READY, RETIRING, WorkerProcess, describe_exit

if TYPE_CHECKING:
    from esg.config import Config

__all__ = ["Reloader"]

logger = logging.getLogger("esg.error")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CONTROL_SIGNALS = (*STOP_SIGNALS, signal.SIGHUP)
POLL_ENV = "ESG_RELOAD_POLL"
LOOP_INTERVAL = 1.0  # longest sleep of the main loop
MIN_DELAY = 0.05  # floor of --reload-delay: 0 would spin
RELOAD_GRACE = 10.0  # seconds a worker gets to finish its requests without --timeout-graceful-...


# -- the reloader --------------------------------------------------------------------------------


class Reloader:
    """``Reloader(config, sockets).run()`` serves and reloads until stopped; returns 0."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.roots = reload_roots(config)
        self.change_filter = ChangeFilter.from_config(config, self.roots)
        self.delay = max(float(config.reload_delay), MIN_DELAY)
        self.worker: WorkerProcess | None = None
        self.watcher: WatchfilesWatcher | PollingWatcher | None = None
        self.start_pending = True  # start a worker once none is running
        self.changed: set[str] = set()  # files changed since the worker started
        self.force_at = float("inf")  # SIGINT the stopping worker then (monotonic)
        self.should_exit = False
        self.stop_signals_seen = 0
        self.selector = selectors.DefaultSelector()
        self.signals = SignalInbox(CONTROL_SIGNALS)

    # -- running ---------------------------------------------------------------------------

    def run(self) -> int:
        show_process_id()
        self.signals.install(self.selector, "wake")
        try:
            self._start_watcher()
            logger.info("Will watch for changes in these directories: %s", self.roots)
            while not (self.should_exit and self.worker is None):
                self._wait()
                self._handle_signals()
                self._check_watcher()
                self._reap()
                self._check_deadlines()
                if self.start_pending and self.worker is None and not self.should_exit:
                    self._start_worker_when_watching()
        finally:
            self.signals.restore()
            if self.worker is not None:  # only after an unexpected error
                self.worker.signal(signal.SIGKILL)
                self.worker.process.join(WATCHER_STOP_WAIT)
                self.worker.close()
            if self.watcher is not None:
                self.watcher.close()
            self.selector.close()
            self.signals.close()
        logger.info("Stopping reloader process [%d]", os.getpid())
        return 0

    def _wait(self) -> None:
        now = time.monotonic()
        deadlines = [now + LOOP_INTERVAL, self.force_at]
        if self.worker is not None:
            deadlines.append(self.worker.stop_deadline)
        if self.watcher is not None:
            deadlines.append(now + self.watcher.timeout(now))
            if isinstance(self.watcher, WatchfilesWatcher) and not self.watcher.ready:
                deadlines.append(self.watcher.ready_deadline)
        for key, _ in self.selector.select(max(0.0, min(deadlines) - now)):
            if key.data == "wake":
                self.signals.drain()
            elif key.data == "channel":
                self._read_channel()

    def _own_fds(self) -> list[int]:
        """What a child must close: the reloader's wake-up pair, selector and watcher pipe."""
        fds = [*self.signals.fds(), self.selector.fileno()]
        if isinstance(self.watcher, WatchfilesWatcher):
            fds += [self.watcher.read_fd, self.watcher.sentinel]
        return fds

    # -- watching --------------------------------------------------------------------------

    def _start_watcher(self) -> None:
        if os.environ.get(POLL_ENV, "") not in ("", "0"):
            reason = f"{POLL_ENV} is set"
        elif importlib.util.find_spec("watchfiles") is None:
            reason = "watchfiles is not installed"
        else:
            watcher = WatchfilesWatcher(
                outermost(self.roots),
                self.change_filter,
                self.delay,
                self._own_fds(),
                self.sockets,
            )
            self.watcher = watcher
            self.selector.register(watcher.read_fd, selectors.EVENT_READ, "watcher")
            self.selector.register(watcher.sentinel, selectors.EVENT_READ, "watcher-exit")
            logger.info(
                "Started reloader process [%d] using watchfiles (watcher process [%d])",
                os.getpid(),
                watcher.pid,
            )
            return
        self.watcher = PollingWatcher(self.roots, self.change_filter, self.delay)
        logger.info(
            "Started reloader process [%d] using polling every %g s (%s)",
            os.getpid(),
            self.delay,
            reason,
        )

    def _check_watcher(self) -> None:
        watcher = self.watcher
        if watcher is None:
            return
        changed = watcher.changes(time.monotonic())
        if changed and not self.should_exit:
            logger.info("Detected changes in %s, reloading", describe_changes(changed))
            self.changed |= changed
            self._request_restart()
        if isinstance(watcher, WatchfilesWatcher):
            code = watcher.exitcode
            if code is not None:
                self._fall_back_to_polling(watcher, code)

    def _fall_back_to_polling(self, watcher: WatchfilesWatcher, code: int) -> None:
        for fd in (watcher.read_fd, watcher.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
        watcher.close()
        self.watcher = None
        if self.should_exit:
            return
        logger.warning(
            "The watchfiles watcher process stopped (%s); polling every %g s instead",
            describe_exit(code),
            self.delay,
        )
        self.watcher = PollingWatcher(self.roots, self.change_filter, self.delay)

    # -- the worker ------------------------------------------------------------------------

    def _start_worker_when_watching(self) -> None:
        # Changes made before the watcher watches would be missed: give it a moment.
        watcher = self.watcher
        if isinstance(watcher, WatchfilesWatcher) and not watcher.ready:
            if time.monotonic() < watcher.ready_deadline:
                return
            logger.warning(
                "watchfiles is not watching yet after %g s; starting the app anyway",
                WATCHER_READY_WAIT,
            )
            watcher.ready = True  # don't wait again
        self._start_worker()

    def _start_worker(self) -> None:
        self.start_pending = False
        self.force_at = float("inf")
        forget_bytecode(self.changed)
        self.changed = set()
        worker = WorkerProcess(self.config, self.sockets, self._own_fds())
        worker.start()
        self.worker = worker
        self.selector.register(worker.channel, selectors.EVENT_READ, "channel")
        self.selector.register(worker.process.sentinel, selectors.EVENT_READ, "exit")
        logger.info("Started worker process [%d]", worker.pid)

    def _read_channel(self) -> None:
        worker = self.worker
        if worker is None:
            return
        data, open_ = worker.read_messages()
        if READY in data:
            worker.ready = True
        if RETIRING in data and not worker.retiring:
            worker.retiring = True
        if not open_:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.channel)

    def _request_restart(self) -> None:
        self.start_pending = True
        self._stop_worker()

    def _stop_worker(self) -> None:
        worker = self.worker
        if worker is None or worker.stopping:
            return
        grace: float | None = self.config.timeout_graceful_shutdown
        if grace is None:
            # The worker itself would wait for its open requests forever; a dev server must
            # not hang on an open stream or WebSocket.
            self.force_at = time.monotonic() + RELOAD_GRACE
            grace = RELOAD_GRACE
        worker.stop(float(grace))

    def _reap(self) -> None:
        worker = self.worker
        if worker is None:
            return
        code = worker.process.exitcode
        if code is None:
            return
        pid = worker.pid
        self.worker = None
        self.force_at = float("inf")
        for fileobj in (worker.channel, worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fileobj)
        worker.close()
        if worker.stopping or self.should_exit:
            if code != 0:
                logger.info("Worker [%d] stopped (%s)", pid, describe_exit(code))
        elif worker.retiring:
            logger.info("Worker [%d] reached its request limit; starting a new one", pid)
            self.start_pending = True
        elif not worker.ready:
            logger.error("The app failed to start (%s); waiting for changes", describe_exit(code))
        else:
            logger.error(
                "Worker [%d] stopped unexpectedly (%s); waiting for changes",
                pid,
                describe_exit(code),
            )

    def _check_deadlines(self) -> None:
        worker = self.worker
        if worker is None or not worker.stopping:
            return
        now = time.monotonic()
        if now >= worker.stop_deadline:
            logger.error("Worker [%d] did not stop in time: killing it", worker.pid)
            worker.stop_deadline = float("inf")
            worker.signal(signal.SIGKILL)
        elif now >= self.force_at:
            logger.warning(
                "Worker [%d] still has open requests after %g s: stopping it now",
                worker.pid,
                RELOAD_GRACE,
            )
            self.force_at = float("inf")
            worker.signal(signal.SIGINT)

    # -- signals ---------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        for signum in self.signals.take():
            if signum in STOP_SIGNALS:
                self._on_stop_signal(signum)
            elif signum == signal.SIGHUP and not self.should_exit:
                logger.info("Received SIGHUP, reloading")
                self._request_restart()

    def _on_stop_signal(self, signum: int) -> None:
        self.stop_signals_seen += 1
        name = signal.Signals(signum).name
        worker = self.worker
        if self.stop_signals_seen == 1:
            logger.info("Received %s: stopping", name)
            self.should_exit = True
            self.start_pending = False
            self._stop_worker()
        elif worker is None:
            return
        elif self.stop_signals_seen == 2:
            # A worker that got SIGTERM takes SIGINT as "stop now" (requests are cancelled).
            logger.info("Received %s again: stopping the worker now", name)
            self.force_at = float("inf")
            worker.signal(signal.SIGINT)
        else:
            worker.signal(signal.SIGKILL)
