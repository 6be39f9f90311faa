"""The ASGI extensions, served by a real esg process to real clients (both builds).

Starlette's ``FileResponse`` unmodified (it sends ``http.response.pathsend`` when offered) over
HTTP/1.1 on a plain socket (``os.sendfile``), over TLS and over HTTP/2 (bounded reads), with
Range requests; a file larger than 100 MiB while the server's peak RSS stays flat;
``http.response.zerocopysend``; a file truncated while it is sent and a client that stops
reading (both end the connection, never a wrong framing); ``curl -v`` showing 103 Early Hints
before the 200 on HTTP/1.1 and HTTP/2, and none for an HTTP/1.0 client; the ``tls`` extension
with a ``trustme`` client certificate, on both protocols, and no ``tls`` on plain connections.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509
from utils import ServerProcess, run_server

pytestmark = pytest.mark.slow

APP = "apps.files_app:app"
BIG = 128 * 1024 * 1024  # a sparse file: > 100 MiB on the wire, no disk used


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, capture_output=True, timeout=timeout, check=False)


def peak_rss_kib(server: ServerProcess) -> int:
    """The server process's peak resident set (VmHWM), in KiB."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("files")
    small = folder / "small.bin"
    small.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    big = folder / "big.bin"
    with open(big, "wb") as file:
        file.truncate(BIG)  # sparse
    (folder / "empty.bin").write_bytes(b"")
    yield {"small": small, "big": big, "empty": folder / "empty.bin", "folder": folder}
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("exttls")
    server = tls_ca.issue_cert("127.0.0.1", "localhost")
    client = tls_ca.issue_cert(
        "client@example.org", common_name="esg client, #1", organization_name="esg+tests"
    )
    paths = {
        "cert": folder / "cert.pem",
        "key": folder / "key.pem",
        "ca": folder / "ca.pem",
        "client": folder / "client.pem",
    }
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    tls_ca.cert_pem.write_to_path(str(paths["ca"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    names = {name: str(path) for name, path in paths.items()}
    names["server_pem"] = server.cert_chain_pems[0].bytes().decode()
    names["client_pem"] = client.cert_chain_pems[0].bytes().decode()
    return names


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server(APP, "--no-access-log", "--timeout-body", "1") as process:
        yield process


@pytest.fixture(scope="module")
def tls_server(tls_files: dict[str, str]) -> Iterator[ServerProcess]:
    args = (
        *("--ssl-certfile", tls_files["cert"], "--ssl-keyfile", tls_files["key"]),
        *("--ssl-ca-certs", tls_files["ca"], "--ssl-cert-reqs", "1"),  # CERT_OPTIONAL
    )
    with run_server(APP, "--no-access-log", *args) as process:
        yield process


def https_url(server: ServerProcess) -> str:
    return server.url.replace("http://", "https://")


def tls_client(tls_files: dict[str, str], http2: bool, client_cert: bool) -> httpx.Client:
    context = ssl.create_default_context(cafile=tls_files["ca"])
    if client_cert:
        context.load_cert_chain(tls_files["client"])
    return httpx.Client(verify=context, http1=not http2, http2=http2, timeout=60)


# -- pathsend: Starlette's FileResponse ------------------------------------------------------


def check_file_responses(client: httpx.Client, base: str, files: dict[str, Path]) -> None:
    small = files["small"]
    data = small.read_bytes()
    url = f"{base}/file?path={small}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert response.content == data
    head = client.head(url)
    assert head.headers["content-length"] == str(len(data)) and head.content == b""
    ranged = client.get(url, headers={"range": "bytes=1000-1999"})
    assert ranged.status_code == 206 and ranged.content == data[1000:2000]
    multi = client.get(url, headers={"range": "bytes=0-9,100-109"})
    assert multi.status_code == 206
    assert data[:10] in multi.content and data[100:110] in multi.content
    empty = client.get(f"{base}/file?path={files['empty']}")
    assert empty.status_code == 200 and empty.content == b""
    assert empty.headers["content-length"] == "0"
    again = client.get(url)  # the connection is still usable after each
    assert again.content == data


def test_pathsend_http1_plain(server: ServerProcess, files: dict[str, Path]) -> None:
    with httpx.Client(timeout=60) as client:
        check_file_responses(client, server.url, files)
        scope = client.get(f"{server.url}/scope").json()
    assert "tls" not in scope["extensions"]
    for name in ("pathsend", "zerocopysend", "early_hint"):
        assert f"http.response.{name}" in scope["extensions"]


def test_pathsend_http1_asyncio_loop(files: dict[str, Path]) -> None:
    # (The other tests run esg's default loop, uvloop when installed.)
    with run_server(APP, "--no-access-log", "--loop", "asyncio") as process:
        with httpx.Client(timeout=60) as client:
            check_file_responses(client, process.url, files)
        size, _ = curl_big("--http1.1", f"{process.url}/file?path={files['big']}")
        assert size == BIG


def test_body_then_file_to_http10(server: ServerProcess, files: dict[str, Path]) -> None:
    """Body bytes, then a file (HTTP/1.0, no length: the body ends with the connection)."""
    small = files["small"]
    data = small.read_bytes()
    sock = raw_get(server, f"/mixed?path={small}", version="1.0")  # ends with the connection
    with sock:
        time.sleep(0.3)  # a client slower than the server
        _, body, ended = read_response(sock)
    assert ended
    assert body == b"x" * (2 << 20) + data


def test_pathsend_http1_unix_socket(files: dict[str, Path], tmp_path: Path) -> None:
    uds = str(tmp_path / "esg.sock")
    with run_server(APP, "--no-access-log", uds=uds):
        transport = httpx.HTTPTransport(uds=uds)
        with httpx.Client(transport=transport, timeout=60) as client:
            check_file_responses(client, "http://esg", files)


def test_pathsend_tls_http1(
    tls_server: ServerProcess, tls_files: dict[str, str], files: dict[str, Path]
) -> None:
    with tls_client(tls_files, http2=False, client_cert=False) as client:
        check_file_responses(client, https_url(tls_server), files)


def test_pathsend_http2_cleartext(server: ServerProcess, files: dict[str, Path]) -> None:
    with httpx.Client(http1=False, http2=True, timeout=60) as client:
        check_file_responses(client, server.url, files)
        assert client.get(f"{server.url}/scope").json()["http_version"] == "2"


def test_pathsend_http2_tls(
    tls_server: ServerProcess, tls_files: dict[str, str], files: dict[str, Path]
) -> None:
    with tls_client(tls_files, http2=True, client_cert=False) as client:
        check_file_responses(client, https_url(tls_server), files)
        assert client.get(f"{https_url(tls_server)}/scope").json()["http_version"] == "2"


def raw_exchange(server: ServerProcess, request: bytes) -> tuple[bytes, bytes]:
    """One request on a new connection that the request asks to close: (head, rest)."""
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(request)
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    return head, rest


def dechunk(body: bytes) -> tuple[bytes, bytes]:
    """A chunked body's data and its trailer section (without the final CRLF)."""
    data = bytearray()
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(data), body.removesuffix(b"\r\n")
        data += body[:size]
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


def test_pathsend_with_trailers_on_plain_http1(
    server: ServerProcess, files: dict[str, Path]
) -> None:
    # The sendfile path, like the body path: the trailers end the chunked body when the client
    # takes them; otherwise the file's length frames it and they are dropped.
    small = files["small"]
    target = f"/trailing?path={small}".encode()
    head, rest = raw_exchange(
        server, b"GET %s HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n" % target
    )
    assert b"transfer-encoding: chunked" in head.lower() and b"content-length" not in head.lower()
    assert dechunk(rest) == (small.read_bytes(), b"grpc-status: 0\r\n")
    head, rest = raw_exchange(
        server, b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target
    )
    assert b"content-length: %d" % small.stat().st_size in head.lower()
    assert rest == small.read_bytes()


def test_pathsend_204_head_has_no_content_length(
    server: ServerProcess, files: dict[str, Path]
) -> None:
    target = f"/nocontent?path={files['small']}".encode()
    head, rest = raw_exchange(
        server, b"HEAD %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target
    )
    assert head.startswith(b"HTTP/1.1 204") and b"content-length" not in head.lower()
    assert rest == b""


def test_a_new_start_after_a_failed_pathsend_forgets_the_trailers(server: ServerProcess) -> None:
    head, rest = raw_exchange(
        server, b"GET /retry HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200")
    assert rest == b"second"


def test_missing_file_is_a_500(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/missing", timeout=30)
    assert response.status_code == 500


# -- large files: the server's memory stays flat ---------------------------------------------


def curl_big(*args: str) -> tuple[int, str]:
    done = run(
        tool("curl"), "-sS", "-o", "/dev/null", "-w", "%{size_download} %{http_version}", *args
    )
    assert done.returncode == 0, done.stderr
    size, version = done.stdout.decode().split()
    return int(size), version


@pytest.mark.parametrize("how", ["plain", "tls", "h2c", "h2"])
def test_large_file_rss_stays_flat(
    how: str,
    server: ServerProcess,
    tls_server: ServerProcess,
    tls_files: dict[str, str],
    files: dict[str, Path],
) -> None:
    target = tls_server if how in ("tls", "h2") else server
    base = https_url(target) if how in ("tls", "h2") else target.url
    options = {
        "plain": ["--http1.1"],
        "tls": ["--http1.1", "--cacert", tls_files["ca"]],
        "h2c": ["--http2-prior-knowledge"],
        "h2": ["--http2", "--cacert", tls_files["ca"]],
    }[how]
    url = f"{base}/file?path={files['big']}"
    curl_big(*options, f"{url[: url.index('?')]}?path={files['small']}")  # warm up
    before = peak_rss_kib(target)
    size, version = curl_big(*options, url)
    assert size == BIG
    assert version == ("2" if how.startswith("h2") else "1.1")
    grown = peak_rss_kib(target) - before
    assert grown < 32 * 1024, f"peak RSS grew by {grown} KiB sending {BIG >> 20} MiB"


# -- zerocopysend ----------------------------------------------------------------------------


def test_zerocopysend(
    server: ServerProcess,
    tls_server: ServerProcess,
    tls_files: dict[str, str],
    files: dict[str, Path],
) -> None:
    small = files["small"]
    data = small.read_bytes()
    clients = [
        (httpx.Client(timeout=60), server.url),
        (httpx.Client(http1=False, http2=True, timeout=60), server.url),
        (tls_client(tls_files, http2=False, client_cert=False), https_url(tls_server)),
        (tls_client(tls_files, http2=True, client_cert=False), https_url(tls_server)),
    ]
    for client, base in clients:
        with client:
            whole = client.get(f"{base}/zerocopy?path={small}")
            assert whole.content == data
            parts = client.get(f"{base}/zerocopy?path={small}&offset=7&count=1000003&parts=3")
            assert parts.content == data[7 : 7 + 1000003]


# -- files that shrink, clients that stop reading ------------------------------------------


def raw_get(server: ServerProcess, target: str, version: str = "1.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port or 0), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(f"GET {target} HTTP/{version}\r\nHost: esg\r\n\r\n".encode())
    return sock


def read_response(sock: socket.socket) -> tuple[bytes, bytes, bool]:
    """(head, body, whether the connection ended) until EOF or a reset."""
    data = b""
    ended = False
    while True:
        try:
            piece = sock.recv(1 << 20)
        except ConnectionResetError:
            ended = True
            break
        if not piece:
            ended = True
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body, ended


def test_file_truncated_before_the_send_closes(
    server: ServerProcess, files: dict[str, Path]
) -> None:
    path = files["folder"] / "shrinks-first.bin"
    path.write_bytes(b"x" * 100_000)
    sock = raw_get(server, f"/truncate?path={path}")
    with sock:
        head, body, ended = read_response(sock)
    assert ended
    assert len(body) < 100_000  # never a response that claims what it doesn't carry


def test_file_truncated_while_sent_closes(server: ServerProcess, files: dict[str, Path]) -> None:
    path = files["folder"] / "shrinks.bin"
    size = 64 * 1024 * 1024
    with open(path, "wb") as file:
        file.truncate(size)
    sock = raw_get(server, f"/file?path={path}")
    with sock:
        first = sock.recv(65536)  # the head and a little: the server now waits on the socket
        assert first.startswith(b"HTTP/1.1 200")
        os.truncate(path, 1024 * 1024)
        _, body, ended = read_response(sock)
    assert ended
    received = len(first.partition(b"\r\n\r\n")[2]) + len(body)
    assert received < size
    path.unlink()


def test_client_that_stops_reading_is_cut(server: ServerProcess, files: dict[str, Path]) -> None:
    # --timeout-body 1 on this server: a client that takes nothing for that long is dropped.
    sock = raw_get(server, f"/file?path={files['big']}")
    with sock:
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(4)  # the timeout, and the ticker's second, pass
        _, body, ended = read_response(sock)
    assert ended
    assert len(first) + len(body) < BIG


# -- early hints -----------------------------------------------------------------------------


def statuses(verbose: bytes) -> list[str]:
    return [
        line.split()[2]
        for line in verbose.decode(errors="replace").splitlines()
        if line.startswith("< HTTP/")
    ]


def test_curl_shows_103_before_200(server: ServerProcess) -> None:
    curl = tool("curl")
    done = run(curl, "-sv", "--http1.1", f"{server.url}/hints")
    assert statuses(done.stderr) == ["103", "103", "200"], done.stderr
    assert done.stdout == b"hinted"
    assert b"< link: </style.css>; rel=preload; as=style" in done.stderr
    done = run(curl, "-sv", "--http2-prior-knowledge", f"{server.url}/hints")
    assert statuses(done.stderr) == ["103", "103", "200"], done.stderr
    assert done.stdout == b"hinted"


def test_no_early_hints_for_http10(server: ServerProcess) -> None:
    sock = raw_get(server, "/hints", version="1.0")
    with sock:
        head, body, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and b"103" not in head
    assert body == b"hinted"


# -- tls -----------------------------------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_tls_extension_with_client_certificate(
    http2: bool, tls_server: ServerProcess, tls_files: dict[str, str]
) -> None:
    with tls_client(tls_files, http2=http2, client_cert=True) as client:
        scope = client.get(f"{https_url(tls_server)}/scope").json()
    assert scope["http_version"] == ("2" if http2 else "1.1")
    tls = scope["extensions"]["tls"]
    assert tls["server_cert"] == tls_files["server_pem"]
    assert tls["client_cert_chain"][0] == tls_files["client_pem"]
    expected = x509.load_pem_x509_certificate(tls_files["client_pem"].encode()).subject
    assert tls["client_cert_name"] == expected.rfc4514_string()
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int) and 0 < tls["cipher_suite"] <= 0xFFFF
    if tls["tls_version"] == 0x0304:
        assert tls["cipher_suite"] >> 8 == 0x13  # TLS 1.3's suites are 0x13XX


def test_tls_extension_without_client_certificate(
    tls_server: ServerProcess, tls_files: dict[str, str]
) -> None:
    with tls_client(tls_files, http2=False, client_cert=False) as client:
        tls = client.get(f"{https_url(tls_server)}/scope").json()["extensions"]["tls"]
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
    assert tls["server_cert"] == tls_files["server_pem"]
