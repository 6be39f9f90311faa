"""What the ASGI request cycle needs from the connection it runs on: ``CycleHost``.

``RequestCycle`` (esg/http/cycle.py) keeps every ASGI rule of a request and assumes nothing of
the connection below it beyond this surface: three attributes it reads and eleven methods it
calls.  ``HttpProtocol`` (HTTP/1.1) is the one host today; a connection of another protocol
(an HTTP/2 stream's) provides the same surface and reuses the cycle unchanged.

A structural type (``typing.Protocol``): a host doesn't inherit it, and mypy checks that
``HttpProtocol`` satisfies it where the connection creates its cycles (the cycle's ``host``
parameter is a ``CycleHost``).  Only type checkers import this module: at run time the compiled
cycle calls its host exactly as before, so the seam costs nothing per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio

    from esg._types import Message
    from esg.http.cycle import RequestCycle
    from esg.http.serializer import ResponseHead

__all__ = ["CycleHost"]


class CycleHost(Protocol):
    """The connection under a ``RequestCycle``; calls come from the cycle's task or callbacks."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the connection and its cycles run on."""

    @property
    def default_names(self) -> frozenset[bytes]:
        """Names of the ``--header`` defaults, which a header the app sets itself replaces."""

    @property
    def write_paused(self) -> bool:
        """The client isn't taking bytes fast enough: ``send()`` then waits in ``drain()``."""

    # -- the response ----------------------------------------------------------------------

    def default_lines(self, head: ResponseHead | None) -> bytes:
        """The Date, Server and ``--header`` lines for ``head`` (None: esg's own response)."""

    def write(self, data: bytes) -> None:
        """Bytes that end a response (or are a whole one)."""

    def write_part(self, data: bytes) -> None:
        """A piece of a response still under way; more follows."""

    def defer_head(self, cycle: RequestCycle) -> None:
        """Call ``cycle.flush_head()`` soon: the head waits for its first body message."""

    async def drain(self) -> None:
        """Return once the client took enough of what was written (or is gone)."""

    def response_complete(self, cycle: RequestCycle) -> None:
        """The whole response was written; the host may take the next request."""

    # -- the request body ------------------------------------------------------------------

    def pull_body(self, cycle: RequestCycle) -> Message | None:
        """The next ``http.request`` message if its bytes are here, else None."""

    async def wait_for_body(self, cycle: RequestCycle) -> None:
        """Return when more of the body may have arrived, or the client left."""

    # -- the end ---------------------------------------------------------------------------

    def task_done(self, cycle: RequestCycle) -> None:
        """The app's task for ``cycle`` ended, whichever way."""

    def close_connection(self) -> None:
        """Close once what was written so far is sent."""

    def abort_connection(self) -> None:
        """Drop the connection now: what was written of this response is unusable."""
