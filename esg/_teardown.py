"""How connections and app tasks end, shared by the HTTP protocol and the WebSocket session."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

# SO_LINGER on, zero seconds: close() then resets the connection instead of leaving what the
# peer never read in the kernel (up to tcp_wmem's maximum, for minutes) behind a FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)


def reset_on_close(transport: Any) -> None:
    """Have ``transport`` reset the connection when it closes, discarding unsent data.

    (nginx's ``reset_timedout_connection``.)  A plain close hands the unsent bytes to the
    kernel, which keeps them (and the socket, in FIN-WAIT-1) for as long as the peer keeps its
    window shut: a client that never reads would still cost megabytes after esg let go of it.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Not a TCP socket, or already closed: then there is nothing to reset.
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


def cancelled_by_server(exc: BaseException, task: Any) -> bool:
    """Whether ``exc`` is the app's task being cancelled (by esg, at shutdown).

    A CancelledError the app raised without its task being cancelled (it awaited a future that
    something else cancelled) is an app failure like any other.  Python 3.10 can't tell the
    two apart (no ``Task.cancelling()``): there every CancelledError counts as cancellation.
    """
    if not isinstance(exc, asyncio.CancelledError):
        return False
    if task is None:
        # Raised in an eager task's first step (Python 3.12+), before its creator could
        # store the task: it is the one running.
        task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0
