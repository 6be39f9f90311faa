"""esg served to real clients over loopback: httpx, curl, ApacheBench; TCP, UNIX socket, TLS."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from utils import RawConnection, ServerProcess, request_bytes, run_server

pytestmark = pytest.mark.slow

UPLOAD = os.urandom(100 * 1024)
MIB = 1024 * 1024


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


def curl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [need("curl"), "--silent", "--show-error", "--max-time", "20", *args]
    return subprocess.run(command, input=data, capture_output=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server("apps.basic:app") as process:
        yield process


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=20) as http:
        yield http


# -- httpx ------------------------------------------------------------------------------------


def test_httpx_get_head_post(client: httpx.Client) -> None:
    get = client.get("/")
    head = client.head("/")
    post = client.post("/echo", content=b"posted")
    assert (get.status_code, get.text) == (200, "hello, world")
    assert get.headers["content-type"] == "text/plain; charset=utf-8"
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == "12"
    assert (post.status_code, post.content) == (200, b"posted")
    assert get.http_version == "HTTP/1.1"


def test_httpx_reuses_the_keep_alive_connection(client: httpx.Client) -> None:
    ports = {json.loads(client.get("/scope").content)["client"][1] for _ in range(5)}
    assert len(ports) == 1


def test_httpx_upload_with_content_length(client: httpx.Client) -> None:
    response = client.post("/echo", content=UPLOAD)
    assert response.status_code == 200
    assert response.headers["x-received-length"] == str(len(UPLOAD))
    assert response.content == UPLOAD


def test_httpx_chunked_upload_from_generator(client: httpx.Client) -> None:
    def pieces() -> Iterator[bytes]:
        for start in range(0, len(UPLOAD), 10_000):
            yield UPLOAD[start : start + 10_000]

    response = client.post("/echo", content=pieces())
    assert response.status_code == 200
    assert response.content == UPLOAD
    assert response.request.headers["transfer-encoding"] == "chunked"


@pytest.mark.parametrize("mib", [1, 8])
def test_httpx_large_upload_is_echoed_intact(client: httpx.Client, mib: int) -> None:
    # Large bodies reach the app as the very bytes objects the event loop read (no copy in
    # the parser): the echo must still be byte-exact.
    body = os.urandom(mib * MIB)
    response = client.post("/echo", content=body)
    assert response.status_code == 200
    assert response.headers["x-received-length"] == str(len(body))
    assert digest(response.content) == digest(body)


def test_httpx_large_chunked_upload_is_echoed_intact(client: httpx.Client) -> None:
    body = os.urandom(8 * MIB)
    step = 64 * 1024 + 1  # chunk boundaries fall anywhere in the server's reads

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), step):
            yield body[start : start + step]

    response = client.post("/echo", content=pieces())
    assert response.status_code == 200
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert digest(response.content) == digest(body)


def test_pipelined_large_uploads_are_echoed_in_order(server: ServerProcess) -> None:
    # Each body ends inside a read that also holds the next request.
    bodies = [os.urandom(MIB + 7), os.urandom(3 * MIB), b"short"]
    data = b"".join(request_bytes("POST", "/echo", body=body) for body in bodies)
    data += request_bytes("GET", "/")
    with server.raw(timeout=20) as conn:
        # Sent from a thread: the server answers while the client is still sending, and
        # would stop reading once its answers fill a socket nobody reads.
        sender = threading.Thread(target=conn.send, args=(data,))
        sender.start()
        answers = [conn.read_response() for _ in range(len(bodies) + 1)]
        sender.join(timeout=20)
    assert [digest(answer.body) for answer in answers[:-1]] == [digest(b) for b in bodies]
    assert answers[-1].body == b"hello, world"


def test_httpx_streamed_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream?n=6") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        body = b"".join(response.iter_bytes())
    assert body == b"".join(b"piece-%d\n" % i for i in range(6))


def test_httpx_large_download_is_intact(client: httpx.Client) -> None:
    response = client.get("/big", params={"mb": "16"})
    assert response.status_code == 200
    assert response.content == bytes(range(256)) * 4096 * 16  # 16 MiB


def test_curl_slow_reader_gets_everything(server: ServerProcess) -> None:
    # curl reads at 8 MiB/s: esg's writes wait for the socket instead of failing.
    result = curl("--limit-rate", "8M", f"{server.url}/big?mb=4")
    assert result.returncode == 0, result.stderr
    assert result.stdout == bytes(range(256)) * 4096 * 4  # 4 MiB


def test_httpx_sees_500_for_app_error(client: httpx.Client) -> None:
    response = client.get("/error")
    assert response.status_code == 500
    assert response.headers["connection"] == "close"
    assert client.get("/").status_code == 200  # httpx reconnects; the server still serves


# -- curl -------------------------------------------------------------------------------------


def test_curl_upload_with_content_length(server: ServerProcess, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(UPLOAD)
    result = curl("--data-binary", f"@{upload}", f"{server.url}/echo")
    assert result.returncode == 0, result.stderr
    assert result.stdout == UPLOAD


@pytest.mark.parametrize("mib", [1, 8])
def test_curl_large_upload_is_echoed_intact(
    server: ServerProcess, tmp_path: Path, mib: int
) -> None:
    body = os.urandom(mib * MIB)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(body)
    result = curl("--data-binary", f"@{upload}", f"{server.url}/echo")
    assert result.returncode == 0, result.stderr
    assert digest(result.stdout) == digest(body)


def test_curl_chunked_upload_from_stdin(server: ServerProcess) -> None:
    result = curl("-v", "-T", "-", f"{server.url}/echo", data=UPLOAD)
    assert result.returncode == 0, result.stderr
    assert b"Transfer-Encoding: chunked" in result.stderr
    assert result.stdout == UPLOAD


def test_curl_expect_100_continue(server: ServerProcess, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(UPLOAD)
    result = curl(
        "-v", "-H", "Expect: 100-continue", "--data-binary", f"@{upload}", f"{server.url}/echo"
    )
    assert result.returncode == 0, result.stderr
    assert b"< HTTP/1.1 100 Continue" in result.stderr
    assert result.stdout == UPLOAD


def test_curl_http10_stream(server: ServerProcess) -> None:
    result = curl("--http1.0", "-i", f"{server.url}/stream?n=3")
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"piece-0\npiece-1\npiece-2\n"


def test_ab_keep_alive_has_no_failures(server: ServerProcess) -> None:
    command = [need("ab"), "-q", "-k", "-n", "2000", "-c", "8", f"{server.url}/"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^Complete requests:\s+2000$", result.stdout, re.M), result.stdout
    assert re.search(r"^Failed requests:\s+0$", result.stdout, re.M), result.stdout
    assert re.search(r"^Keep-Alive requests:\s+2000$", result.stdout, re.M), result.stdout
    assert "Non-2xx" not in result.stdout


# -- UNIX domain socket -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def uds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    path = str(tmp_path_factory.mktemp("uds") / "esg.sock")
    with run_server("apps.basic:app", uds=path) as process:
        yield process


def test_curl_over_unix_socket(uds_server: ServerProcess) -> None:
    assert uds_server.uds is not None
    result = curl("--unix-socket", uds_server.uds, "http://localhost/scope?via=uds")
    assert result.returncode == 0, result.stderr
    scope = json.loads(result.stdout)
    assert scope["query_string"] == "via=uds"
    assert scope["server"][0] == uds_server.uds
    assert scope["client"] is None or scope["client"][0] in ("", None)


def test_httpx_post_over_unix_socket(uds_server: ServerProcess) -> None:
    transport = httpx.HTTPTransport(uds=uds_server.uds)
    with httpx.Client(transport=transport, base_url="http://localhost", timeout=20) as http:
        response = http.post("/echo", content=UPLOAD)
    assert response.content == UPLOAD


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(
    tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    args = ("--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile))
    with run_server("apps.basic:app", *args) as process:
        yield process


def test_https_with_trusted_ca(tls_server: ServerProcess, tls_ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    url = f"https://127.0.0.1:{tls_server.port}"
    with httpx.Client(base_url=url, verify=context, timeout=20) as http:
        scope = http.get("/scope").json()
        echoed = http.post("/echo", content=UPLOAD).content
    assert scope["scheme"] == "https"
    assert echoed == UPLOAD


def test_https_rejects_untrusted_client(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{tls_server.port}/", timeout=20)


def test_plain_http_to_tls_port_fails(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/", timeout=5)
    # The same bytes on a raw socket: esg drops the connection (no TLS, no answer), quietly.
    with tls_server.raw() as conn:
        conn.send(request_bytes("GET", "/"))
        try:
            answer = conn.read_to_close()
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")
    with httpx.Client(verify=False, timeout=20) as http:
        assert http.get(f"https://127.0.0.1:{tls_server.port}/").status_code == 200
    assert tls_server.proc.poll() is None
    assert "Traceback" not in tls_server.stderr()
    assert "Error" not in tls_server.stderr()


def tls_client_socket(server: ServerProcess, context: ssl.SSLContext) -> ssl.SSLSocket:
    return context.wrap_socket(server.connect(timeout=20), server_hostname="127.0.0.1")


def test_alpn_prefers_h2(tls_server: ServerProcess, tls_ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.set_alpn_protocols(["http/1.1", "h2"])
    with tls_client_socket(tls_server, context) as sock:
        assert sock.selected_alpn_protocol() == "h2"


def test_alpn_selects_http11(tls_server: ServerProcess, tls_ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.set_alpn_protocols(["http/1.1"])
    with tls_client_socket(tls_server, context) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        with RawConnection(sock) as conn:
            conn.send(request_bytes("GET", "/"))
            response = conn.read_response()
    assert (response.status, response.body) == (200, b"hello, world")


def test_alpn_without_a_common_protocol_still_serves_http11(
    tls_server: ServerProcess, tls_ca: trustme.CA
) -> None:
    # OpenSSL's server side answers "no ALPN" rather than failing the handshake.
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.set_alpn_protocols(["spdy/3.1"])
    with tls_client_socket(tls_server, context) as sock:
        assert sock.selected_alpn_protocol() is None
        with RawConnection(sock) as conn:
            conn.send(request_bytes("GET", "/"))
            assert conn.read_response().status == 200


def half_client_hello() -> bytes:
    """The first half of a real TLS ClientHello record."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # a handshake record
    return hello[: len(hello) // 2]


def wait_closed(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closed ``sock`` (EOF or reset); fails after ``limit``."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        data = b""
    except TimeoutError:
        pytest.fail(f"the server kept a stalled TLS handshake open for over {limit} s")
    assert data == b"", data
    return time.monotonic() - started


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_stalled_tls_handshake_is_dropped_after_timeout_header(
    tls_certfiles: dict[str, str], tls_ca: trustme.CA, loop: str
) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    args = ("--ssl-certfile", tls_certfiles["chain"], "--ssl-keyfile", tls_certfiles["key"])
    with run_server("apps.basic:app", *args, "--loop", loop, "--timeout-header", "2") as server:
        silent = server.connect(timeout=20)
        half = server.connect(timeout=20)
        try:
            half.sendall(half_client_hello())
            # Others are served while the two handshakes hang.
            context = ssl.create_default_context()
            tls_ca.configure_trust(context)
            url = f"https://127.0.0.1:{server.port}"
            with httpx.Client(base_url=url, verify=context, timeout=20) as http:
                assert http.get("/").status_code == 200
            # Dropped after about 2 s (asyncio's own default would be 60 s).
            assert wait_closed(silent, 30) < 30
            assert wait_closed(half, 30) < 30
        finally:
            silent.close()
            half.close()
        with httpx.Client(base_url=url, verify=context, timeout=20) as http:
            assert http.get("/").status_code == 200
        log = server.stderr()
    assert "Traceback" not in log
    assert "Error" not in log


@pytest.fixture(scope="module")
def tls_certfiles(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Server chain and key, the key encrypted, the CA, and a client certificate of that CA."""
    from cryptography.hazmat.primitives import serialization

    folder = tmp_path_factory.mktemp("tls-files")
    server = tls_ca.issue_cert("127.0.0.1", "localhost")
    client = tls_ca.issue_cert("client@example.com")
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    paths = {name: folder / f"{name}.pem" for name in ("chain", "key", "encrypted", "ca", "client")}
    server.cert_chain_pems[0].write_to_path(str(paths["chain"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    paths["encrypted"].write_bytes(encrypted)
    tls_ca.cert_pem.write_to_path(str(paths["ca"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return {name: str(path) for name, path in paths.items()}


def test_client_certificates_with_every_ssl_option(
    tls_certfiles: dict[str, str], tls_ca: trustme.CA
) -> None:
    """--ssl-certfile/-keyfile/-keyfile-password/-cert-reqs/-ca-certs/-ciphers, end to end."""
    files = tls_certfiles
    args = (
        *("--ssl-certfile", files["chain"], "--ssl-keyfile", files["encrypted"]),
        *("--ssl-keyfile-password", "s3cret", "--ssl-cert-reqs", str(int(ssl.CERT_REQUIRED))),
        *("--ssl-ca-certs", files["ca"], "--ssl-ciphers", "ECDHE+AESGCM"),
        *("--ssl-version", str(int(ssl.PROTOCOL_TLS_SERVER))),
    )
    with run_server("apps.basic:app", *args) as server:
        url = f"https://127.0.0.1:{server.port}"
        with_cert = ssl.create_default_context()
        tls_ca.configure_trust(with_cert)
        with_cert.load_cert_chain(files["client"])
        with httpx.Client(base_url=url, verify=with_cert, timeout=20) as http:
            scope = http.get("/scope").json()
        assert scope["scheme"] == "https"
        # TLS 1.2 makes the server's refusal part of the handshake (TLS 1.3 reports it later).
        without_cert = ssl.create_default_context()
        tls_ca.configure_trust(without_cert)
        without_cert.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/", verify=without_cert, timeout=20)
        with httpx.Client(base_url=url, verify=with_cert, timeout=20) as http:
            assert http.get("/").status_code == 200
        assert "Traceback" not in server.stderr()
