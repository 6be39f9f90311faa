"""Files as response bodies: the ``http.response.pathsend`` and ``.zerocopysend`` extensions.

The ASGI cycle (esg/http/cycle.py) keeps the rules of a response; this module does the I/O of
a file body, in plain Python (per file, not per request: a syscall or two per chunk dominates).

* ``open_file_body`` turns the app's message into a ``FileBody``: a descriptor, an offset and a
  byte count fixed when the message arrives (``pathsend`` opens the path and stats it;
  ``zerocopysend`` takes the app's descriptor, which the app closes).  Only regular files.
* ``send_on_socket`` is the fast path, for an HTTP/1.1 connection on a plain TCP or UNIX
  socket: what the transport still buffers goes out first, then the bytes handed over (the
  head) go on the socket with ``MSG_MORE``, then ``os.sendfile`` moves the file in the kernel.
  uvloop has no ``loop.sendfile``, so the socket is used directly, through a duplicate of its
  descriptor (the loop refuses a watcher on a transport's own descriptor): the socket is
  non-blocking, and when it is full the send waits for it in ``loop.add_writer``.  The
  connection's ``WriteFlow`` stays in charge meanwhile: marked paused while the socket is full,
  its deadline pushed back on every byte the client takes, so the server's ticker cuts a client
  that stopped reading after ``--timeout-body`` exactly as it cuts any stalled write; losing
  the connection wakes the wait like any ``drain()``.
* Everything else (TLS, HTTP/2, a pipelined response held for its turn) reads the file in
  ``READ_CHUNK`` pieces through the cycle's normal body path, back-pressure included.

A file that ends before its count (truncated while it is sent) can't be framed any more: the
cycle then aborts the connection.  (A file deleted while it is sent is still read whole: the
descriptor keeps it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import stat
from time import monotonic
from typing import Any

from esg.http.errors import ClientDisconnected

__all__ = ["FileBody", "open_file_body", "send_on_socket", "READ_CHUNK", "SENDFILE"]

# The fallback's read size: bounded memory per response, few enough loop turns per MiB.
READ_CHUNK = 131072
INFINITY = float("inf")
# os.sendfile to a socket: Linux, the BSDs, macOS.
SENDFILE = hasattr(os, "sendfile")
# Keep the head for the file's first segment (Linux); elsewhere it simply goes alone.
_MORE = getattr(socket, "MSG_MORE", 0)
# O_NONBLOCK: opening a FIFO would otherwise wait for a writer with the whole event loop (the
# regular-file check after the open refuses it); it changes nothing for a regular file.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
# os.sendfile's refusals of a file (not of the socket): then the bytes are copied instead.
_NO_SENDFILE = frozenset([errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP])


class FileBody:
    """The file part of a response: ``count`` bytes of ``fd`` from ``offset``."""

    __slots__ = ("fd", "offset", "count", "more_body", "owned", "keep_position")

    def __init__(
        self, fd: int, offset: int, count: int, more_body: bool, owned: bool, keep: bool
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count
        self.more_body = more_body  # zerocopysend: more body messages follow
        self.owned = owned  # esg opened it (pathsend), so esg closes it
        self.keep_position = keep  # zerocopysend without offset: the file position advances

    def done(self, sent: int) -> None:
        """The send is over, ``sent`` bytes of it went out: close, or move the position."""
        if self.owned:
            os.close(self.fd)
        elif self.keep_position:
            os.lseek(self.fd, self.offset + sent, os.SEEK_SET)


def open_file_body(message: Any, whole: bool) -> FileBody:
    """The ``FileBody`` of an ``http.response.pathsend`` (``whole``) or ``.zerocopysend``
    message; ``OSError`` when the path can't be opened, ``RuntimeError`` for a message esg
    can't send (not a regular file, a bad offset or count)."""
    if whole:
        path = message["path"]
        fd = os.open(path, _OPEN_FLAGS)
        try:
            size = _regular_size(fd)
        except BaseException:
            os.close(fd)
            raise
        return FileBody(fd, 0, size, False, True, False)
    file = message["file"]
    fd = file if isinstance(file, int) else file.fileno()
    size = _regular_size(fd)
    offset = message.get("offset")
    keep = offset is None
    if keep:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
    count = message.get("count")
    if count is None:
        count = max(size - offset, 0)
    if type(offset) is not int or type(count) is not int or offset < 0 or count < 0:
        raise RuntimeError(
            f"Invalid offset {offset!r} or count {count!r} in 'http.response.zerocopysend'."
        )
    return FileBody(fd, offset, count, bool(message.get("more_body", False)), False, keep)


def _regular_size(fd: int) -> int:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise RuntimeError("A file body must be a regular file.")
    return info.st_size


# -- the fast path: os.sendfile on the connection's socket -------------------------------------


async def send_on_socket(protocol: Any, prefix: bytes, body: FileBody) -> int:
    """Send ``prefix`` then ``body`` on ``protocol``'s socket; the file bytes sent.

    Fewer than ``body.count`` means the file ended early.  Raises ``ClientDisconnected`` when
    the connection went away (closed, reset, or cut for not reading).
    """
    transport = protocol.transport
    flow = protocol.write_flow
    if transport.get_write_buffer_size():
        await _empty_transport(transport, flow)
    if transport.is_closing():
        raise ClientDisconnected("the client closed the connection")
    raw = transport.get_extra_info("socket")
    duplicate = os.dup(raw.fileno())
    try:
        sock = socket.socket(raw.family, raw.type, raw.proto, duplicate)
    except BaseException:
        os.close(duplicate)
        raise
    # Never blocking, whatever socket.setdefaulttimeout() a library set: a full socket is
    # waited for in the loop (_writable), not in send() with every connection stopped.
    sock.setblocking(False)
    try:
        return await _send(protocol, sock, prefix, body)
    except (BrokenPipeError, ConnectionError) as exc:
        raise ClientDisconnected("the client closed the connection") from exc
    finally:
        flow.paused = False
        flow.deadline = INFINITY
        sock.close()


async def _send(protocol: Any, sock: socket.socket, prefix: bytes, body: FileBody) -> int:
    fileno = sock.fileno()
    view = memoryview(prefix)
    while view:
        with contextlib.suppress(BlockingIOError):
            view = view[sock.send(view, _MORE) :]
        if view:
            await _writable(protocol, fileno)
    fd, offset, count = body.fd, body.offset, body.count
    flow = protocol.write_flow
    sent = 0
    copy = _sendfile
    while sent < count:
        try:
            size = copy(sock, fd, offset + sent, count - sent)
        except BlockingIOError:
            size = -1
        except OSError as exc:
            if copy is _sendfile and sent == 0 and exc.errno in _NO_SENDFILE:
                copy = _read_and_send  # a file system sendfile can't read from
                continue
            raise
        if size == 0:
            break  # the file ended early
        if size > 0:
            sent += size
            flow.deadline = monotonic() + flow.timeout  # the client took some: not stalled
        if sent < count:
            # The socket is full (or this call filled it): wait until it takes more.  Also a
            # turn of the loop for the other connections on a long, fast send.
            await _writable(protocol, fileno)
    if protocol.metrics is not None:
        protocol.metrics.sent_bytes += sent
    return sent


def _sendfile(sock: socket.socket, fd: int, offset: int, count: int) -> int:
    return os.sendfile(sock.fileno(), fd, offset, count)


def _read_and_send(sock: socket.socket, fd: int, offset: int, count: int) -> int:
    """What ``os.sendfile`` does, through a buffer: for files it refuses (EINVAL ...).  A
    piece the socket doesn't take whole is read again next time."""
    data = os.pread(fd, min(count, READ_CHUNK), offset)
    return sock.send(data) if data else 0


async def _writable(protocol: Any, fileno: int) -> None:
    """Wait until the socket takes bytes again, as a paused write waits in ``drain()``."""
    loop: asyncio.AbstractEventLoop = protocol.loop
    flow = protocol.write_flow
    waiter = loop.create_future()
    flow.paused = True  # check_deadlines watches it: a client that stops reading is cut
    if flow.deadline == INFINITY:
        flow.deadline = monotonic() + flow.timeout
    flow.waiter = waiter  # connection_lost() releases it
    loop.add_writer(fileno, _wake, waiter)
    try:
        await waiter
    finally:
        loop.remove_writer(fileno)
        if flow.waiter is waiter:
            flow.waiter = None
    transport = protocol.transport
    if transport is None or transport.is_closing():
        raise ClientDisconnected("the client closed the connection")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _empty_transport(transport: Any, flow: Any) -> None:
    """Wait until the transport has written everything it buffers (an earlier response to a
    slow client): the file must follow it on the wire.  The transport's low-water mark is
    lowered to zero meanwhile, so its ``resume_writing()`` says exactly that."""
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        while transport.get_write_buffer_size() and not transport.is_closing():
            if flow.paused:
                await flow.drain()  # asyncio and uvloop pause at once, resume at zero
            else:
                await asyncio.sleep(0)  # a loop that didn't pause: look again next turn
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=high, low=low)
