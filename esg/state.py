"""What every connection of one server shares: live connections, tasks, cached header lines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from esg.http.serializer import date_line
from esg.logging import TRACE_LOG_LEVEL


class Connection(Protocol):
    """What the server asks of each open connection (HTTP or WebSocket); nothing else."""

    def check_deadlines(self, now: float) -> None:
        """The ticker's call, about once a second: end what has waited too long."""

    def retire(self, retired: Callable[[Connection], None]) -> None:
        """Other processes serve on: end this connection on a response that says so.

        ``retired(self)`` is called once, when no request can reach this connection any more
        without being answered ``connection: close`` (at once if there is nothing to wait for).
        """

    def shutdown(self) -> None:
        """Close when idle, or after the response under way."""

    def abort_connection(self) -> None:
        """The graceful shutdown ran out of time: drop the connection now."""


class ServerState:
    """Shared, mutable state of one ``Server``; the ticker refreshes the clock and Date line."""

    def __init__(
        self,
        *,
        server_header: bool = True,
        date_header: bool = True,
        default_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.total_requests = 0
        # --limit-max-requests (with its jitter): the connection that starts request number
        # ``request_limit`` calls ``reached_request_limit``, so serving stops at once.
        self.request_limit: float = float("inf")
        self.on_request_limit: Any = None
        self.metrics: Any = None  # esg.metrics.Metrics with --metrics
        self.connections: set[Connection] = set()
        # Set while the server retires its connections (Server.retire_connections): a
        # connection made meanwhile hands itself to it, to be retired too.
        self.retire_connection: Callable[[Connection], None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.now = time.monotonic()
        self.pending_heads: list[Any] = []  # see HttpProtocol.defer_head
        self.flush_heads_scheduled = False
        self.loop_call_soon: Any = None  # set by the first connection: loop.call_soon
        # --log-level trace: connections log when they are made, upgraded and lost.  Checked
        # once, when the server starts (after the logging setup), so that with trace off each
        # connection pays a flag test, not a logger lookup.
        self.trace_log = logging.getLogger("esg.error").isEnabledFor(TRACE_LOG_LEVEL)
        names = {name for name, _ in default_headers or []}
        # A --header server:... or date:... replaces esg's own line instead of doubling it.
        self.server_line = b"server: esg\r\n" if server_header and b"server" not in names else b""
        self.date_header = date_header and b"date" not in names
        self.date_line = b""
        self.date_field: tuple[bytes, bytes] | None = None  # the same Date for HTTP/2
        self.common_lines = b""
        extra = default_headers or []
        self.default_block = b"".join(b"%b: %b\r\n" % (name, value) for name, value in extra)
        self.default_names = frozenset(name for name, _ in extra)
        self.default_pairs = [(name, b"%b: %b\r\n" % (name, value)) for name, value in extra]
        self.tick()

    def default_block_without(self, names: set[bytes]) -> bytes:
        """The ``--header`` defaults minus those the app set itself."""
        return b"".join(line for name, line in self.default_pairs if name not in names)

    def flush_heads(self) -> None:
        """Send the heads of responses whose apps paused before their first body message."""
        pending = self.pending_heads
        self.pending_heads = []
        self.flush_heads_scheduled = False
        for cycle in pending:
            if cycle.flush_head():
                # First pass: the app may only be passing messages along (sleep(0), a queue
                # in a middleware); one more loop turn keeps such responses in one write.
                self.pending_heads.append(cycle)
        if self.pending_heads and self.loop_call_soon is not None:
            self.flush_heads_scheduled = True
            self.loop_call_soon(self.flush_heads)

    def reached_request_limit(self) -> None:
        """Called once, by the request that reached ``request_limit``."""
        self.request_limit = float("inf")
        if self.on_request_limit is not None:
            self.on_request_limit()

    def tick(self) -> None:
        """Called once a second: the coarse clock for deadlines and the cached Date line."""
        self.now = time.monotonic()
        if self.date_header:
            self.date_line = date_line()
            self.date_field = (b"date", self.date_line[6:-2])
        # Date, Server and --header lines, joined once a second instead of once a response.
        self.common_lines = self.date_line + self.server_line + self.default_block
