"""Write-side flow control of one connection: asyncio's pause/resume, draining, stalled clients.

Compiled twin ``esg._write_flow_c``, typed by ``_write_flow_c.pxd``.

asyncio calls a protocol's ``pause_writing()`` when the transport's write buffer goes over its
high-water mark and ``resume_writing()`` once it is back under the low one.  A ``WriteFlow``
keeps what follows from that, for whichever protocol serves the connection: the HTTP connection
(``HttpProtocol``) and, after an upgrade, the WebSocket session forward both calls here, await
``drain()`` before writing more while ``paused``, ``release()`` the waiters when the connection
is lost, and ask ``stalled()`` from the server's once-a-second ticker.

A client is stalled when unsent bytes have waited ``timeout`` seconds (``--timeout-body``)
without any being taken.  Progress counts, not the time since writing paused (nginx's
send_timeout): a large response read slowly but steadily is never cut, and neither is a close
still flushing.  A close waiting on bytes the client doesn't take is, even below the
high-water mark, where asyncio never paused writing.
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["WriteFlow"]

INFINITY = float("inf")


class WriteFlow:
    """One connection's write-side flow control; see the module docstring."""

    # Exactly the C fields of _write_flow_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = ("loop", "timeout", "paused", "deadline", "buffered", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.paused = False  # the write buffer is over its high-water mark
        self.deadline = INFINITY  # when the client is cut unless it takes some bytes
        self.buffered = 0  # the transport's unsent bytes when stalled() last looked
        self.waiter: asyncio.Future[None] | None = None  # what drain() waits on

    def pause(self) -> None:
        """asyncio's ``pause_writing()``."""
        self.paused = True
        self.deadline = monotonic() + self.timeout
        self.buffered = 0

    def resume(self) -> None:
        """asyncio's ``resume_writing()``: the client took enough; writers go on."""
        self.paused = False
        self.deadline = INFINITY
        self.release()

    def release(self) -> None:
        """Wake whoever waits in ``drain()``: the client took enough, or is gone."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Return at the next ``resume()`` or ``release()``."""
        if self.waiter is None:
            self.waiter = self.loop.create_future()
        await self.waiter

    def carry_on_from(self, previous: WriteFlow) -> None:
        """Continue from the connection's previous protocol (a WebSocket upgrade): a write buffer
        already full stays paused, with its deadline."""
        self.paused = previous.paused
        self.deadline = previous.deadline

    def stalled(self, transport: Any, now: float) -> bool:
        """Whether unsent bytes have waited ``timeout`` without any being taken (ticker's call).

        Only asked while writing is paused or the connection is closing.
        """
        size = transport.get_write_buffer_size()
        if size == 0 and not self.paused:
            return False  # a close with nothing left to send completes by itself
        if size < self.buffered or self.deadline == INFINITY:
            self.deadline = now + self.timeout
        self.buffered = size
        return now >= self.deadline
