from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from esg._types import Environ, Message, StartResponse, WSGIApp
from esg.middleware.wsgi import ClientDisconnected, WSGIMiddleware, build_environ

OK = "200 OK"


def http_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/app/items/ü",
        "raw_path": b"/app/items/%C3%BC",
        "query_string": b"a=1&b=%20",
        "root_path": "/app",
        "headers": [
            (b"host", b"example.com"),
            (b"content-type", b"text/plain"),
            (b"content-length", b"5"),
            (b"accept", b"text/html"),
            (b"accept", b"*/*"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"x_forwarded_for", b"6.6.6.6"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(overrides)
    return scope


class Exchange:
    """Runs a WSGI app through the middleware with a scripted request body."""

    def __init__(self, body_chunks: Iterable[bytes] = (b"",), disconnect: bool = False) -> None:
        chunks = list(body_chunks)
        self.messages: list[Message] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        if disconnect:
            self.messages[-1]["more_body"] = True
            self.messages.append({"type": "http.disconnect"})
        self.sent: list[Message] = []
        self.events: list[str] = []  # receive and app steps, in the order they happened

    async def receive(self) -> Message:
        if not self.messages:
            return {"type": "http.disconnect"}
        message = self.messages.pop(0)
        self.events.append(f"produced {message.get('body', b'')!r}")
        return message

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def run(self, app: WSGIApp, scope: dict[str, Any] | None = None) -> None:
        middleware = WSGIMiddleware(app, workers=2)
        try:
            asyncio.run(middleware(scope or http_scope(), self.receive, self.send))
        finally:
            middleware.executor.shutdown(wait=True)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def simple_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response(OK, [("Content-Type", "text/plain"), ("X-Extra", "1")])
    return [b"hello ", b"world"]


def test_environ_fields() -> None:
    captured: dict[str, Any] = {}

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        captured.update(environ)
        start_response(OK, [])
        return []

    Exchange().run(app)
    expected = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/items/\xc3\xbc",  # UTF-8 bytes as latin-1 characters
        "QUERY_STRING": "a=1&b=%20",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "5",
        "HTTP_HOST": "example.com",
        "HTTP_ACCEPT": "text/html,*/*",
        "HTTP_COOKIE": "a=1; b=2",
        "HTTP_X_FORWARDED_FOR": "1.2.3.4",  # the underscore spelling was dropped
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    assert {key: captured.get(key) for key in expected} == expected
    assert "HTTP_CONTENT_TYPE" not in captured and "HTTP_CONTENT_LENGTH" not in captured


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        ("", "/a/b", "", "/a/b"),
        ("/api", "/api", "/api", ""),
        ("/api/", "/api/x", "/api", "/x"),
        ("/api", "/apiv2/x", "/api", "/apiv2/x"),
    ],
)
def test_root_path_is_stripped_by_whole_segments(
    root_path: str, path: str, script_name: str, path_info: str
) -> None:
    environ = build_environ(http_scope(root_path=root_path, path=path), None)  # type: ignore[arg-type]
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_missing_server_and_client() -> None:
    environ = build_environ(http_scope(server=None, client=None), None)  # type: ignore[arg-type]
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "443")
    assert "REMOTE_ADDR" not in environ


def test_response_start_and_body() -> None:
    exchange = Exchange()
    exchange.run(simple_app)
    assert exchange.sent == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"x-extra", b"1")],
        },
        {"type": "http.response.body", "body": b"hello world"},
    ]


def test_generator_response_is_streamed_chunk_by_chunk() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("201 Created", [])
        yield b"one"
        yield b""  # empty chunks are not sent
        yield b"two"

    exchange = Exchange()
    exchange.run(app)
    body_messages = ["http.response.body"] * 3
    assert [m["type"] for m in exchange.sent] == ["http.response.start", *body_messages]
    assert exchange.sent[0]["status"] == 201
    assert [m.get("more_body", False) for m in exchange.sent[1:]] == [True, True, False]
    assert exchange.body == b"onetwo"


def test_request_body_is_streamed_not_read_up_front() -> None:
    exchange = Exchange([b"first", b"second", b"third"])

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        exchange.events.append(f"app read {stream.read(5)!r}")
        exchange.events.append(f"app read {stream.read(6)!r}")
        exchange.events.append(f"app read {stream.read()!r}")
        start_response(OK, [])
        return []

    exchange.run(app)
    assert exchange.events == [
        "produced b'first'",
        "app read b'first'",
        "produced b'second'",
        "app read b'second'",
        "produced b'third'",
        "app read b'third'",
    ]


def test_large_body_in_pieces() -> None:
    pieces = [bytes([i]) * 16384 for i in range(32)]
    exchange = Exchange(pieces)
    digests: list[str] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        digest = hashlib.sha256()
        while data := environ["wsgi.input"].read(10000):
            digest.update(data)
        digests.append(digest.hexdigest())
        start_response(OK, [])
        return []

    exchange.run(app)
    assert digests == [hashlib.sha256(b"".join(pieces)).hexdigest()]


def test_readline_readlines_and_iteration() -> None:
    results: list[Any] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        results.append(stream.readline())
        results.append(stream.readline(3))
        results.append(stream.readlines(1))
        results.append(list(stream))
        results.append(stream.read())
        start_response(OK, [])
        return []

    Exchange([b"ab", b"c\nlong", b"er line\nx\ny\n", b"z"]).run(app)
    assert results == [b"abc\n", b"lon", [b"ger line\n"], [b"x\n", b"y\n", b"z"], b""]


def test_disconnect_mid_body_raises() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        environ["wsgi.input"].read()
        raise AssertionError("a truncated body must not read as complete")

    with pytest.raises(ClientDisconnected):
        Exchange([b"partial"], disconnect=True).run(app)


def test_exception_before_start_response_propagates() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise ZeroDivisionError

    exchange = Exchange()
    with pytest.raises(ZeroDivisionError):
        exchange.run(app)
    assert exchange.sent == []


def test_missing_start_response_is_an_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return [b"body"]

    with pytest.raises(RuntimeError, match="start_response"):
        Exchange().run(app)


class ClosingBody:
    def __init__(self, fail: bool = False) -> None:
        self.closed = False
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        yield b"part"
        if self.fail:
            raise OSError("disk gone")

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("fail", [False, True])
def test_iterable_close_is_called(fail: bool) -> None:
    body = ClosingBody(fail)

    def app(environ: Environ, start_response: StartResponse) -> ClosingBody:
        start_response(OK, [])
        return body

    exchange = Exchange()
    if fail:
        with pytest.raises(OSError, match="disk gone"):
            exchange.run(app)
    else:
        exchange.run(app)
    assert body.closed
    assert exchange.body == b"part"


def test_write_callable_sends_immediately() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response(OK, [("Content-Length", "7")])
        write(b"abc")
        return [b"defg"]

    exchange = Exchange()
    exchange.run(app)
    assert exchange.body == b"abcdefg"
    assert exchange.sent[0]["headers"] == [(b"content-length", b"7")]


def test_exc_info_replaces_headers_before_they_are_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(OK, [("X-A", "1")])
        try:
            raise ValueError
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error"]

    exchange = Exchange()
    exchange.run(app)
    assert exchange.sent[0] == {"type": "http.response.start", "status": 500, "headers": []}


def test_exc_info_after_headers_sent_reraises() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response(OK, [])
        yield b"started"
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    exchange = Exchange()
    with pytest.raises(KeyError, match="late"):
        exchange.run(app)
    assert exchange.body == b"started"


def test_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(OK, [])
        start_response(OK, [])
        return []

    with pytest.raises(RuntimeError, match="second time"):
        Exchange().run(app)


def test_lifespan_scope_returns_quietly() -> None:
    exchange = Exchange()
    exchange.run(simple_app, {"type": "lifespan"})
    assert exchange.sent == []


def test_websocket_scope_is_closed() -> None:
    exchange = Exchange()
    exchange.messages = [{"type": "websocket.connect"}]
    exchange.run(simple_app, {"type": "websocket"})
    assert exchange.sent == [{"type": "websocket.close", "code": 1000}]
