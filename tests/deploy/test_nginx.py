"""The real nginx in front of esg, configured by examples/nginx/esg.conf as shipped.

Each test runs twice: nginx reaching esg over TCP (``127.0.0.1:PORT``) and over a UNIX socket
(``esg --uds``), with esg's command line from the example's comment.  The client connects to
nginx from 127.0.0.5, an address esg doesn't trust, so the app seeing ``127.0.0.5`` as its
client proves the address came through X-Forwarded-For (esg's own peer is nginx).

What each test proves is in its docstring; none of them measures time: where order matters
(a streamed response), the app waits for an event the client can only cause after it saw the
first bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from proxies import Esg, Nginx, esg_app_args, port_free_on, run_nginx, scratch_dir
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.slow

CLIENT_ADDRESS = "127.0.0.5"  # the "real client": not in esg's --forwarded-allow-ips
UPLOAD_SIZE = 20 * 1024 * 1024
TIMEOUT = 15.0  # seconds any one client operation may take


@dataclass
class Stack:
    transport: str
    nginx: Nginx
    esg: Esg
    metrics_port: int
    ca_file: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.nginx.http_port}"

    @property
    def https(self) -> str:
        return f"https://localhost:{self.nginx.https_port}"

    def client(self, http2: bool = False) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.ca_file))
        transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS, http2=http2, verify=verify)
        return httpx.Client(transport=transport, timeout=TIMEOUT)

    def metrics(self) -> dict[str, float]:
        """esg's own counters (its --metrics listener), unlabelled series only."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=TIMEOUT).text
        values = {}
        for line in text.splitlines():
            match = re.fullmatch(r"([a-z_]+) ([0-9.e+]+)", line)
            if match:
                values[match.group(1)] = float(match.group(2))
        return values


@pytest.fixture(scope="module")
def tls_files() -> Iterator[tuple[Path, Path, Path]]:
    """A certificate for localhost from a throwaway CA: (certificate chain, key, CA)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    with scratch_dir("esg-nginx-tls-") as tmp:
        cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "chain.pem"))
        ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
        yield tmp / "chain.pem", tmp / "key.pem", tmp / "ca.pem"


@pytest.fixture(scope="module", params=["tcp", "uds"])
def stack(request: pytest.FixtureRequest, tls_files: tuple[Path, Path, Path]) -> Iterator[Stack]:
    certificate, key, ca_file = tls_files
    with scratch_dir("esg-nginx-") as tmp:
        metrics_port = port_free_on("127.0.0.1")
        # The example's command lines, in one process (the stream/release routes share memory)
        # and with --metrics, through which the tests see esg's side of the connections.
        extra = ["--metrics", "--metrics-port", str(metrics_port)]
        address: tuple[str, int] | str
        if request.param == "tcp":
            port = port_free_on("127.0.0.1")
            address, upstream = ("127.0.0.1", port), f"127.0.0.1:{port}"
            where = ["--host", "127.0.0.1", "--port", str(port)]
            where += ["--forwarded-allow-ips", "127.0.0.1"]
        else:
            address = str(tmp / "esg.sock")
            upstream = f"unix:{address}"
            where = ["--uds", address, "--forwarded-allow-ips", "*"]
        esg = Esg([*esg_app_args(), *where, *extra], tmp / "esg.log", address)
        esg.start()
        try:
            with run_nginx(tmp, upstream, certificate, key) as nginx:
                yield Stack(request.param, nginx, esg, metrics_port, ca_file)
        finally:
            esg.stop()


def test_the_app_sees_the_real_client_and_scheme(stack: Stack) -> None:
    """X-Forwarded-For/-Proto set by nginx become scope["client"] and scope["scheme"]; what a
    client claims in its own X-Forwarded-* headers is replaced by nginx, never believed."""
    spoofed = {"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https"}
    with stack.client() as client:
        seen = client.get(f"{stack.http}/scope", headers=spoofed).json()
    assert seen["client"] == [CLIENT_ADDRESS, 0]
    assert seen["scheme"] == "http"
    assert seen["forwarded"]["x-forwarded-for"] == CLIENT_ADDRESS
    with stack.client(http2=True) as client:
        seen = client.get(f"{stack.https}/scope", headers=spoofed).json()
    assert seen["client"] == [CLIENT_ADDRESS, 0]
    assert seen["scheme"] == "https"


def test_http2_to_the_client_http11_to_esg(stack: Stack) -> None:
    """nginx ends TLS and speaks HTTP/2 to the client (negotiated by ALPN); esg gets HTTP/1.1
    from nginx, as the example's proxy_http_version says."""
    with stack.client(http2=True) as client:
        response = client.get(f"{stack.https}/scope")
    assert response.http_version == "HTTP/2"
    assert response.json()["http_version"] == "1.1"
    with stack.client(http2=True) as client:
        response = client.get(f"{stack.https}/health")
    assert (response.http_version, response.status_code, response.text) == ("HTTP/2", 200, "ok\n")


def test_upstream_connections_are_kept_alive(stack: Stack) -> None:
    """`keepalive` + `proxy_http_version 1.1` + an empty Connection header: nginx reuses its
    connection to esg, though every client request comes on a new connection to nginx."""
    before = stack.metrics()
    requests = 30
    for _ in range(requests):
        with stack.client() as client:  # a new client connection each time
            response = client.get(f"{stack.http}/", headers={"connection": "close"})
            assert response.text == "Hello, world!"
    after = stack.metrics()
    accepted = after["esg_connections_accepted_total"] - before["esg_connections_accepted_total"]
    reused = after["esg_keepalive_requests_total"] - before["esg_keepalive_requests_total"]
    # One nginx worker sends the requests one after another on one idle connection, opened by
    # the first (or by an earlier test, then none at all); esg's keep-alive (5 s) outlasts
    # nginx's (4 s), so nothing closes it in between.  Without keep-alive: 30 connections.
    assert accepted <= 1, (accepted, reused)
    assert reused >= requests - 1, (accepted, reused)


def client_socket(stack: Stack) -> socket.socket:
    """A connection to nginx's HTTP port from CLIENT_ADDRESS."""
    address = ("127.0.0.1", stack.nginx.http_port)
    return socket.create_connection(address, TIMEOUT, (CLIENT_ADDRESS, 0))


def test_websocket_echo_through_nginx(stack: Stack) -> None:
    """The Upgrade/Connection map: a WebSocket handshake reaches esg and messages flow both
    ways; the app sees the real client and the ws/wss scheme."""
    with (
        client_socket(stack) as sock,
        ws_connect(
            f"ws://127.0.0.1:{stack.nginx.http_port}/echo", sock=sock, open_timeout=TIMEOUT
        ) as ws,
    ):
        messages: list[str | bytes] = ["hello", "x" * 100_000, b"\x00\xffbinary"]
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message
    with (
        client_socket(stack) as sock,
        ws_connect(
            f"ws://127.0.0.1:{stack.nginx.http_port}/ws-scope", sock=sock, open_timeout=TIMEOUT
        ) as ws,
    ):
        seen = json.loads(ws.recv(timeout=TIMEOUT))
    assert seen["client"] == [CLIENT_ADDRESS, 0]
    assert seen["scheme"] == "ws"


def test_large_upload_streams_to_the_app(stack: Stack) -> None:
    """A 20 MiB upload arrives whole (client_max_body_size 0) and is passed on as it comes
    (proxy_request_buffering off): nginx never spools it to a temporary file, which it logs."""
    body = hashlib.sha256(b"seed").digest() * (UPLOAD_SIZE // 32)

    def chunks() -> Iterator[bytes]:  # chunked request body: the size is not known up front
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    with stack.client() as client:
        sized = client.post(f"{stack.http}/upload", content=body).json()
        chunked = client.post(f"{stack.http}/upload", content=chunks()).json()
    expected = {"size": UPLOAD_SIZE, "sha256": hashlib.sha256(body).hexdigest()}
    assert sized == expected
    assert chunked == expected
    assert "buffered to a temporary file" not in stack.nginx.error_log()


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_streamed_response_is_not_buffered(stack: Stack, http2: bool) -> None:
    """proxy_buffering off: the first chunk of a response reaches the client while the app is
    still in the middle of it.  The app only finishes once the client, having read that
    chunk, releases it; had nginx held the chunk until the response ended, the client would
    wait for it in vain and the app would end with "timed out" instead of "last"."""
    key = uuid.uuid4().hex
    base = stack.https if http2 else stack.http
    with (
        stack.client(http2=http2) as client,
        client.stream("GET", f"{base}/stream", params={"id": key}) as response,
    ):
        pieces = response.iter_bytes()
        received = b""
        while not received.endswith(b"\n"):
            received += next(pieces)
        assert received == b"first\n"
        with stack.client() as other:
            released = other.post(f"{stack.http}/release", params={"id": key})
        assert released.status_code == 200, released.text
        received += b"".join(pieces)
    assert received == b"first\nlast\n"
