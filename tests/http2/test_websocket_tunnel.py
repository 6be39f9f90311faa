"""``StreamTunnel`` (esg/http2/websocket.py), the transport of a WebSocket on an HTTP/2 stream,
against a recording codec and session: flow control both ways and how the stream ends."""

from __future__ import annotations

import asyncio
from typing import Any

from esg.http2.errors import StreamClosedError
from esg.http2.frames import ErrorCode
from esg.http2.websocket import HIGH_WATER, StreamTunnel


class Codec:
    def __init__(self) -> None:
        self.window = 1 << 30
        self.sent: list[tuple[bytes, bool]] = []
        self.credited = 0
        self.resets: list[int] = []
        self.closed = False
        self.headers_sent = False

    def send_data(self, stream_id: int, data: bytes, end: bool) -> int:
        if self.closed or self.resets:
            raise StreamClosedError(stream_id)
        if not self.headers_sent:
            raise ValueError("DATA before HEADERS")  # as esg's codec refuses it
        taken = min(len(data), self.window)
        self.window -= taken
        self.sent.append((data[:taken], end and taken == len(data)))
        return taken

    def acknowledge_received_data(self, stream_id: int, size: int) -> None:
        self.credited += size

    def reset_stream(self, stream_id: int, code: int) -> None:
        self.resets.append(code)


class Connection:
    def __init__(self) -> None:
        self.conn = Codec()
        self.transport = None
        self.closed_streams: list[Any] = []
        self.flushes = 0

    def want_flush(self) -> None:
        self.flushes += 1

    def stream_closed(self, stream: Any) -> None:
        self.closed_streams.append(stream)


class Session:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.events: list[Any] = []

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def connection_lost(self, exc: Any) -> None:
        self.events.append("lost")


def tunnel_with(
    loop: asyncio.AbstractEventLoop, accepted: bool = True
) -> tuple[StreamTunnel, Connection, Session]:
    """A tunnel whose response HEADERS went already (``accepted``), or not yet."""
    connection = Connection()
    tunnel = StreamTunnel(connection, 1)
    session = Session(loop)
    tunnel.session = session  # type: ignore[assignment]
    if accepted:
        connection.conn.headers_sent = tunnel.head_sent = True
    return tunnel, connection, session


def test_window_backlog_pauses_and_resumes_the_session() -> None:
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop())
        connection.conn.window = 10
        tunnel.write(b"x" * (HIGH_WATER + 100))
        assert session.events == ["pause"]
        assert tunnel.get_write_buffer_size() == HIGH_WATER + 90
        tunnel.write(b"more")  # queued behind, in order
        connection.conn.window = 1 << 30
        tunnel.window_opened()
        assert session.events == ["pause", "resume"]
        assert (
            b"".join(data for data, _ in connection.conn.sent)
            == b"x" * (HIGH_WATER + 100) + b"more"
        )
        assert tunnel.get_write_buffer_size() == 0

    asyncio.run(scenario())


def test_reading_paused_keeps_the_window_back() -> None:
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop())
        tunnel.data_received(b"abc", False)
        assert connection.conn.credited == 3
        tunnel.pause_reading()
        tunnel.data_received(b"defg", False)
        assert connection.conn.credited == 3  # the client's window stays shut meanwhile
        tunnel.resume_reading()
        assert connection.conn.credited == 7
        assert session.events == [b"abc", b"defg"]

    asyncio.run(scenario())


def test_close_after_the_backlog_then_the_client_ends() -> None:
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop())
        connection.conn.window = 2
        tunnel.write(b"hello")
        tunnel.close()  # END_STREAM waits for the bytes before it
        assert connection.conn.sent == [(b"he", False)]
        connection.conn.window = 100
        tunnel.window_opened()
        assert connection.conn.sent[-1] == (b"llo", True)
        # The client's end didn't come: RST_STREAM(NO_ERROR) after our END_STREAM lets it go.
        assert connection.conn.resets == [int(ErrorCode.NO_ERROR)]
        assert tunnel.closed and connection.closed_streams == [tunnel]
        tunnel.data_received(b"", True)  # (its END_STREAM, crossing our reset: ignored)
        assert connection.closed_streams == [tunnel]
        await asyncio.sleep(0)
        assert session.events[-1] == "lost"

    asyncio.run(scenario())


def test_client_ending_first_closes_our_side() -> None:
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop())
        tunnel.data_received(b"", True)
        assert connection.conn.sent == [(b"", True)]
        assert connection.conn.resets == []  # ended both ways: nothing to reset
        assert tunnel.closed
        await asyncio.sleep(0)
        assert session.events == ["lost"]

    asyncio.run(scenario())


def test_half_closed_stream_is_reset_and_forgotten() -> None:
    # The client's close frame was echoed and the session closed us; the client never ends.
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop())
        tunnel.write(b"\x88\x02\x03\xe8")
        tunnel.close()
        assert connection.conn.sent == [(b"\x88\x02\x03\xe8", False), (b"", True)]
        assert connection.conn.resets == [int(ErrorCode.NO_ERROR)]
        assert tunnel.closed and connection.closed_streams == [tunnel]
        await asyncio.sleep(0)
        assert session.events == ["lost"]

    asyncio.run(scenario())


def test_client_ending_before_the_response_resets_the_stream() -> None:
    # RFC 9113 section 8.1: no DATA before the response HEADERS, so no END_STREAM either.
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop(), accepted=False)
        tunnel.data_received(b"", True)
        assert connection.conn.sent == []
        assert connection.conn.resets == [int(ErrorCode.CANCEL)]
        assert tunnel.closed and tunnel.is_closing()
        assert connection.closed_streams == [tunnel]
        await asyncio.sleep(0)
        assert session.events == ["lost"]  # the session hears the client is gone

    asyncio.run(scenario())


def test_close_before_the_response_resets_the_stream() -> None:
    # E.g. shutdown while the app decides: nothing was answered, so no END_STREAM in DATA.
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop(), accepted=False)
        tunnel.close()
        assert connection.conn.sent == []
        assert connection.conn.resets == [int(ErrorCode.CANCEL)]
        assert tunnel.closed and connection.closed_streams == [tunnel]
        await asyncio.sleep(0)
        assert session.events == ["lost"]

    asyncio.run(scenario())


def test_abort_resets_the_stream_once() -> None:
    async def scenario() -> None:
        tunnel, connection, session = tunnel_with(asyncio.get_running_loop())
        tunnel.abort()
        tunnel.abort()
        assert len(connection.conn.resets) == 1 and tunnel.is_closing()
        tunnel.write(b"ignored")
        assert connection.conn.sent == []
        await asyncio.sleep(0)
        assert session.events == ["lost"]

    asyncio.run(scenario())


def test_the_connection_socket_is_not_handed_out() -> None:
    async def scenario() -> None:
        tunnel, connection, _ = tunnel_with(asyncio.get_running_loop())

        class Transport:
            def get_extra_info(self, name: str, default: Any = None) -> Any:
                return {"socket": object(), "peername": ("127.0.0.1", 1)}.get(name, default)

        connection.transport = Transport()  # type: ignore[assignment]
        assert tunnel.get_extra_info("socket") is None
        assert tunnel.get_extra_info("peername") == ("127.0.0.1", 1)

    asyncio.run(scenario())
