"""Serve one process: bind, accept, tick once a second, shut down gracefully.

The ticker is the only timer esg runs: once a second it refreshes the cached Date line and the
coarse clock, and sweeps every connection's deadlines (keep-alive, header, body, blocked write).
Shutdown (SIGINT/SIGTERM, or ``--limit-max-requests`` reached): stop accepting, close idle
connections, let requests in flight finish within ``--timeout-graceful-shutdown``, cancel what is
left, then run the lifespan shutdown.  A second signal skips the waiting.  Once ``serve()`` is
done, the signal handlers it found are back and each signal it caught is raised again for them
(``capture_signals``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from types import FrameType
from typing import TYPE_CHECKING, Any

from esg import __version__, _compiled
from esg._compiled import load
from esg._malloc import tune_allocator
from esg.state import Connection, ServerState

if TYPE_CHECKING:
    from esg.config import Config
    from esg.settings import ConnectionSettings

logger = logging.getLogger("esg.error")

INFINITY = float("inf")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server:
    """``Server(config).run()`` serves until told to stop; ``startup_failed`` says why it didn't."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = False
        self.should_exit = False
        self.force_exit = False
        self.startup_failed = False
        self.server_state: ServerState | None = None
        self.servers: list[asyncio.base_events.Server] = []
        self.lifespan: Any = None
        self._exit_event: asyncio.Event | None = None
        self.request_limit: int | None = None  # --limit-max-requests plus this process's jitter
        self.metrics_slot: Any = None  # shared memory for the metrics (a --workers worker)
        self.metrics_server: asyncio.base_events.Server | None = None
        # Set where other processes go on serving (supervised and gunicorn workers): shutdown
        # first retires keep-alive connections on a response that says so (retire_connections).
        self.retire_keep_alive = False
        self._all_retired: asyncio.Event | None = None  # set while retire_connections waits
        self._captured_signals: list[int] = []  # SIGINT/SIGTERM received while serving

    # -- entry points --------------------------------------------------------------------

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        self.config.setup_event_loop()
        asyncio.run(self.serve(sockets=sockets))

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        with self.capture_signals():
            await self._serve(sockets)

    async def _serve(self, sockets: list[socket.socket] | None) -> None:
        config = self.config
        if not config.loaded:
            config.load()
        tune_allocator()
        self._exit_event = asyncio.Event()
        self.lifespan = config.lifespan_class(config)
        logger.info("Started server process [%d]", os.getpid())
        logger.debug("Running %s", _compiled.describe(__version__))
        await self.startup(sockets)
        if not self.started:  # the lifespan startup failed
            return
        # A signal during the startup skips the main loop, not the shutdown: the app's
        # lifespan shutdown still runs and the listening sockets are closed.
        await self.main_loop()
        await self.shutdown()
        logger.info("Finished server process [%d]", os.getpid())

    # -- startup -------------------------------------------------------------------------

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        # Bind before the app starts up: a port in use must not cost the app a startup and
        # shutdown (or leak what its startup acquired).
        if not sockets:
            sockets = config.bind_sockets()
        self.server_state = ServerState(
            server_header=config.server_header,
            date_header=config.date_header,
            default_headers=config.encoded_headers,
        )
        if config.metrics:
            await self._start_metrics()  # before the app starts, like the app's socket
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            self.should_exit = True
            self.startup_failed = True
            if self.metrics_server is not None:
                self.metrics_server.close()
            return
        loop = asyncio.get_running_loop()
        protocol_class = load("esg.http.protocol").HttpProtocol
        settings: ConnectionSettings = config  # all a connection reads of it (mypy checks)
        factory = functools.partial(
            protocol_class,
            config=settings,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=loop,
        )
        limit = config.limit_max_requests
        if limit is not None:
            # Jitter spreads the restarts of workers that started together.
            self.request_limit = limit + random.randint(0, max(0, config.limit_max_requests_jitter))
            self.server_state.request_limit = self.request_limit
            self.server_state.on_request_limit = self.request_limit_reached
        for sock in sockets:
            self.servers.append(await _create_server(loop, factory, sock, config))
        self._log_started(sockets)
        self.started = True

    async def _start_metrics(self) -> None:
        metrics = load("esg.metrics")  # the compiled twin: the counters are bumped per request

        state = self.server_state
        assert state is not None
        state.metrics = metrics.Metrics()
        state.metrics.slot = self.metrics_slot
        if self.metrics_slot is not None:
            return  # a worker: its supervisor serves the sum of every worker's numbers
        config = self.config
        try:
            self.metrics_server = await metrics.serve_metrics(
                config.metrics_host, config.metrics_port, self._metrics_body
            )
        except OSError as exc:
            from esg.config import fail

            where = f"{config.metrics_host}:{config.metrics_port}"
            fail(f"Could not serve metrics on {where}: {metrics.os_error_reason(exc)}", exc)
        logger.info("Metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)

    def _metrics_body(self) -> bytes:
        from esg import metrics

        state = self.server_state
        assert state is not None and state.metrics is not None
        return metrics.render(state.metrics.snapshot())

    def _log_started(self, sockets: list[socket.socket]) -> None:
        scheme = "https" if self.config.is_ssl else "http"
        for sock in sockets:
            if sock.family == getattr(socket, "AF_UNIX", None):
                where = f"unix socket {sock.getsockname()}"
            else:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
                where = f"{scheme}://{shown}:{port}"
            logger.info("esg running on %s (Press CTRL+C to quit)", where)

    # -- serving -------------------------------------------------------------------------

    async def main_loop(self) -> None:
        assert self._exit_event is not None
        # uvicorn's callback_notify (its gunicorn worker's heartbeat): awaited on the first
        # tick, then every timeout_notify seconds.
        notify = self.config.callback_notify
        last_notified = -INFINITY
        while not self.should_exit:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exit_event.wait(), 1.0)
            self.tick()
            if notify is not None and not self.should_exit:
                now = time.monotonic()
                if now - last_notified >= self.config.timeout_notify:
                    last_notified = now
                    await self._notify(notify)

    async def _notify(self, notify: Callable[[], Awaitable[None]]) -> None:
        try:
            await notify()
        except Exception:
            # A failing heartbeat is reported, not fatal: whoever watches it acts on its own.
            logger.exception("Exception in callback_notify")

    def tick(self) -> None:
        state = self.server_state
        assert state is not None
        state.tick()
        now = state.now
        for connection in list(state.connections):
            connection.check_deadlines(now)
        if state.metrics is not None:
            state.metrics.publish()

    def request_limit_reached(self) -> None:
        """``--limit-max-requests``: stop accepting now, finish what is open, then exit."""
        logger.warning(
            "Maximum request limit of %d reached: no new connections; finishing open requests.",
            self.request_limit,
        )
        for server in self.servers:
            server.close()
        self.handle_exit(signal.SIGTERM, None)

    # -- shutdown ------------------------------------------------------------------------

    async def shutdown(self) -> None:
        logger.info("Shutting down")
        grace = self.config.timeout_graceful_shutdown
        if self.retire_keep_alive and not self.force_exit:
            started = time.monotonic()
            await self.retire_connections()
            if grace is not None:
                # The time spent retiring counts against the graceful timeout.
                grace = max(grace - int(time.monotonic() - started), 0)
        for server in self.servers:
            server.close()
        state = self.server_state
        assert state is not None
        for connection in list(state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._wait_for_requests(state), grace)
        except asyncio.TimeoutError:
            logger.error(
                "Cancelling %d running request(s): the graceful shutdown timeout was reached",
                len(state.tasks),
            )
            for connection in list(state.connections):
                connection.abort_connection()
            for task in list(state.tasks):
                task.cancel()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        if not self.force_exit:
            await self.lifespan.shutdown()
        if state.metrics is not None:
            state.metrics.publish()  # the last numbers, for the supervisor to keep
        if self.metrics_server is not None:
            self.metrics_server.close()

    async def retire_connections(self) -> None:
        """Stop accepting; let every keep-alive connection end on a response that says so.

        Restarts are routine for workers (``--max-requests``, HUP, scaling down), and busy
        clients (a load balancer, a connection pool) send their next request on a keep-alive
        connection the moment the previous answer arrives.  Closing idle connections at once,
        as ``Server.shutdown`` does, would fail the requests already on their way.  Instead
        each connection is asked to retire (``HttpProtocol.retire`` says how) and reports when
        its last request has arrived.  This lasts until every connection has reported, or the
        keep-alive timeout (plus a second) passes: an idle client that sends nothing more then
        meets its keep-alive deadline, as it would have anyway.  ``Server.shutdown`` does the
        rest.
        """
        for server in self.servers:
            server.close()
        state = self.server_state
        if state is None:
            return
        limit = float(self.config.timeout_keep_alive) + 1.0
        grace = self.config.timeout_graceful_shutdown
        if grace is not None:
            limit = min(limit, float(grace))
        deadline = time.monotonic() + limit
        waiting: set[Connection] = set()
        all_retired = self._all_retired = asyncio.Event()

        def retired(connection: Connection) -> None:
            waiting.discard(connection)
            if not waiting:
                all_retired.set()

        def retire(connection: Connection) -> None:
            waiting.add(connection)
            all_retired.clear()
            connection.retire(retired)  # may call retired() at once

        # A connection the listener accepted just before it closed is made a moment later:
        # it retires as well (HttpProtocol.connection_made hands itself over).
        state.retire_connection = retire
        try:
            for connection in list(state.connections):
                retire(connection)
            while waiting and not self.force_exit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(all_retired.wait(), min(remaining, 1.0))
                if time.monotonic() - state.now >= 1.0:
                    self.tick()  # keep-alive and other deadlines still apply
        finally:
            state.retire_connection = None
            self._all_retired = None

    async def _wait_for_requests(self, state: ServerState) -> None:
        # The ticker keeps running while we wait: a client stuck mid-body or not reading is
        # still cut at its deadline, so shutdown can't hang on it.
        if state.connections and not self.force_exit:
            logger.info("Waiting for connections to close. (CTRL+C to force quit)")
            while state.connections and not self.force_exit:
                await self._sleep_and_tick(state)
        if state.tasks and not self.force_exit:
            logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")
            while state.tasks and not self.force_exit:
                await self._sleep_and_tick(state)

    async def _sleep_and_tick(self, state: ServerState) -> None:
        await asyncio.sleep(0.1)
        if time.monotonic() - state.now >= 1.0:
            self.tick()

    # -- signals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Handle SIGINT/SIGTERM while serving, then hand them back.

        An embedding program (its own handlers, a test runner, a supervisor) must not lose
        its handlers to the server, nor the signal that stopped it: once serving is over, the
        handlers found on entry are put back and each signal that came is raised again, once,
        in arrival order.  Python's default SIGINT handler then raises KeyboardInterrupt out of
        ``Server.run()`` (``esg.run()`` and the CLI exit cleanly on it).  A signal whose previous
        disposition is SIG_DFL or SIG_IGN is not raised again: the default action would kill the
        process on the spot, skipping its ``finally`` blocks, atexit and buffered output, after
        the graceful shutdown the signal asked for has already run.  That is why the CLI and
        the ``--workers`` workers still exit 0 on SIGTERM.
        """
        if threading.current_thread() is not threading.main_thread():
            yield  # signals can only be handled in the main thread
            return
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
        on_loop: list[int] = []
        self._captured_signals = []
        for sig in previous:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig, None)
                on_loop.append(sig)
            except (NotImplementedError, RuntimeError):  # Windows, or no loop support
                signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig in on_loop:
                loop.remove_signal_handler(sig)  # leaves SIG_DFL or default_int_handler
            for sig, handler in previous.items():
                if handler is not None:  # None: installed from C; nothing to put back
                    signal.signal(sig, handler)
        # Only after serving ended without an exception: the handler may well raise one.
        for captured in dict.fromkeys(self._captured_signals):
            if callable(previous[captured]):
                signal.raise_signal(captured)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        # Signals only: handle_exit() is also called for --limit-max-requests and by the
        # supervised workers, and those must not be raised again after the shutdown.
        self._captured_signals.append(sig)
        self.handle_exit(sig, frame)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
            if self._all_retired is not None:
                self._all_retired.set()  # stop waiting for connections to retire
        self.should_exit = True
        if self._exit_event is not None:
            self._exit_event.set()


async def _create_server(
    loop: asyncio.AbstractEventLoop, factory: Any, sock: socket.socket, config: Config
) -> asyncio.base_events.Server:
    options: dict[str, Any] = {"ssl": config.ssl, "backlog": config.backlog}
    if config.ssl is not None:
        options["ssl_handshake_timeout"] = ssl_handshake_timeout(config)
    if sock.family == getattr(socket, "AF_UNIX", None):
        return await loop.create_unix_server(factory, sock=sock, **options)
    return await loop.create_server(factory, sock=sock, **options)


def ssl_handshake_timeout(config: Config) -> float | None:
    """Seconds a client has to finish its TLS handshake: ``--timeout-header``.

    The connection's protocol only exists once the handshake is done, so the header deadline
    can't cover a client that stalls mid-handshake (or never sends a ClientHello); asyncio and
    uvloop drop it after this timeout instead of their default 60 s.  The head deadline then
    starts when the handshake ends.  None (the loop's default) when the setting is off.
    """
    timeout = config.timeout_header
    if timeout is None or not float(timeout) > 0:
        return None
    return float(timeout)
