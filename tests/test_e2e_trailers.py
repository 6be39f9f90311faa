"""Trailers on HTTP/1.1 against a real esg process (both builds): curl and a raw socket.

The app (tests/apps/h2_app.py ``/trailers``) sends gRPC-style trailers whenever the scope offers
the extension.  A request with ``TE: trailers`` gets them as the chunked body's trailer section;
one without gets the same body and no trailers.  A chunked request's own trailers end its body.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from utils import ServerProcess, run_server

pytestmark = pytest.mark.slow

TRAILER_SECTION = b"0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server("apps.h2_app:app", "--no-access-log") as process:
        yield process


def curl(*args: str) -> bytes:
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed")
    done = subprocess.run([path, "-sS", *args], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_curl_sees_the_trailer_section_when_it_asks(server: ServerProcess) -> None:
    raw = curl("--raw", "-H", "TE: trailers", f"{server.url}/trailers")
    assert raw == b"6\r\nfirst,\r\n6\r\nsecond\r\n" + TRAILER_SECTION
    assert curl("-H", "TE: trailers", f"{server.url}/trailers") == b"first,second"


def test_curl_without_te_gets_no_trailers(server: ServerProcess) -> None:
    raw = curl("--raw", f"{server.url}/trailers")
    assert raw == b"6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n"


def test_raw_socket_keep_alive_across_trailers(server: ServerProcess) -> None:
    request = b"GET /trailers HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n"
    with server.raw() as conn:
        for _ in range(2):  # the connection stays usable after a trailer section
            conn.send(request)
            head = conn.read_until(b"\r\n\r\n").lower()
            assert b"transfer-encoding: chunked" in head
            assert conn.read_until(TRAILER_SECTION).endswith(b"second\r\n" + TRAILER_SECTION)
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert conn.read_to_close().startswith(b"HTTP/1.1 200 ")


def test_request_trailers_end_the_body(server: ServerProcess) -> None:
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\nX-Other: yes\r\n\r\n"
    request = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Trailer: X-Checksum\r\nConnection: close\r\n\r\n" + body
    )
    with server.raw() as conn:
        conn.send(request)
        response = conn.read_to_close()
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"\r\n\r\nhello world")
