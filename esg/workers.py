"""The gunicorn worker: ``gunicorn example:app -w 4 -k esg.workers.ESGWorker``.

gunicorn's arbiter binds the sockets, forks the workers, replaces those that exit and turns its
signals into theirs; each ``ESGWorker`` runs one esg ``Server`` on the inherited sockets.

* **Settings.**  The app is the object gunicorn loaded (ASGI 3 or 2, detected).  ``keepalive``,
  ``graceful_timeout``, ``backlog``, ``forwarded_allow_ips``, the ``limit_request_*`` settings,
  ``max_requests`` (with its jitter) and TLS (``certfile``/``keyfile``, through gunicorn's own
  ``ssl_context`` hook) become esg settings; see ``esg_settings()``.  Settings gunicorn has no
  name for come from ``CONFIG_KWARGS`` in a subclass.
* **Logging.**  esg leaves logging alone (``log_config=None``): ``esg.error`` goes to gunicorn's
  error log at gunicorn's ``--log-level``, and ``esg.access`` to gunicorn's access log, written
  in its ``--access-logformat`` (atoms esg doesn't know, like ``%(b)s``, print ``-``), only when
  gunicorn logs access at all.  Loggers that a gunicorn logging config gave handlers of their own
  are left as configured.
* **Signals.**  TERM (the arbiter's graceful stop, reload and scale-down): stop accepting, let
  requests finish, run the lifespan shutdown and exit.  INT and QUIT: exit now, without waiting
  for requests or the lifespan shutdown.  USR1: reopen the log files.  ABRT (sent on a worker
  timeout) keeps gunicorn's handler, which works even when the event loop is stuck.
* **Heartbeat.**  A task touches gunicorn's heartbeat file twice a second, from the lifespan
  startup on, and starts the graceful exit when the worker was told to stop (``alive``, e.g.
  by gunicorn's ``--reload``) or the arbiter is gone (the parent pid changed).
* **Restarts without failed requests.**  ``max_requests`` is esg's ``limit_max_requests``: the
  request that reaches it stops the accepting.  On any graceful exit the worker then retires
  its keep-alive connections one response at a time (``Server.retire_connections``)
  rather than closing idle ones under a client that may be sending on them.
* **Failures.**  A problem that would repeat in every new worker (the lifespan startup failed,
  esg can't use the app or the TLS settings) exits with gunicorn's ``WORKER_BOOT_ERROR``, on
  which the arbiter stops instead of forking replacements forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Generator
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import SafeAtoms
from gunicorn.sock import ssl_context
from gunicorn.workers.base import Worker

from esg._ssl import ALPN_PROTOCOLS
from esg.config import Config
from esg.server import Server

__all__ = ["ESGWorker", "esg_settings"]

# Exit status that makes gunicorn's arbiter stop rather than replace the worker.
WORKER_BOOT_ERROR: int = Arbiter.WORKER_BOOT_ERROR

# gunicorn's ceilings (gunicorn.http.message): it clamps a longer request line to 8190 bytes
# and more header fields to 32768.
GUNICORN_MAX_REQUEST_LINE = 8190
GUNICORN_MAX_HEADERS = 32768
# gunicorn's 0 means "no limit" for the request line and a header field; esg always bounds the
# whole request head at 64 KiB, so that is the effective limit.
ESG_HEAD_LIMIT = 65536

HEARTBEAT_INTERVAL = 0.5


def esg_settings(cfg: Any, max_requests: int) -> dict[str, Any]:
    """``esg.Config`` keyword arguments for gunicorn's settings ``cfg``.

    ``max_requests`` is the worker's own limit (gunicorn adds the jitter per worker).
    """
    return {
        "interface": "auto",
        "lifespan": "auto",
        "loop": "auto",
        "log_config": None,
        "log_level": None,
        "proxy_headers": True,
        "forwarded_allow_ips": cfg.forwarded_allow_ips,
        "backlog": cfg.backlog,
        "timeout_keep_alive": cfg.keepalive,
        "timeout_graceful_shutdown": graceful_timeout(cfg.graceful_timeout),
        "limit_request_line": request_line_limit(cfg.limit_request_line),
        "limit_request_fields": request_fields_limit(cfg.limit_request_fields),
        "limit_request_field_size": field_size_limit(cfg.limit_request_field_size),
        "limit_max_requests": max_requests if cfg.max_requests > 0 and max_requests > 0 else None,
    }


def graceful_timeout(seconds: int) -> int:
    """esg's drain time: one second less than gunicorn's ``graceful_timeout``.

    When gunicorn itself stops, its arbiter SIGKILLs workers ``graceful_timeout`` seconds after
    asking them to stop; the second left over lets esg cancel what is still running and run the
    lifespan shutdown before that.
    """
    return seconds - 1 if seconds > 1 else seconds


def request_line_limit(value: int) -> int:
    if value <= 0:
        return ESG_HEAD_LIMIT
    return min(value, GUNICORN_MAX_REQUEST_LINE)


def request_fields_limit(value: int) -> int:
    if value <= 0 or value > GUNICORN_MAX_HEADERS:
        return GUNICORN_MAX_HEADERS
    return value


def field_size_limit(value: int) -> int:
    return ESG_HEAD_LIMIT if value <= 0 else value


def access_log_enabled(cfg: Any, log: Any) -> bool:
    """Whether gunicorn writes an access log (its own test, where this gunicorn has one)."""
    enabled = getattr(log, "access_log_enabled", None)
    if enabled is not None:
        return bool(enabled)
    return bool(
        cfg.accesslog
        or cfg.logconfig
        or cfg.logconfig_dict
        or getattr(cfg, "logconfig_json", None)
        or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
    )


def server_ssl_context(cfg: Any) -> ssl.SSLContext | None:
    """gunicorn's TLS context (honouring its ``ssl_context`` hook), offering esg's protocols."""
    if not cfg.is_ssl:
        return None
    context: ssl.SSLContext = ssl_context(cfg)
    if ssl.HAS_ALPN:
        # What esg itself speaks, h2 then http/1.1 (see esg._ssl), whatever gunicorn offered.
        context.set_alpn_protocols(ALPN_PROTOCOLS)
    return context


class ESGWorker(Worker):  # type: ignore[misc]
    """A gunicorn worker process serving the app with esg on gunicorn's listening sockets."""

    # esg settings that gunicorn can't express (e.g. {"ws": "none", "root_path": "/api",
    # "timeout_header": 10}); a subclass sets them, and they win over the derived ones.
    CONFIG_KWARGS: dict[str, Any] = {}

    alive: bool  # gunicorn's: False once the worker should stop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.server: WorkerServer | None = None
        self._main_task: asyncio.Task[Any] | None = None

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        if getattr(cfg, "proxy_protocol", False) not in (False, None, "off"):
            log.warning("esg does not speak the PROXY protocol: --proxy-protocol is ignored.")
        if getattr(cfg, "threads", 1) > 1:
            log.warning("ESGWorker serves from one event loop: --threads is ignored.")

    # -- in the new process, before gunicorn imports the app -------------------------------

    def init_process(self) -> None:
        access = access_log_enabled(self.cfg, self.log) or _has_handlers("esg.access")
        kwargs = esg_settings(self.cfg, self.max_requests)
        kwargs["access_log"] = access
        kwargs.update(self.CONFIG_KWARGS)
        # The app comes from gunicorn (load_wsgi).  The event loop policy is set here, before
        # the app is imported (its import may create a loop) and replacing any loop state
        # the arbiter had when it forked us.
        self.config = Config("", **kwargs)
        self.config.setup_event_loop()
        self._route_logging(access)
        super().init_process()  # signals, the app's import, then run()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        config = self.config
        assert config is not None
        config.app = self.wsgi
        try:
            config.load()
            # After load(): esg builds a context only from its own --ssl-* settings.
            config.ssl = server_ssl_context(self.cfg)
        except SystemExit:  # esg.user_errors.fail() has logged why
            sys.exit(WORKER_BOOT_ERROR)

    def _route_logging(self, access: bool) -> None:
        error_log = getattr(self.log, "error_log", None) or logging.getLogger("gunicorn.error")
        _forward("esg.error", _ForwardHandler(error_log), error_log.getEffectiveLevel())
        if access:
            access_log = getattr(self.log, "access_log", None) or logging.getLogger(
                "gunicorn.access"
            )
            atoms = getattr(self.log, "atoms_wrapper_class", SafeAtoms)
            handler = AccessLogHandler(access_log, self.cfg.access_log_format, atoms)
            _forward("esg.access", handler, logging.INFO)

    # -- serving ---------------------------------------------------------------------------

    def run(self) -> None:
        config = self.config
        assert config is not None
        if not self.alive:
            return  # told to stop (SIGTERM) while the app was being imported
        self.server = server = WorkerServer(config, self)
        with contextlib.suppress(asyncio.CancelledError):  # INT/QUIT during the startup
            asyncio.run(self._serve(server))
        if server.startup_failed:
            sys.exit(WORKER_BOOT_ERROR)

    async def _serve(self, server: WorkerServer) -> None:
        self._main_task = asyncio.current_task()
        heartbeat = asyncio.create_task(self._heartbeat(server))
        try:
            await server.serve(sockets=[listener.sock for listener in self.sockets])
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self, server: WorkerServer) -> None:
        # Runs from the start: a lifespan startup that takes a while is not a stuck worker.
        while True:
            self.notify()
            if server.started and not server.should_exit and self._should_stop():
                server.handle_exit(signal.SIGTERM, None)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    def _should_stop(self) -> bool:
        if not self.alive:  # TERM during the startup, or gunicorn's --reload
            return True
        if os.getppid() != self.ppid:
            self.log.info("Parent changed, shutting down: %s", self)
            self.alive = False
            return True
        return False

    # -- signals (installed on the event loop while serving) -------------------------------

    def handle_graceful_exit(self, server: WorkerServer) -> None:
        """SIGTERM: stop accepting, finish the requests, run the lifespan shutdown, exit."""
        self.alive = False
        if server.started:
            server.handle_exit(signal.SIGTERM, None)
        # Otherwise the heartbeat asks once the startup is over, so that the shutdown runs.

    def handle_quick_exit(self, server: WorkerServer) -> None:
        """SIGINT/SIGQUIT: exit now; requests in flight are cancelled, no lifespan shutdown."""
        self.alive = False
        self.cfg.worker_int(self)
        server.force_exit = True
        server.handle_exit(signal.SIGINT, None)
        if not server.started and self._main_task is not None:
            self._main_task.cancel()  # don't wait for the app's startup to finish

    def handle_reopen(self, server: WorkerServer) -> None:
        """SIGUSR1 (forwarded by the arbiter): reopen the log files, e.g. after a rotation."""
        self.log.reopen_files()


class WorkerServer(Server):
    """esg's ``Server`` with the signal handling of a gunicorn worker."""

    def __init__(self, config: Config, worker: ESGWorker) -> None:
        super().__init__(config)
        self.worker = worker
        self.retire_keep_alive = True  # see Server.retire_connections

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        worker = self.worker
        handlers: dict[int, Callable[[WorkerServer], None]] = {
            signal.SIGTERM: worker.handle_graceful_exit,
            signal.SIGINT: worker.handle_quick_exit,
            signal.SIGQUIT: worker.handle_quick_exit,
            signal.SIGUSR1: worker.handle_reopen,
        }
        loop = asyncio.get_running_loop()
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler, self)
        try:
            yield
        finally:
            for sig in handlers:
                loop.remove_signal_handler(sig)
            # gunicorn's own handlers again, for the few moments left before the exit.
            signal.signal(signal.SIGTERM, worker.handle_exit)
            signal.signal(signal.SIGINT, worker.handle_quit)
            signal.signal(signal.SIGQUIT, worker.handle_quit)
            signal.signal(signal.SIGUSR1, worker.handle_usr1)

    def _log_started(self, sockets: list[socket.socket]) -> None:
        # gunicorn's arbiter has logged "Listening at: ..." once for all its workers.
        pass


# -- logging -------------------------------------------------------------------------------


def _has_handlers(name: str) -> bool:
    """Whether a logging config gave the logger (or an ancestor below the root) handlers."""
    current: logging.Logger | None = logging.getLogger(name)
    while current is not None and current is not logging.root:
        if current.handlers:
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def _forward(name: str, handler: logging.Handler, level: int) -> None:
    if _has_handlers(name):
        return  # configured by the user's gunicorn logging config: theirs to decide
    target = logging.getLogger(name)
    target.addHandler(handler)
    target.setLevel(level)
    target.propagate = False


class _ForwardHandler(logging.Handler):
    """Hands esg's records to a gunicorn logger, whose handlers format and write them."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        if self.target.isEnabledFor(record.levelno):
            self.target.handle(self.convert(record))

    def convert(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class AccessLogHandler(_ForwardHandler):
    """esg's access records rewritten as gunicorn access records (``--access-logformat``).

    esg knows the client, the request line and its parts, the status and the duration; the
    atoms for response size, request and response headers and the environment print ``-``.
    """

    def __init__(
        self, target: logging.Logger, log_format: str, atoms_class: Callable[..., Any]
    ) -> None:
        super().__init__(target)
        self.log_format = log_format
        self.atoms_class = atoms_class

    def convert(self, record: logging.LogRecord) -> logging.LogRecord:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            return record  # not one of the server's access lines
        client, method, target, http_version, status = args
        host = str(client).rpartition(":")[0] or str(client)
        path, _, query = str(target).partition("?")
        protocol = f"HTTP/{http_version}"
        atoms: dict[str, Any] = {
            "h": host,
            "l": "-",
            "u": "-",
            "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(record.created)),
            "r": f"{method} {target} {protocol}",
            "s": str(status),
            "m": method,
            "U": path,
            "q": query,
            "H": protocol,
            "p": f"<{os.getpid()}>",
        }
        duration_ms = getattr(record, "duration_ms", None)
        if isinstance(duration_ms, int | float):
            micros = int(duration_ms * 1000)
            seconds, rest = divmod(micros, 1_000_000)
            atoms.update(T=seconds, D=micros, M=micros // 1000, L=f"{seconds}.{rest:06d}")
        converted = copy.copy(record)
        converted.msg = self.log_format
        converted.args = self.atoms_class(atoms)
        return converted
