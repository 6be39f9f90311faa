"""HTTP/2 served by a real esg process, checked with real clients (both builds).

curl (prior knowledge in cleartext, ALPN over TLS), httpx with ``http2=True``, nghttp and
h2load from nghttp2, headless Chromium over TLS, and Starlette and FastAPI apps unmodified.
The command-line clients are skipped where they aren't installed (Debian: ``curl``,
``nghttp2-client``, ``chromium``; ``ESG_REQUIRE_BROWSER=1`` makes a missing browser a failure).
gRPC has its own file (tests/test_e2e_grpc.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from utils import ServerProcess, run_server, wait_for

pytestmark = pytest.mark.slow

UPLOAD = bytes(range(256)) * 1024  # 256 KiB: beyond HTTP/2's default 64 KiB windows


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, capture_output=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server("apps.h2_app:app", "--no-access-log") as process:
        yield process


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("h2tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    files = {"cert": folder / "cert.pem", "key": folder / "key.pem", "ca": folder / "ca.pem"}
    cert.private_key_and_cert_chain_pem.write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    tls_ca.cert_pem.write_to_path(str(files["ca"]))
    return {name: str(path) for name, path in files.items()}


@pytest.fixture(scope="module")
def tls_server(tls_files: dict[str, str]) -> Iterator[ServerProcess]:
    args = ("--ssl-certfile", tls_files["cert"], "--ssl-keyfile", tls_files["key"])
    with run_server("apps.h2_app:app", "--no-access-log", *args) as process:
        yield process


# -- curl --------------------------------------------------------------------------------------


def test_curl_prior_knowledge(server: ServerProcess) -> None:
    curl = tool("curl")
    done = run(
        curl, "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version}", f"{server.url}/scope?a=1"
    )
    assert done.returncode == 0, done.stderr
    body, version = done.stdout.decode().rsplit("\n", 1)
    assert version == "2"
    scope = json.loads(body)
    assert (scope["http_version"], scope["scheme"], scope["query_string"]) == ("2", "http", "a=1")


def test_curl_prior_knowledge_upload(server: ServerProcess, tmp_path: Path) -> None:
    curl = tool("curl")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(UPLOAD)
    done = run(
        curl, "-sS", "--http2-prior-knowledge", "--data-binary", f"@{upload}", f"{server.url}/echo"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == UPLOAD


def test_curl_over_tls_negotiates_h2(tls_server: ServerProcess, tls_files: dict[str, str]) -> None:
    curl = tool("curl")
    url = f"https://127.0.0.1:{tls_server.port}/scope"
    done = run(curl, "-sS", "--http2", "--cacert", tls_files["ca"], "-w", "\n%{http_version}", url)
    assert done.returncode == 0, done.stderr
    body, version = done.stdout.decode().rsplit("\n", 1)
    assert version == "2"
    assert json.loads(body)["scheme"] == "https"
    # A client that asks for HTTP/1.1 still gets it on the same port.
    done = run(
        curl, "-sS", "--http1.1", "--cacert", tls_files["ca"], "-w", "\n%{http_version}", url
    )
    assert done.stdout.decode().rsplit("\n", 1)[1] == "1.1"


def test_http11_still_served_on_the_same_port(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/scope", timeout=20)
    assert response.http_version == "HTTP/1.1"
    assert response.json()["http_version"] == "1.1"


# -- a browser --------------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    if os.environ.get("ESG_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail("ESG_REQUIRE_BROWSER=1 but no chromium binary is installed")
    pytest.skip("no chromium binary (apt-get install chromium); set ESG_REQUIRE_BROWSER=1 to fail")


def spki_hash(cert_file: str) -> str:
    """The base64 SHA-256 of the leaf certificate's public key: what Chromium's
    ``--ignore-certificate-errors-spki-list`` trusts (this key only, not every error)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(cert_file, "rb") as file:
        leaf = x509.load_pem_x509_certificates(file.read())[0]
    der = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_chromium_loads_a_page_over_h2(
    tls_server: ServerProcess, tls_files: dict[str, str], tmp_path: Path
) -> None:
    binary = chromium()
    command = [
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-proxy-server",
        f"--ignore-certificate-errors-spki-list={spki_hash(tls_files['cert'])}",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",  # the page's fetch completes before the DOM is dumped
        "--dump-dom",
        f"https://127.0.0.1:{tls_server.port}/page",
    ]
    browser = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = browser.communicate(timeout=90)
    finally:  # the browser's helper processes too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
        browser.wait(10)
    dom = out.decode(errors="replace")
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, (browser.returncode, dom[:500], err[-2000:])
    found = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    assert found == {"navigation": "h2", "fetch": "h2", "scope": "2"}, dom


# -- httpx (h2) --------------------------------------------------------------------------------


def test_httpx_http2_over_tls(tls_server: ServerProcess, tls_ca: trustme.CA) -> None:
    pytest.importorskip("h2")
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    url = f"https://127.0.0.1:{tls_server.port}"
    with httpx.Client(base_url=url, http2=True, verify=context, timeout=20) as client:
        response = client.get("/scope")
        assert response.http_version == "HTTP/2"
        assert response.json()["http_version"] == "2"
        echoed = client.post("/echo", content=UPLOAD)
        assert echoed.content == UPLOAD
        streamed = client.get("/stream", params={"n": "3"})
        assert streamed.text == "piece-0\npiece-1\npiece-2\n"


def test_httpx_many_concurrent_streams_on_one_connection(server: ServerProcess) -> None:
    pytest.importorskip("h2")
    import asyncio

    async def main() -> list[int]:
        async with httpx.AsyncClient(
            base_url=server.url, http1=False, http2=True, timeout=20
        ) as client:
            responses = await asyncio.gather(
                *(client.get("/slow", params={"t": "0.2"}) for _ in range(50))
            )
            assert {r.http_version for r in responses} == {"HTTP/2"}
            return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * 50


# -- nghttp2's clients ----------------------------------------------------------------------------


def test_nghttp_trailers(server: ServerProcess) -> None:
    nghttp = tool("nghttp")
    done = run(nghttp, "-v", f"{server.url}/trailers")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "grpc-status: 0" in out
    assert "grpc-message: fine" in out
    assert run(nghttp, f"{server.url}/trailers").stdout == b"first,second"


def test_nghttp_upload_and_many_streams(server: ServerProcess, tmp_path: Path) -> None:
    nghttp = tool("nghttp")
    upload = tmp_path / "up.bin"
    upload.write_bytes(UPLOAD)
    done = run(nghttp, "-n", "-s", "-m", "20", "-d", str(upload), f"{server.url}/echo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().count("/echo") == 20  # one statistics line per request


def test_h2load(server: ServerProcess) -> None:
    h2load = tool("h2load")
    done = run(h2load, "-n", "2000", "-c", "4", "-m", "10", f"{server.url}/")
    out = done.stdout.decode()
    assert done.returncode == 0, out
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 2000 2xx" in out, out


# -- frameworks --------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["apps.starlette_app:app"])
def test_starlette_over_http2(app: str) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("h2")
    with (
        run_server(app) as process,
        httpx.Client(base_url=process.url, http1=False, http2=True, timeout=20) as client,
    ):
        index = client.get("/")
        assert index.http_version == "HTTP/2"
        assert index.json() == {"framework": "starlette", "path": "/"}
        upload = client.post("/upload", content=UPLOAD)
        assert upload.json() == {"length": len(UPLOAD), "head": UPLOAD[:10].decode("latin-1")}
        with client.stream("GET", "/stream") as response:
            text = b"".join(response.iter_bytes()).decode()
        assert text == "number 0\nnumber 1\nnumber 2\nnumber 3\n"
        assert client.get("/missing").status_code == 404


def test_fastapi_over_http2() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("h2")
    with (
        run_server("apps.fastapi_app:app") as process,
        httpx.Client(base_url=process.url, http1=False, http2=True, timeout=20) as client,
    ):
        created = client.post("/items", json={"name": "lamp", "price": 10.0, "tags": ["home"]})
        assert created.http_version == "HTTP/2"
        assert created.json() == {"name": "lamp", "price_with_tax": 12.0, "tags": ["home"]}
        assert client.get("/users/42/orders/a-7").json() == {"user_id": 42, "order_id": "a-7"}
        assert client.post("/items", json={"name": "x", "price": "no"}).status_code == 422


# -- shutdown ----------------------------------------------------------------------------------


def test_goaway_at_shutdown_lets_streams_in_flight_finish(tmp_path: Path) -> None:
    # curl, not httpx: the h2 package closes its side on the first GOAWAY it receives and then
    # refuses the frames of the streams in flight (its state machine has no transition for
    # them), so an h2-based client can't see a graceful shutdown through.
    curl = tool("curl")
    started, gate = tmp_path / "started", tmp_path / "gate"
    with run_server("apps.h2_app:app") as process:
        url = f"{process.url}/gated?started={started}&gate={gate}"
        client = subprocess.Popen(
            [curl, "-sS", "--http2-prior-knowledge", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert wait_for(started.exists)
            process.signal(signal.SIGTERM)
            # GOAWAY went out and the server waits for the stream in flight.
            assert wait_for(lambda: "Waiting for connections to close" in process.stderr())
            assert process.proc.poll() is None
            gate.write_text("open")
            out, err = client.communicate(timeout=30)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        assert process.wait() == 0
    assert (client.returncode, out) == (0, b"gate opened"), err


def test_limit_max_requests_retires_http2_with_goaway_and_drains() -> None:
    """``--limit-max-requests`` over HTTP/2: the two-phase GOAWAY (section 6.8) names the last
    stream the client sent before it learned of the shutdown; those streams finish, a stream
    opened after the final GOAWAY is ignored, then the connection closes and esg exits 0."""
    import struct

    import hpack

    encoder = hpack.Encoder()

    def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
        return (
            struct.pack(">I", len(payload))[1:]
            + bytes([ftype, flags])
            + struct.pack(">I", sid)
            + payload
        )

    def request(sid: int) -> bytes:
        fields = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/slow?t=0.3"),
            (":authority", "t"),
        ]
        return frame(1, 0x5, sid, encoder.encode(fields))  # END_STREAM | END_HEADERS

    with run_server("apps.h2_app:app", "--no-access-log", "--limit-max-requests", "2") as process:
        sock = process.connect(timeout=20)
        with sock:
            preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0)
            sock.sendall(preface + b"".join(request(sid) for sid in (1, 3, 5, 7)))
            goaways: list[int] = []
            ended: list[int] = []
            buffer = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                buffer += data
                while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
                    length = int.from_bytes(buffer[:3], "big")
                    ftype, flags = buffer[3], buffer[4]
                    sid = int.from_bytes(buffer[5:9], "big")
                    payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
                    if ftype == 6 and not flags & 1:  # PING: answer it, as a client must
                        sock.sendall(frame(6, 1, 0, payload))
                    elif ftype == 4 and not flags & 1:
                        sock.sendall(frame(4, 1, 0))
                    elif ftype == 7:
                        last, code = struct.unpack(">II", payload[:8])
                        assert code == 0
                        goaways.append(last)
                        if len(goaways) == 2:  # the final one: a new stream is too late
                            sock.sendall(request(9))
                    elif ftype in (0, 1) and flags & 1:
                        ended.append(sid)
        assert process.wait() == 0, process.stderr()
    assert goaways == [2**31 - 1, 7]
    assert sorted(ended) == [1, 3, 5, 7]  # every stream sent before the GOAWAY was answered


def test_a_stalled_continuation_sequence_is_closed_at_the_header_timeout() -> None:
    """HEADERS without END_HEADERS, one CONTINUATION, then nothing: a header block left open
    blocks the whole connection (section 6.10), so ``--timeout-header`` ends it with GOAWAY."""
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    settings_ack = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
    # GET / on stream 1 (:method GET, :scheme http, :path /, :authority a), a whole request.
    request = b"\x00\x00\x06\x01\x05\x00\x00\x00\x01\x82\x86\x84\x01\x01a"
    headers = b"\x00\x00\x01\x01\x00\x00\x00\x00\x03\x82"  # stream 3, no END_HEADERS
    continuation = b"\x00\x00\x01\x09\x00\x00\x00\x00\x03\x84"  # still no end
    args = ("--no-access-log", "--timeout-header", "1", "--timeout-keep-alive", "60")
    with run_server("apps.h2_app:app", *args) as process, process.raw(timeout=30) as conn:
        conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + settings_ack + request)
        conn.read_until(
            b"hello, world"
        )  # the first request is answered: the preface's deadline is off
        conn.send(headers + continuation)
        received = conn.read_to_close()
    goaway = received.rfind(b"\x07\x00\x00\x00\x00\x00")  # type GOAWAY, no flags, stream 0
    assert goaway > 0, received
    assert received[goaway + 10 : goaway + 14] == b"\x00\x00\x00\x00"  # NO_ERROR
