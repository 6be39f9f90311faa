"""What the ASGI request cycle needs from the connection it runs on: the cycle's hosts.

``RequestCycle`` (esg/http/cycle.py) keeps every ASGI rule of a request and assumes nothing of
the connection below it beyond these surfaces.  ``CycleHost`` is what every host provides: the
loop, the request body, back-pressure and the end of the exchange.  How the response leaves
is the one thing that differs, so there are two kinds of host:

* ``Http1Host`` (``HttpProtocol``) takes bytes: the cycle writes HTTP/1.1's status line, header
  lines and chunked framing itself, which keeps the HTTP/1.1 hot path exactly one
  ``bytes.join`` and one ``transport.write`` per response.
* ``StructuredHost`` (an HTTP/2 stream, esg/http2/protocol.py) takes the response as parts:
  a status and header fields, body pieces, trailer fields, each with whether it ends the
  response, and frames them in its own protocol.  The cycle is made with ``structured=True``.

Structural types (``typing.Protocol``): a host doesn't inherit them, and mypy checks each host
against its kind where it creates its cycles (the cycle's ``host`` parameter).  Only type
checkers import this module: at run time the compiled cycle calls its host exactly as before,
so the seam costs nothing per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio

    from esg._types import Message
    from esg.http.cycle import RequestCycle
    from esg.http.serializer import ResponseHead

__all__ = ["CycleHost", "Http1Host", "StructuredHost"]


class CycleHost(Protocol):
    """What every host of a ``RequestCycle`` provides; calls come from the cycle's task or
    callbacks."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the connection and its cycles run on."""

    @property
    def default_names(self) -> frozenset[bytes]:
        """Names of the ``--header`` defaults, which a header the app sets itself replaces."""

    @property
    def write_paused(self) -> bool:
        """The client isn't taking bytes fast enough (or, HTTP/2, the stream has no flow-control
        window for what it was given): ``send()`` then waits in ``drain()``."""

    # -- the response ----------------------------------------------------------------------

    def defer_head(self, cycle: RequestCycle) -> None:
        """Call ``cycle.flush_head()`` soon: the head waits for its first body message."""

    async def drain(self) -> None:
        """Return once the client took enough of what was written (or is gone)."""

    def response_complete(self, cycle: RequestCycle) -> None:
        """The whole response was handed over; the host may take the next request."""

    # -- the request body ------------------------------------------------------------------

    def pull_body(self, cycle: RequestCycle) -> Message | None:
        """The next ``http.request`` message if its bytes are here, else None."""

    async def wait_for_body(self, cycle: RequestCycle) -> None:
        """Return when more of the body may have arrived, or the client left."""

    # -- the end ---------------------------------------------------------------------------

    def task_done(self, cycle: RequestCycle) -> None:
        """The app's task for ``cycle`` ended, whichever way."""

    def close_connection(self) -> None:
        """The response can't be completed (or this is the last one): end the exchange once
        what was handed over is sent.  HTTP/1.1 closes the connection; an HTTP/2 stream whose
        response is incomplete is reset, and its connection carries on."""

    def abort_connection(self) -> None:
        """What was handed over of this response is unusable: drop it now (HTTP/1.1: the
        connection; HTTP/2: the stream)."""


class Http1Host(CycleHost, Protocol):
    """A host that is given HTTP/1.1 bytes, framed by the cycle."""

    def default_lines(self, head: ResponseHead | None) -> bytes:
        """The Date, Server and ``--header`` lines for ``head`` (None: esg's own response)."""

    def write(self, data: bytes) -> None:
        """Bytes that end a response (or are a whole one)."""

    def write_part(self, data: bytes) -> None:
        """A piece of a response still under way; more follows."""


class StructuredHost(CycleHost, Protocol):
    """A host that is given the response as parts and frames it itself (HTTP/2).

    Everything it is handed has passed the cycle's checks: a final status (or 100 for
    ``Expect: 100-continue``), header names that are tokens and values without CR, LF or NUL,
    no body for HEAD, 204 and 304, body lengths that match a Content-Length.  ``end`` says
    the piece ends the response; it is false on the last body piece when trailers follow.
    """

    def send_head(self, cycle: RequestCycle, head: ResponseHead, body: bytes, end: bool) -> None:
        """The response head: ``head.status`` and ``head.fields``, the app's header fields
        checked and as bytes pairs with lowercased names (Transfer-Encoding left out), with a
        ``content-length`` the cycle computed for a whole body.  The host adds its Date,
        Server and ``--header`` fields unless the app set them (``head.has_date``,
        ``head.has_server``, ``head.overridden``).  ``body``: the first piece, often all of
        it.  Status 100 is the interim answer to ``Expect: 100-continue``, 103 early hints."""

    def send_body(self, cycle: RequestCycle, body: bytes, end: bool) -> None:
        """A piece of the body (possibly empty when it only ends the response)."""

    def send_trailers(self, cycle: RequestCycle, fields: Iterable[tuple[Any, Any]]) -> None:
        """The trailer fields, as the app sent them; they end the response."""
