"""Named attacks on an HTTP/2 server, each bounded in the codec (both builds).

Every loop here is bounded; each attack must end in GOAWAY(ENHANCE_YOUR_CALM) (or the RFC's
own answer) with its counter raised, long before it costs more than its budget.
"""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import pytest

from tests.http2 import wire
from tests.http2.wire import GET, Wire, data, frame, resets, settings

ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR = 11, 3
POST = [(":method", "POST"), (":scheme", "https"), (":path", "/")]


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def server(h2mod: ModuleType, **options: Any) -> Any:
    conn = h2mod.ServerConnection(**options)
    conn.receive_data(Wire.start())
    conn.data_to_send()
    return conn


def calm(conn: Any, events: list[Any]) -> bool:
    names = [type(e).__name__ for e in events]
    if "ConnectionTerminated" not in names:
        return False
    assert events[-1].error_code == ENHANCE_YOUR_CALM
    assert wire.goaway_code(conn.data_to_send()) == ENHANCE_YOUR_CALM
    return True


def test_rapid_reset(h2mod: ModuleType) -> None:
    # CVE-2023-44487: open a stream, reset it at once, again and again.
    conn = server(h2mod, reset_limit=100, reset_window=1000)
    w = Wire()
    for n in range(1000):
        sid = 2 * n + 1
        events = conn.receive_data(w.headers(sid, end_stream=False) + wire.rst(sid))
        if calm(conn, events):
            break
    assert n == 100  # the 101st reset in this window of streams
    assert conn.counters["reset_flood"] == 1 and conn.counters["client_resets"] == 101
    assert conn.closed


def test_resets_within_the_budget_are_fine(h2mod: ModuleType) -> None:
    conn = server(h2mod, reset_limit=10, reset_window=50)
    w = Wire()
    for n in range(500):  # 10 resets per 50 streams: never more than the limit in a window
        sid = 2 * n + 1
        payload = w.headers(sid, end_stream=False)
        payload += wire.rst(sid) if n % 50 < 10 else data(sid, b"", end_stream=True)
        events = conn.receive_data(payload)
        assert not calm(conn, events)
        if n % 50 >= 10:
            conn.send_headers(sid, [(b":status", b"204")], end_stream=True)
    assert conn.counters["client_resets"] == 100 and not conn.closed


def test_made_you_reset(h2mod: ModuleType) -> None:
    # 2025: the client makes esg reset its streams (WINDOW_UPDATE 0, DATA after END_STREAM):
    # those resets share the Rapid Reset budget.
    conn = server(h2mod, reset_limit=50)
    w = Wire()
    for n in range(200):
        sid = 2 * n + 1
        if n % 2:
            bad = w.headers(sid, POST, end_stream=True) + data(sid, b"x")
        else:
            bad = w.headers(sid, POST, end_stream=False) + wire.window_update(sid, 0)
        events = conn.receive_data(bad)
        if calm(conn, events):
            break
    assert n == 50
    assert conn.counters["reset_flood"] == 1 and conn.counters["server_resets"] == 51


def test_continuation_flood_of_empty_frames(h2mod: ModuleType) -> None:
    # CVE-2024-27316 class: a header block that never ends.
    conn = server(h2mod)
    w = Wire()
    conn.receive_data(w.headers(1, end_headers=False))
    count = 0
    while count < 1000:
        count += 1
        if calm(conn, conn.receive_data(frame(wire.CONTINUATION, 0, 1, b""))):
            break
    assert count == 129 and conn.counters["continuation_flood"] == 1


def test_continuation_flood_of_bytes_is_capped_by_the_header_list_size(h2mod: ModuleType) -> None:
    conn = server(h2mod, max_header_list_size=8192)
    w = Wire()
    conn.receive_data(w.headers(1, end_headers=False))
    fed = 0
    for _ in range(100):
        events = conn.receive_data(frame(wire.CONTINUATION, 0, 1, b"\x40" * 4096))
        fed += 4096
        if calm(conn, events):
            break
    assert fed <= 8192 + 16384 + 4096  # never buffered much beyond the limit
    assert conn.counters["continuation_flood"] == 1


def test_hpack_bomb_refuses_the_stream_not_the_connection(h2mod: ModuleType) -> None:
    conn = server(h2mod)
    w = Wire()
    events = conn.receive_data(w.headers(1, [*GET, ("x-big", "v" * 3900)]))
    assert events[0].stream_id == 1
    # 2000 one-byte references to the 3937-byte dynamic entry: 7.8 MB of header list.
    bomb = w.block(GET) + bytes([0x80 | 62]) * 2000
    events = conn.receive_data(frame(wire.HEADERS, wire.END_HEADERS | wire.END_STREAM, 3, bomb))
    assert [(type(e).__name__, e.stream_id) for e in events] == [("RequestHeadersTooLarge", 3)]
    assert conn.counters["header_lists_too_large"] == 1
    conn.send_headers(3, [(b":status", b"431")], end_stream=True)  # the layer's answer
    events = conn.receive_data(w.headers(5))  # and HPACK is still in step
    assert events[0].path == b"/"


FLOODS = {
    "settings_flood": settings(),
    "ping_flood": wire.ping(),
    "priority_flood": wire.priority(1),
    "window_update_flood": wire.window_update(0, 1),
    "unknown_frame_flood": frame(0x77, 0, 0, b"x"),
}


@pytest.mark.parametrize("kind", [*sorted(FLOODS), "empty_data_flood"])
def test_control_frame_floods(h2mod: ModuleType, kind: str) -> None:
    clock = FrozenClock()
    conn = server(h2mod, flood_burst=200, flood_rate=10, clock=clock)
    w = Wire()
    if kind == "empty_data_flood":
        conn.receive_data(w.headers(1, POST, end_stream=False))
        flood = data(1, b"")
    else:
        flood = FLOODS[kind]
    sent = 0
    while sent < 1000:
        sent += 1
        if calm(conn, conn.receive_data(flood * 10)):
            break
    assert sent * 10 <= 200 + 8 + 10  # the burst, one request's credit, one batch
    assert conn.counters[kind] == 1


def test_control_frames_at_a_modest_rate_are_fine(h2mod: ModuleType) -> None:
    clock = FrozenClock()
    conn = server(h2mod, flood_burst=50, flood_rate=10, clock=clock)
    for _ in range(500):  # a keep-alive PING every half second, for a long time
        clock.now += 0.5
        assert not calm(conn, conn.receive_data(wire.ping()))
    assert not conn.closed


def test_window_updates_earned_by_a_download_are_fine(h2mod: ModuleType) -> None:
    conn = server(h2mod, flood_burst=20, clock=FrozenClock())
    w = Wire()
    conn.receive_data(w.headers(1))
    conn.send_headers(1, [(b":status", b"200")])
    for _ in range(400):  # a client that opens both windows for every DATA frame it gets
        assert conn.send_data(1, b"x" * 100) == 100
        events = conn.receive_data(wire.window_update(1, 100) + wire.window_update(0, 100))
        assert not calm(conn, events)


def test_zero_window_stall_holds_no_memory(h2mod: ModuleType) -> None:
    # A client that opens no window: esg's output stays empty, send_data refuses.
    conn = h2mod.ServerConnection()
    conn.receive_data(Wire.start((4, 0)) + Wire().headers(1))
    conn.data_to_send()
    conn.send_headers(1, [(b":status", b"200")])
    conn.data_to_send()
    for _ in range(100):
        assert conn.send_data(1, b"x" * 100_000) == 0
    assert conn.data_to_send() == b""
    assert conn.send_window(1) == 0


def test_stream_id_exhaustion_ends_gracefully(h2mod: ModuleType) -> None:
    conn = server(h2mod)
    w = Wire()
    sid = 2**31 - 101
    events = conn.receive_data(w.headers(sid))
    assert events[0].stream_id == sid  # served ...
    out = wire.read_frames(conn.data_to_send())
    goaway = [f for f in out if f[0] == wire.GOAWAY]
    assert [struct.unpack(">II", f[3]) for f in goaway] == [(sid, 0)]  # ... and the last
    assert conn.counters["stream_id_exhaustion"] == 1
    assert conn.receive_data(w.headers(sid + 2)) == []  # beyond the GOAWAY: ignored
    conn.send_headers(sid, [(b":status", b"200")], end_stream=True)
    assert conn.drained


def test_unread_data_is_bounded_by_the_connection_window(h2mod: ModuleType) -> None:
    # Many streams, each within its own window, but nobody reads: the connection window
    # (65535 here) is all the DATA the codec ever hands out unacknowledged.
    conn = server(h2mod, connection_window_size=65535, initial_window_size=30000)
    w = Wire()
    delivered = 0
    for n in range(10):
        sid = 2 * n + 1
        events = conn.receive_data(w.headers(sid, POST, end_stream=False) + data(sid, b"x" * 16000))
        delivered += sum(len(e.data) for e in events if type(e).__name__ == "DataReceived")
        if any(type(e).__name__ == "ConnectionTerminated" for e in events):
            assert events[-1].error_code == FLOW_CONTROL_ERROR
            break
    assert delivered <= 65535 and conn.closed


def test_discarded_data_gives_the_window_back(h2mod: ModuleType) -> None:
    # DATA on a stream esg reset counts against the connection window and is credited at once.
    conn = server(h2mod, connection_window_size=65535)
    w = Wire()
    conn.receive_data(w.headers(1, POST, end_stream=False))
    conn.reset_stream(1)
    for _ in range(20):
        assert conn.receive_data(data(1, b"x" * 16000)) == []
    out = wire.read_frames(conn.data_to_send())
    credited = sum(struct.unpack(">I", f[3])[0] for f in out if f[0] == wire.WINDOW_UPDATE)
    assert credited >= 20 * 16000 - 65535
    assert resets(b"") == []
