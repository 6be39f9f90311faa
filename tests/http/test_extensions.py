"""The ASGI extensions on a fake transport, against both builds: the scope's ``extensions``,
103 Early Hints, and file bodies on the path that reads the file (a fake transport has no
socket for ``os.sendfile``: the same path TLS, HTTP/2 and held pipelined responses take).

The ``os.sendfile`` path needs a real socket: tests/test_e2e_extensions.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import fake_transport as fake
import pytest

from esg._ssl import tls_extension

run = fake.run
request = fake.request


# -- the scope -------------------------------------------------------------------------------


def test_plain_connection_offers_files_and_hints_not_tls(build: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await fake.respond(send, b"ok")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request() + request())
        await conn.responses(2)

    run(scenario())
    extensions = scopes[0]["extensions"]
    assert set(extensions) == {
        "http.response.pathsend",
        "http.response.zerocopysend",
        "http.response.early_hint",
        "http.response.trailers",
    }
    assert scopes[1]["extensions"] == extensions


def test_what_an_app_adds_to_its_extensions_stays_with_its_request(build: Any) -> None:
    # The connection builds the dict once; each scope gets its own copy of it.
    seen: list[set[str]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(set(scope["extensions"]))
        scope["extensions"]["example.request_only"] = {}
        await fake.respond(send, b"ok")

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(request() + request())
        await conn.responses(2)

    run(scenario())
    assert "example.request_only" not in seen[1]
    assert seen[0] == seen[1]


class FakeSSLObject:
    """What ``tls_extension`` reads of an ``ssl.SSLObject``, for a TLS 1.3 connection."""

    def __init__(self) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def cipher(self) -> tuple[str, str, int]:
        return ("TLS_AES_128_GCM_SHA256", "TLSv1.3", 128)

    def version(self) -> str:
        return "TLSv1.3"

    def getpeercert(self, binary_form: bool = False) -> Any:
        return None if binary_form else {}

    def selected_alpn_protocol(self) -> None:
        return None


def test_tls_connection_offers_tls(build: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await fake.respond(send, b"ok")

    async def scenario() -> None:
        ssl_object = FakeSSLObject()
        extra = {"sslcontext": ssl_object.context, "ssl_object": ssl_object}
        conn = fake.connect(build, app, extra=extra)
        conn.feed(request())
        await conn.response()

    run(scenario())
    tls = scopes[0]["extensions"]["tls"]
    assert scopes[0]["scheme"] == "https"
    assert tls == {
        "server_cert": None,  # a context esg didn't make: its certificate is unknown
        "client_cert_chain": [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": 0x0304,
        "cipher_suite": 0x1301,
    }


def test_client_name_is_rfc4514() -> None:
    ssl_object: Any = FakeSSLObject()
    subject = (
        (("countryName", "FR"),),
        (("organizationName", "a,b+c"),),
        (("commonName", " lead"), ("emailAddress", "x@example.org")),
    )
    ssl_object.getpeercert = lambda binary_form=False: b"" if binary_form else {"subject": subject}
    name = tls_extension(ssl_object)["client_cert_name"]
    assert name == r"CN=\ lead+emailAddress=x@example.org,O=a\,b\+c,C=FR"


# -- early hints -----------------------------------------------------------------------------


def hinting_app(links: list[Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.early_hint", "links": links})
        await fake.respond(send, b"page")

    return app


def test_early_hint_is_a_103_before_the_response(build: Any) -> None:
    async def scenario() -> bytes:
        conn = fake.connect(build, hinting_app([b"</a.css>; rel=preload", "</b.js>; rel=preload"]))
        conn.feed(request())
        await conn.until(lambda: conn.written.endswith(b"page"), "the response")
        return conn.written

    written = run(scenario())
    hint, _, rest = written.partition(b"\r\n\r\n")
    assert hint == (
        b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\nlink: </b.js>; rel=preload"
    )
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")


def test_early_hint_is_dropped_for_http10(build: Any) -> None:
    async def scenario() -> bytes:
        conn = fake.connect(build, hinting_app([b"</a.css>; rel=preload"]))
        conn.feed(request(version="1.0"))
        await conn.until(lambda: conn.written.endswith(b"page"), "the response")
        return conn.written

    written = run(scenario())
    assert written.startswith(b"HTTP/1.1 200 OK\r\n") and b"103" not in written


def test_early_hint_with_a_line_break_is_refused(build: Any) -> None:
    async def scenario() -> fake.FakeTransport:
        conn = fake.connect(build, hinting_app([b"</a.css>\r\nx-split: 1"]))
        conn.feed(request())
        await conn.until(lambda: conn.transport.aborted, "the abort")
        return conn.transport

    transport = run(scenario())
    assert transport.data == b""


# -- files on the reading path ---------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 1200)  # 300 KiB: more than one read
    return path


def file_app(message: dict[str, Any], status: int = 200, headers: Any = ()) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send(message)

    return app


def test_pathsend_sets_content_length(build: Any, data_file: Path) -> None:
    async def scenario() -> fake.Response:
        conn = fake.connect(
            build, file_app({"type": "http.response.pathsend", "path": str(data_file)})
        )
        conn.feed(request())
        return await conn.response()

    response = run(scenario())
    assert response.status == 200
    assert response.header(b"content-length") == str(data_file.stat().st_size).encode()
    assert response.body == data_file.read_bytes()


def test_pathsend_to_head_and_304_sends_no_body(build: Any, data_file: Path) -> None:
    message = {"type": "http.response.pathsend", "path": str(data_file)}

    async def scenario(status: int, method: str) -> tuple[bytes, bool]:
        conn = fake.connect(build, file_app(message, status))
        conn.feed(request(method) + request())
        await conn.until(lambda: conn.written.count(b"HTTP/1.1 ") >= 2, "two responses")
        return conn.written, conn.transport.is_closing()

    written, closing = run(scenario(200, "HEAD"))
    size = str(data_file.stat().st_size).encode()
    assert written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: " + size + b"\r\n\r\nHTTP/1.1 200" in written  # no body between
    assert not closing
    written, _ = run(scenario(304, "GET"))
    assert written.startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert b"content-length" not in written.split(b"\r\n\r\n")[0]


def test_zerocopysend_pieces_are_chunked(build: Any, data_file: Path) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(data_file, "rb") as file:
            file.seek(10)
            # no offset: from the file's position, which then advances
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "count": 1000,
                    "more_body": True,
                }
            )
            assert file.tell() == 1010
            await send({"type": "http.response.body", "body": b"|", "more_body": True})
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file.fileno(),
                    "offset": 0,
                    "count": 5,
                }
            )

    async def scenario() -> fake.Response:
        conn = fake.connect(build, app)
        conn.feed(request())
        return await conn.response()

    response = run(scenario())
    data = data_file.read_bytes()
    assert response.header(b"transfer-encoding") == b"chunked"
    assert response.body == data[10:1010] + b"|" + data[:5]


def test_file_shorter_than_its_count_aborts(build: Any, data_file: Path) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(data_file, "rb") as file:
            size = data_file.stat().st_size
            with pytest.raises(RuntimeError, match="file ended"):
                await send(
                    {
                        "type": "http.response.zerocopysend",
                        "file": file,
                        "offset": 0,
                        "count": size + 1,
                    }
                )

    async def scenario() -> fake.FakeTransport:
        conn = fake.connect(build, app)
        conn.feed(request())
        await conn.until(lambda: conn.transport.aborted, "the abort")
        return conn.transport

    transport = run(scenario())
    assert transport.aborted


def test_missing_file_is_a_500(build: Any, tmp_path: Path) -> None:
    message = {"type": "http.response.pathsend", "path": str(tmp_path / "missing")}

    async def scenario() -> fake.Response:
        conn = fake.connect(build, file_app(message))
        conn.feed(request())
        return await conn.response()

    assert run(scenario()).status == 500


def test_pipelined_files_stay_in_order(build: Any, tmp_path: Path) -> None:
    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.txt"
        path.write_bytes(b"file %d " % index * 5000)
        paths.append(path)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = paths[int(scope["path"][1:])]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async def scenario() -> list[fake.Response]:
        conn = fake.connect(build, app)
        conn.feed(request(target="/0") + request(target="/1") + request(target="/2"))
        return await conn.responses(3)

    responses = run(scenario())
    assert [response.body for response in responses] == [path.read_bytes() for path in paths]


def test_websocket_scope_over_tls_offers_tls(build: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.close"})

    async def scenario() -> None:
        ssl_object = FakeSSLObject()
        extra = {"sslcontext": ssl_object.context, "ssl_object": ssl_object}
        conn = fake.connect(build, app, extra=extra)
        conn.feed(fake.upgrade_request())
        await conn.until(lambda: bool(scopes), "the websocket scope")

    run(scenario())
    extensions = scopes[0]["extensions"]
    assert set(extensions) == {"websocket.http.response", "tls"}
    assert extensions["tls"]["tls_version"] == 0x0304
    assert scopes[0]["scheme"] == "wss"


def test_early_hint_after_the_head_is_ignored(build: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.early_hint", "links": [b"</late.css>; rel=preload"]})
        await send({"type": "http.response.body", "body": b"b"})

    async def scenario() -> fake.Response:
        conn = fake.connect(build, app)
        conn.feed(request())
        return await conn.response()

    response = run(scenario())
    assert response.status == 200 and response.body == b"ab"
