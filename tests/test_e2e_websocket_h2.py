"""WebSockets over HTTP/2 (RFC 8441) with a real esg process (both builds).

An ``h2`` client (the python-hyper library) speaks the extended CONNECT in cleartext: esg's
SETTINGS offer it, ``:status 200`` opens it, WebSocket frames travel in DATA frames and are
echoed; permessage-deflate is negotiated as over HTTP/1.1; a denial response and a refusal are
HEADERS and DATA; an unknown ``:protocol`` is a 501; the client ending its stream ends the
WebSocket.  Headless Chromium opens a WebSocket over HTTP/2 with TLS from a page it loaded over
the same connection, and the echo comes back (skipped where Chromium isn't installed).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_transport as fake
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest
import trustme
from utils import ServerProcess, run_server

pytestmark = pytest.mark.slow

APP = "apps.ws_h2_app:app"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server(APP, "--no-access-log") as process:
        yield process


class H2Client:
    """A cleartext HTTP/2 connection (prior knowledge) driven by hand."""

    def __init__(self, server: ServerProcess, websockets: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port or 0), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.events: list[Any] = []
        self.settings: dict[int, int] = {}
        if websockets:
            self.until(lambda: h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL in self.settings)
        else:
            self.until(lambda: h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in self.settings)

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                for code, setting in event.changed_settings.items():
                    self.settings[code] = setting.new_value
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.events.append(event)
        self.flush()

    def until(self, done: Any) -> None:
        for _ in range(200):
            if done():
                return
            self.receive()
        raise AssertionError(f"not reached; events: {self.events}")

    def connect(
        self, path: str, extra: list[tuple[str, str]] | None = None, protocol: str = "websocket"
    ) -> int:
        sid: int = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "CONNECT"),
            (":protocol", protocol),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1"),
            ("sec-websocket-version", "13"),
            *(extra or []),
        ]
        self.conn.send_headers(sid, headers)
        self.flush()
        return sid

    def send(self, sid: int, data: bytes, end: bool = False) -> None:
        """DATA in frames the server takes, waiting for its window as needed."""
        while True:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0 and data:
                self.receive()
                continue
            piece, data = data[:room], data[room:]
            self.conn.send_data(sid, piece, end_stream=end and not data)
            self.flush()
            if not data:
                return

    def response(self, sid: int) -> dict[bytes, bytes]:
        def found() -> Any:
            return next(
                (
                    e
                    for e in self.events
                    if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid
                ),
                None,
            )

        self.until(found)
        return dict(found().headers)

    def data(self, sid: int) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
        )

    def ended(self, sid: int) -> bool:
        return any(
            isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid
            for e in self.events
        )

    def close(self) -> None:
        self.sock.close()


def test_settings_offer_extended_connect(server: ServerProcess) -> None:
    client = H2Client(server)
    assert client.settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    client.close()


def test_no_extended_connect_with_ws_none() -> None:
    with run_server(APP, "--no-access-log", "--ws", "none") as process:
        client = H2Client(process, websockets=False)
        assert h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL not in client.settings
        client.close()


def test_echo_over_h2(server: ServerProcess) -> None:
    client = H2Client(server)
    sid = client.connect("/echo?x=1", [("sec-websocket-protocol", "chat, superchat")])
    headers = client.response(sid)
    assert headers[b":status"] == b"200"
    assert headers[b"sec-websocket-protocol"] == b"chat"
    assert b"sec-websocket-accept" not in headers and b"upgrade" not in headers
    client.send(sid, fake.client_frame(fake.OP_TEXT, b"hello h2"))
    client.send(sid, fake.client_frame(fake.OP_BINARY, b"\x00\x01" * 40000))
    expected = 2

    def echoed() -> bool:
        return len(fake.parse_frames(client.data(sid))[0]) >= expected

    client.until(echoed)
    frames, _ = fake.parse_frames(client.data(sid))
    assert (frames[0].opcode, frames[0].payload) == (fake.OP_TEXT, b"hello h2")
    assert (frames[1].opcode, frames[1].payload) == (fake.OP_BINARY, b"\x00\x01" * 40000)
    # The closing handshake, then the stream ends both ways.
    client.send(sid, fake.client_frame(fake.OP_CLOSE, b"\x03\xe8"), end=True)
    client.until(lambda: client.ended(sid))
    frames, _ = fake.parse_frames(client.data(sid))
    assert frames[-1].opcode == fake.OP_CLOSE and frames[-1].close_code == 1000
    # The connection carries on: another WebSocket, then a plain request on it.
    second = client.connect("/echo")
    assert client.response(second)[b":status"] == b"200"
    client.close()
    seen = httpx.get(f"{server.url}/seen", timeout=10).json()
    assert {
        "path": "/echo",
        "http_version": "2",
        "scheme": "ws",
        "subprotocols": ["chat", "superchat"],
        "tls": False,
    } in seen


def test_permessage_deflate_over_h2(server: ServerProcess) -> None:
    client = H2Client(server)
    sid = client.connect("/echo", [("sec-websocket-extensions", "permessage-deflate")])
    headers = client.response(sid)
    assert headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
    client.send(sid, fake.client_frame(fake.OP_TEXT, b"compressible " * 200))
    client.until(lambda: bool(fake.parse_frames(client.data(sid))[0]))
    frame = fake.parse_frames(client.data(sid))[0][0]
    assert frame.rsv1  # compressed by the server
    client.close()


def test_denial_and_refusal_over_h2(server: ServerProcess) -> None:
    client = H2Client(server)
    denied = client.connect("/deny")
    assert client.response(denied)[b":status"] == b"401"
    client.until(lambda: client.ended(denied))
    assert client.data(denied) == b"who are you?"
    refused = client.connect("/close")
    assert client.response(refused)[b":status"] == b"403"
    client.until(lambda: client.ended(refused))
    unknown = client.connect("/echo", protocol="webtransport")
    assert client.response(unknown)[b":status"] == b"501"
    old = client.connect("/echo", [("sec-websocket-version", "8")])
    headers = client.response(old)
    assert headers[b":status"] == b"426"
    client.close()


# -- Chromium --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("wsh2tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    args = ("--ssl-certfile", str(cert_path), "--ssl-keyfile", str(key_path))
    with run_server(APP, "--no-access-log", *args) as process:
        yield process


def test_chromium_websocket_over_h2(tls_server: ServerProcess, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed")
    url = f"https://127.0.0.1:{tls_server.port}/"
    for attempt in range(3):  # --dump-dom may come before the echo on a busy machine
        done = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--ignore-certificate-errors",
                f"--user-data-dir={tmp_path / f'profile{attempt}'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            timeout=90,
            check=False,
        )
        dom = done.stdout.decode(errors="replace")
        if "<title>waiting</title>" not in dom:
            break
    assert "<title>echo:hello over h2</title>" in dom, (dom, done.stderr[-2000:])
    seen = httpx.get(f"{url}seen", verify=False, timeout=10).json()
    socket_scopes = [entry for entry in seen if entry["path"] == "/echo"]
    assert socket_scopes and socket_scopes[-1]["http_version"] == "2"  # over h2, not an upgrade
    assert socket_scopes[-1]["scheme"] == "wss" and socket_scopes[-1]["tls"]
    assert json.dumps(seen)  # (the page's script ran on the same origin)


def test_reset_stream_ends_the_websocket_not_the_connection(server: ServerProcess) -> None:
    client = H2Client(server)
    sid = client.connect("/echo")
    assert client.response(sid)[b":status"] == b"200"
    client.conn.reset_stream(sid)
    client.flush()
    other = client.connect("/echo")
    assert client.response(other)[b":status"] == b"200"
    client.send(other, fake.client_frame(fake.OP_TEXT, b"still here"))
    client.until(lambda: bool(fake.parse_frames(client.data(other))[0]))
    assert fake.parse_frames(client.data(other))[0][0].payload == b"still here"
    client.close()


def test_shutdown_closes_with_1012() -> None:
    with run_server(APP, "--no-access-log") as process:
        client = H2Client(process)
        sid = client.connect("/echo")
        assert client.response(sid)[b":status"] == b"200"
        process.signal()
        # (The h2 library gives up on a connection once GOAWAY arrives: read the bytes as they
        # are; a DATA frame's payload travels verbatim.)
        close_1012 = b"\x88\x02\x03\xf4"
        received = b""
        while close_1012 not in received:
            piece = client.sock.recv(65536)
            assert piece, received
            received += piece
        reply = fake.client_frame(fake.OP_CLOSE, b"\x03\xf4")
        header = len(reply).to_bytes(3, "big") + b"\x00\x01" + sid.to_bytes(4, "big")
        client.sock.sendall(header + reply)  # DATA with END_STREAM: the closing handshake
        assert process.wait() == 0
        client.close()


def _outcomes(server: ServerProcess, count: int) -> list[str]:
    for _ in range(100):
        outcomes: list[str] = httpx.get(f"{server.url}/outcomes", timeout=10).json()
        if len(outcomes) >= count:
            return outcomes
        time.sleep(0.05)
    raise AssertionError(f"the app recorded only {outcomes}")


@pytest.mark.parametrize("ending", ["with the CONNECT", "before the accept"])
def test_client_ending_before_the_response_resets_the_stream(ending: str) -> None:
    # RFC 9113 section 8.1: no DATA (here, an END_STREAM) before the response HEADERS.  The
    # client is gone: RST_STREAM(CANCEL), and the app, accepting late, hears the disconnect.
    with run_server(APP, "--no-access-log") as process:
        client = H2Client(process)
        sid: int = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            sid,
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", "/late"),
                (":authority", "127.0.0.1"),
                ("sec-websocket-version", "13"),
            ],
            end_stream=ending == "with the CONNECT",
        )
        client.flush()
        if ending == "before the accept":
            client.send(sid, b"", end=True)
        client.until(lambda: client.ended(sid))
        on_stream = [e for e in client.events if getattr(e, "stream_id", None) == sid]
        assert [type(e) for e in on_stream] == [h2.events.StreamReset], on_stream
        assert on_stream[0].error_code == h2.errors.ErrorCodes.CANCEL
        # The app's accept comes after the reset: it hears that the client left.
        assert _outcomes(process, 2) == ["ClientDisconnected", "websocket.disconnect"]
        # The connection carries on.
        other = client.connect("/echo")
        assert client.response(other)[b":status"] == b"200"
        client.close()
        process.signal()
        assert process.wait() == 0
        assert "Traceback" not in process.stderr(), process.stderr()


def test_half_closed_websocket_stream_is_reset_and_forgotten() -> None:
    # The client starts the closing handshake but never ends its stream: after the echo and
    # our END_STREAM, RST_STREAM(NO_ERROR) (RFC 9113 section 8.1) lets the stream go, so the
    # idle connection's keep-alive timeout applies again.
    with run_server(APP, "--no-access-log", "--timeout-keep-alive", "1") as process:
        client = H2Client(process)
        sid = client.connect("/echo")
        assert client.response(sid)[b":status"] == b"200"
        client.send(sid, fake.client_frame(fake.OP_CLOSE, b"\x03\xe8"))  # no END_STREAM
        client.until(
            lambda: any(
                isinstance(e, h2.events.StreamReset) and e.stream_id == sid for e in client.events
            )
        )
        on_stream = [type(e) for e in client.events if getattr(e, "stream_id", None) == sid]
        assert on_stream[-2:] == [h2.events.StreamEnded, h2.events.StreamReset]
        reset = next(e for e in client.events if isinstance(e, h2.events.StreamReset))
        assert reset.error_code == h2.errors.ErrorCodes.NO_ERROR
        frames, _ = fake.parse_frames(client.data(sid))
        assert frames[-1].opcode == fake.OP_CLOSE and frames[-1].close_code == 1000
        # No stream left: the idle connection is closed after its keep-alive timeout.
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
        assert time.monotonic() - started < 5
        client.close()
