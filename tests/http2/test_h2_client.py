"""esg's HTTP/2 server codec against the ``h2`` package as a real client, in memory, both builds.

The h2 client's ``data_to_send()`` goes into esg's ``receive_data()`` and esg's output into the
client, until neither has anything more to say.  ``App`` plays the asyncio layer: it answers
requests, consumes request bodies (acknowledging them, or not, to test back-pressure) and
sends response bodies as the windows allow.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest


class App:
    """A minimal stand-in for the asyncio layer over one esg ServerConnection."""

    def __init__(self, h2mod: ModuleType, consume: bool = True, **options: Any) -> None:
        self.server = h2mod.ServerConnection(**options)
        self.consume = consume
        self.requests: dict[int, Any] = {}
        self.bodies: dict[int, bytearray] = {}
        self.trailers: dict[int, list[tuple[bytes, bytes]]] = {}
        self.resets: list[Any] = []
        self.pending: dict[int, tuple[bytes, bool]] = {}  # response bodies waiting for window
        self.events: list[Any] = []
        self.response_trailers: list[tuple[bytes, bytes]] | None = None

    def respond(self, sid: int, body: bytes) -> None:
        self.server.send_headers(sid, [(b":status", b"200"), (b"x-sid", str(sid).encode())])
        self.pending[sid] = (body, True)
        self.flush(sid)

    def flush(self, sid: int) -> None:
        body, end = self.pending[sid]
        finish = end and self.response_trailers is None
        sent = self.server.send_data(sid, body, end_stream=finish)
        if sent == len(body):
            del self.pending[sid]
            if self.response_trailers is not None:
                self.server.send_trailers(sid, self.response_trailers)
        else:
            self.pending[sid] = (body[sent:], end)

    def handle(self, events: list[Any]) -> None:
        for event in events:
            self.events.append(event)
            name = type(event).__name__
            sid = getattr(event, "stream_id", 0)
            if name == "RequestReceived":
                self.requests[sid] = event
                self.bodies[sid] = bytearray()
                if event.path.startswith(b"/size/"):
                    self.respond(sid, b"d" * int(event.path[6:]))
                elif event.end_stream:
                    self.respond(sid, b"r" * (1000 + sid))
            elif name == "DataReceived":
                self.bodies[sid] += event.data
                if self.consume:
                    self.server.acknowledge_received_data(sid, len(event.data))
                if event.end_stream:
                    self.respond(sid, bytes(self.bodies[sid]))
            elif name == "TrailersReceived":
                self.trailers[sid] = event.headers
                self.respond(sid, bytes(self.bodies[sid]))
            elif name == "StreamReset":
                self.resets.append(event)
                self.pending.pop(sid, None)
            elif name == "WindowOpened":
                for waiting in list(self.pending) if sid == 0 else [sid]:
                    if waiting in self.pending:
                        self.flush(waiting)


class Client:
    def __init__(self) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.events: list[Any] = []
        self.bodies: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.headers: dict[int, list[Any]] = {}

    def request(self, path: str = "/", method: str = "GET", body: bytes = b"", **extra: str) -> int:
        sid: int = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "t")]
        fields += list(extra.items())
        self.conn.send_headers(sid, fields, end_stream=not body and method == "GET")
        return sid


def pump(client: Client, app: App, auto_ack: bool = True, limit: int = 100000) -> None:
    for _ in range(limit):
        out = client.conn.data_to_send()
        if out:
            app.handle(app.server.receive_data(out))
        back = app.server.data_to_send()
        if back:
            for event in client.conn.receive_data(back):
                client.events.append(event)
                if isinstance(event, h2.events.DataReceived):
                    client.bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                    if auto_ack:
                        client.conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    client.headers.setdefault(event.stream_id, []).append(event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    client.ended.add(event.stream_id)
        if not out and not back:
            return
    raise AssertionError("the conversation doesn't end")


def test_many_concurrent_gets(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod)
    pump(client, app)
    sids = [client.request(f"/{n}", **{"x-n": str(n)}) for n in range(60)]
    pump(client, app)
    assert set(client.ended) == set(sids)
    for n, sid in enumerate(sids):
        assert app.requests[sid].path == f"/{n}".encode()
        assert (b"x-n", str(n).encode()) in app.requests[sid].headers
        assert bytes(client.bodies[sid]) == b"r" * (1000 + sid)
        assert client.headers[sid][0][1] == (b"x-sid", str(sid).encode())
    assert app.server.open_streams == 0
    assert not any(app.server.counters.values())


def test_a_large_upload_is_not_throttled_when_the_app_consumes(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod)
    pump(client, app)
    body = bytes(range(256)) * 20000  # 5 MB
    sid = client.request("/up", "POST", body=body)
    offset = 0
    while offset < len(body):
        room = min(client.conn.local_flow_control_window(sid), client.conn.max_outbound_frame_size)
        assert room > 0, "the client is stuck waiting for window"
        client.conn.send_data(sid, body[offset : offset + room])
        offset += room
        pump(client, app)
    client.conn.end_stream(sid)
    pump(client, app)
    assert bytes(app.bodies[sid]) == body
    assert bytes(client.bodies[sid]) == body  # echoed back through the send windows


def test_a_slow_app_back_pressures_the_client(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod, consume=False, initial_window_size=65535)
    pump(client, app)
    sid = client.request("/up", "POST", body=b"x")
    sent = 0
    while client.conn.local_flow_control_window(sid) > 0:
        room = min(client.conn.local_flow_control_window(sid), 16384)
        client.conn.send_data(sid, b"x" * room)
        sent += room
        pump(client, app)
    assert sent == 65535 and len(app.bodies[sid]) == sent
    app.server.acknowledge_received_data(sid, sent)
    pump(client, app)
    assert client.conn.local_flow_control_window(sid) == 65535


def test_a_large_download_waits_for_window(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod)
    pump(client, app)
    sid = client.request("/size/3000000")
    pump(client, app)
    assert bytes(client.bodies[sid]) == b"d" * 3_000_000
    assert any(type(e).__name__ == "WindowOpened" for e in app.events)


def test_trailers_both_ways(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod)
    app.response_trailers = [(b"grpc-status", b"0"), (b"grpc-message", b"ok")]
    pump(client, app)
    sid = client.request(
        "/svc", "POST", body=b"x", te="trailers", **{"content-type": "application/grpc"}
    )
    client.conn.send_data(sid, b"\0\0\0\0\1x")
    client.conn.send_headers(sid, [("x-trailer", "1")], end_stream=True)
    pump(client, app)
    assert app.trailers[sid] == [(b"x-trailer", b"1")]
    assert client.headers[sid][-1] == [(b"grpc-status", b"0"), (b"grpc-message", b"ok")]
    assert sid in client.ended


def test_client_resets_a_stream(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod)
    pump(client, app)
    sid = client.request("/slow", "POST", body=b"x")
    pump(client, app)
    client.conn.reset_stream(sid, 8)
    pump(client, app)
    assert [(r.stream_id, r.error_code, r.remote) for r in app.resets] == [(sid, 8, True)]
    assert app.server.counters["client_resets"] == 1
    other = client.request("/after")
    pump(client, app)
    assert other in client.ended


def test_server_resets_a_stream(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod)
    pump(client, app)
    sid = client.request("/x", "POST", body=b"x")
    pump(client, app)
    app.server.reset_stream(sid, 8)
    pump(client, app)
    resets = [e for e in client.events if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(sid, 8)]


def test_goaway_with_h2(h2mod: ModuleType) -> None:
    # h2 closes its side on the first GOAWAY it receives and then refuses the PING of the
    # two-phase shutdown, so only the plain GOAWAY is tried with it; the phases are tested
    # on raw frames in test_connection.py.
    client, app = Client(), App(h2mod)
    pump(client, app)
    sid = client.request("/")
    pump(client, app)
    app.server.close_connection(0)
    events = client.conn.receive_data(app.server.data_to_send())
    goaways = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert [(g.error_code, g.last_stream_id) for g in goaways] == [(0, sid)]
    assert app.server.drained and sid in client.ended


def test_ping_from_h2(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod)
    pump(client, app)
    client.conn.ping(b"abcdefgh")
    pump(client, app)
    acks = [e for e in client.events if isinstance(e, h2.events.PingAckReceived)]
    assert [a.ping_data for a in acks] == [b"abcdefgh"]


def test_h2_sees_our_settings(h2mod: ModuleType) -> None:
    client, app = Client(), App(h2mod, max_concurrent_streams=5, max_frame_size=32768)
    pump(client, app)
    remote = client.conn.remote_settings
    assert remote.max_concurrent_streams == 5 and remote.max_frame_size == 32768
    assert client.conn.outbound_flow_control_window == 1 << 24
    assert any(isinstance(e, h2.events.SettingsAcknowledged) for e in client.events)
    assert any(type(e).__name__ == "SettingsAcknowledged" for e in app.events)


@pytest.mark.parametrize("size", [0, 1, 16384, 16385, 100_000])
def test_response_sizes(h2mod: ModuleType, size: int) -> None:
    client, app = Client(), App(h2mod)
    pump(client, app)
    sid = client.request(f"/size/{size}")
    pump(client, app)
    assert bytes(client.bodies.get(sid, b"")) == b"d" * size and sid in client.ended
