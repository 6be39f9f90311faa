"""Serve a WSGI app (PEP 3333) through ASGI, running it in a thread pool.

Each request occupies one worker thread for its whole life.  The thread talks to the event loop
only through ``run_coroutine_threadsafe``: ``wsgi.input`` pulls body messages from ``receive``
when the app asks for bytes it doesn't have yet (the body is streamed, never read up front), and
each response chunk is handed to ``send`` as the app produces it, waiting for it to be written
so a slow client slows the app down instead of filling memory.

Environ choices (all allowed by PEP 3333):

* Header names containing ``_`` are dropped: ``X_Forwarded_For`` would otherwise land in the same
  ``HTTP_X_FORWARDED_FOR`` key as ``X-Forwarded-For`` and could impersonate a proxy's header.
* Repeated fields are joined with ``,``; ``Cookie`` with ``; `` (RFC 6265's separator).
* ``REMOTE_ADDR``/``REMOTE_PORT`` are absent when the peer has no address (a UNIX socket).
* ``wsgi.multiprocess`` is False: the middleware can't know about ``--workers``, and True makes
  some debuggers refuse to run.
* A client disconnecting mid-body raises ``ClientDisconnected`` from ``wsgi.input``: a truncated
  body must never look like a complete one.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from esg._types import Environ, ExcInfo, Message, Receive, Scope, Send, WSGIApp

T = TypeVar("T")
Headers = list[tuple[bytes, bytes]]


class ClientDisconnected(OSError):
    """The client went away before the whole request body arrived."""


async def _invoke(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await function(*args)


class WSGIMiddleware:
    """An ASGI app that runs ``app`` with up to ``workers`` requests at a time."""

    def __init__(self, app: WSGIApp, workers: int = 10) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="esg-wsgi")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            loop = asyncio.get_running_loop()
            exchange = WSGIExchange(self.app, scope, receive, send, loop)
            await loop.run_in_executor(self.executor, exchange.run)
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})  # before accept: 403
        # lifespan: WSGI has no such notion; returning tells the server it is unsupported.


class RequestBody:
    """``wsgi.input``: a read-only file over the request body, filled on demand."""

    def __init__(self, next_message: Callable[[], Message]) -> None:
        self._next_message = next_message
        self._buffer = bytearray()
        self._more_body = True
        self._disconnected = False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        searched = 0
        while True:
            newline = self._buffer.find(b"\n", searched)
            if newline >= 0:
                length = newline + 1
                break
            searched = len(self._buffer)
            if (limit is not None and searched >= limit) or not self._fill():
                length = searched
                break
        return self._take(length if limit is None else min(length, limit))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _fill(self) -> bool:
        """Append the next body message to the buffer; False once the body has ended."""
        if self._disconnected:
            raise ClientDisconnected("client disconnected while sending the request body")
        if not self._more_body:
            return False
        message = self._next_message()
        if message["type"] == "http.disconnect":
            self._disconnected = True
            return self._fill()
        self._buffer += message.get("body", b"")
        self._more_body = bool(message.get("more_body", False))
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class WSGIExchange:
    """One request/response, run in a worker thread."""

    def __init__(
        self,
        app: WSGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self.send = send
        self.loop = loop
        self.status: int | None = None
        self.headers: Headers = []
        self.response_started = False

    def run(self) -> None:
        environ = build_environ(self.scope, RequestBody(self._receive_from_thread))
        result = self.app(environ, self.start_response)
        try:
            if isinstance(result, (list, tuple)):
                # Fully built already: one body message lets the server set Content-Length.
                self._send_last(b"".join(result))
            else:
                for chunk in result:
                    self.write(chunk)
                self._send_last(b"")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            if self.response_started:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise RuntimeError("start_response() called a second time without exc_info")
        self.status = parse_status(status)
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]
        return self.write

    def write(self, data: bytes) -> None:
        """Send a body chunk (also PEP 3333's legacy ``write`` callable)."""
        if data:
            self._start_if_needed()
            self._call_on_loop(
                self.send, {"type": "http.response.body", "body": data, "more_body": True}
            )

    def _send_last(self, data: bytes) -> None:
        self._start_if_needed()
        self._call_on_loop(self.send, {"type": "http.response.body", "body": data})

    def _start_if_needed(self) -> None:
        if self.response_started:
            return
        if self.status is None:
            raise RuntimeError("WSGI app produced a response without calling start_response()")
        self.response_started = True
        start = {"type": "http.response.start", "status": self.status, "headers": self.headers}
        self._call_on_loop(self.send, start)

    def _receive_from_thread(self) -> Message:
        return self._call_on_loop(self.receive)

    def _call_on_loop(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        return asyncio.run_coroutine_threadsafe(_invoke(function, *args), self.loop).result()


def parse_status(status: str) -> int:
    code = status.split(" ", 1)[0]
    if len(code) != 3 or not code.isdigit():
        raise ValueError(f"invalid WSGI status line {status!r}")
    return int(code)


def build_environ(scope: Scope, body: RequestBody) -> Environ:
    """The PEP 3333 environ for an ASGI ``http`` scope."""
    scheme = scope.get("scheme", "http")
    script_name = to_wsgi_str(scope.get("root_path", "")).rstrip("/")
    environ: Environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": strip_script_name(to_wsgi_str(scope["path"]), script_name),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        # wsgi.input ends where the body ends (also for chunked uploads without a length):
        # frameworks that honour this flag read it to EOF instead of trusting CONTENT_LENGTH.
        "wsgi.input_terminated": True,
    }
    environ.update(server_fields(scope.get("server"), scheme))
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    add_header_fields(environ, scope.get("headers", []))
    return environ


def to_wsgi_str(text: str) -> str:
    """PEP 3333 "native strings": the UTF-8 bytes of the path, one character per byte."""
    return text.encode("utf-8").decode("latin-1")


def strip_script_name(path: str, script_name: str) -> str:
    """``path`` below ``script_name``, which must match whole segments (``/api`` ≠ ``/apiv2``)."""
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        return path[len(script_name) :]
    return path


def server_fields(server: tuple[str, int | None] | None, scheme: str) -> dict[str, str]:
    host, port = server if server else ("localhost", None)
    if port is None:
        port = 443 if scheme == "https" else 80
    return {"SERVER_NAME": str(host), "SERVER_PORT": str(port)}


def add_header_fields(environ: Environ, headers: Iterable[tuple[bytes, bytes]]) -> None:
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name == "content-type":
            key = "CONTENT_TYPE"
        elif name == "content-length":
            key = "CONTENT_LENGTH"
        elif "_" in name:
            continue  # see the module docstring: would alias a dash-separated header
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ","
            value = environ[key] + separator + value
        environ[key] = value
