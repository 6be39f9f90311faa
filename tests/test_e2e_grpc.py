"""A real gRPC client (``grpcio``) calling a gRPC service written as a plain ASGI app (both builds).

The service is tests/apps/grpc_app.py; the client uses a generic channel with raw bytes as
messages (no serializers, no protoc).  Cleartext gRPC is HTTP/2 with prior knowledge; over TLS
grpcio insists on ALPN ``h2``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from utils import ServerProcess, run_server

grpc = pytest.importorskip("grpc")

pytestmark = pytest.mark.slow

SERVICE = "/esg.test.Echo/"
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server("apps.grpc_app:app", "--no-access-log") as process:
        yield process


@pytest.fixture
def channel(server: ServerProcess) -> Iterator[Any]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


def unary(channel: Any, method: str) -> Any:
    return channel.unary_unary(SERVICE + method)  # no serializers: messages are bytes


def test_unary_call(channel: Any) -> None:
    assert unary(channel, "Unary")(b"hello", timeout=TIMEOUT) == b"echo:hello"


def test_unary_call_with_an_empty_and_a_large_message(channel: Any) -> None:
    call = unary(channel, "Unary")
    assert call(b"", timeout=TIMEOUT) == b"echo:"
    big = bytes(range(256)) * 4096  # 1 MiB: beyond every default flow-control window
    assert call(big, timeout=TIMEOUT) == b"echo:" + big


def test_many_calls_on_one_channel(channel: Any) -> None:
    call = unary(channel, "Unary")
    futures = [call.future(b"%d" % index, timeout=TIMEOUT) for index in range(200)]
    assert [future.result() for future in futures] == [b"echo:%d" % i for i in range(200)]


def test_server_streaming(channel: Any) -> None:
    stream = channel.unary_stream(SERVICE + "Count")
    assert list(stream(b"5", timeout=TIMEOUT)) == [b"item-%d" % i for i in range(5)]
    assert list(stream(b"0", timeout=TIMEOUT)) == []


def test_client_streaming(channel: Any) -> None:
    collect = channel.stream_unary(SERVICE + "Collect")
    assert collect(iter([b"a", b"bb", b"ccc"]), timeout=TIMEOUT) == b"a,bb,ccc"


def test_error_status_and_message_from_the_trailers(channel: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        unary(channel, "Fail")(b"x", timeout=TIMEOUT)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "bad argument: 100% wrong \u2603"  # percent-decoded by grpcio


def test_error_status_without_a_message(channel: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        unary(channel, "Reject")(b"x", timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == "no entry"


def test_unknown_method_is_unimplemented(channel: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        unary(channel, "Nope")(b"x", timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_scope_a_grpc_call_gets(channel: Any) -> None:
    scope = json.loads(unary(channel, "Scope")(b"", timeout=TIMEOUT))
    assert scope["http_version"] == "2"
    assert scope["method"] == "POST"
    assert scope["path"] == SERVICE + "Scope"
    assert scope["scheme"] == "http"
    assert scope["headers"]["content-type"] == "application/grpc"
    assert scope["headers"]["te"] == "trailers"
    assert "host" in scope["headers"]  # from :authority
    assert "http.response.trailers" in scope["extensions"]


def test_grpc_over_tls(tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    args = ("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file))
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    with (
        run_server("apps.grpc_app:app", "--no-access-log", *args) as process,
        grpc.secure_channel(f"127.0.0.1:{process.port}", credentials) as secure,
    ):
        assert unary(secure, "Unary")(b"tls", timeout=TIMEOUT) == b"echo:tls"
        scope = json.loads(unary(secure, "Scope")(b"", timeout=TIMEOUT))
        assert scope["scheme"] == "https"
        stream = secure.unary_stream(SERVICE + "Count")
        assert list(stream(b"3", timeout=TIMEOUT)) == [b"item-0", b"item-1", b"item-2"]


def test_a_long_server_stream_under_flow_control_and_grpc_pings(server: ServerProcess) -> None:
    # grpcio probes the bandwidth with PINGs and opens windows as it reads: thousands of small
    # DATA frames must not look like a flood of control frames to esg.
    options = [("grpc.http2.bdp_probe", 1), ("grpc.keepalive_time_ms", 200)]
    with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options) as pinging:
        stream = pinging.unary_stream(SERVICE + "Count")
        items = list(stream(b"3000", timeout=60))
    assert len(items) == 3000
    assert items[-1] == b"item-2999"


def test_a_cancelled_stream_leaves_the_channel_usable(channel: Any, server: ServerProcess) -> None:
    stream = channel.unary_stream(SERVICE + "Count")
    call = stream(b"100000", timeout=TIMEOUT)
    assert next(call) == b"item-0"
    call.cancel()  # RST_STREAM CANCEL: the app's send() raises, the connection carries on
    with pytest.raises(grpc.RpcError) as caught:
        list(call)
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    assert unary(channel, "Unary")(b"after", timeout=TIMEOUT) == b"echo:after"
    assert "Traceback" not in server.stderr()  # send() raised to the app: not an app error
