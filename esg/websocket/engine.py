"""What frames an accepted WebSocket connection: esg's own codec or a library behind an adapter.

Every engine has the same small sans-IO surface (``Engine``), so the ASGI session in
``esg/websocket/session.py`` is written once and ``--ws auto|websockets|wsproto`` behave the
same at the ASGI level.  The session does everything that isn't framing: it answers pings and
close frames, runs keepalive pings, and turns an engine's ``ProtocolError`` into a close frame
with the error's code.  Events are the classes of ``engine.frames`` (``TextMessage``,
``BytesMessage``, ``Ping``, ``Pong``, ``Close``); errors are that module's ``ProtocolError``.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from esg._compiled import load

if TYPE_CHECKING:
    from esg.websocket.deflate import DeflateParams

__all__ = ["ENGINES", "Engine", "EsgEngine", "available", "make_engine"]


class Engine(Protocol):
    """Frames one connection after the handshake (server side)."""

    frames: ModuleType  # the esg.websocket.frames build whose event classes this engine returns

    def feed(self, data: bytes) -> None:
        """Bytes received from the client."""

    def next_event(self) -> Any:
        """The next whole message or control frame, or None; raises ``frames.ProtocolError``."""

    def buffered(self) -> int:
        """Bytes held: unread input plus the message assembled so far."""

    def text(self, data: str) -> bytes: ...

    def binary(self, data: bytes) -> bytes: ...

    def ping(self, payload: bytes) -> bytes: ...

    def pong(self, payload: bytes) -> bytes: ...

    def close(self, code: int, reason: str) -> bytes: ...


class EsgEngine:
    """esg's own codec (``esg.websocket.frames``, compiled when built)."""

    def __init__(
        self, max_size: int, deflate: DeflateParams | None, frames: ModuleType | None = None
    ) -> None:
        from esg.websocket.deflate import Deflater, Inflater

        self.frames = frames if frames is not None else load("esg.websocket.frames")
        inflater = Inflater(deflate) if deflate is not None else None
        deflater = Deflater(deflate) if deflate is not None else None
        reader = self.frames.FrameReader(max_size, inflater)
        writer = self.frames.FrameWriter(deflater)
        # The session calls these on every message: bind them once.
        self.feed = reader.feed
        self.next_event = reader.next_event
        self.buffered = reader.buffered
        self.text = writer.text
        self.binary = writer.binary
        self.ping = writer.ping
        self.pong = writer.pong
        self.close = writer.close


def _websockets_engine(max_size: int, deflate: DeflateParams | None) -> Engine:
    from esg.websocket.adapters import WebsocketsEngine

    return WebsocketsEngine(max_size, deflate)


def _wsproto_engine(max_size: int, deflate: DeflateParams | None) -> Engine:
    from esg.websocket.adapters import WsprotoEngine

    return WsprotoEngine(max_size, deflate)


ENGINES = {
    "esg": EsgEngine,
    "websockets": _websockets_engine,
    "wsproto": _wsproto_engine,
}


def available(kind: str) -> bool:
    """Can ``--ws kind`` be served here (is its library installed)?"""
    if kind in ("auto", "esg"):
        return True
    try:
        __import__(kind)
    except ImportError:
        return False
    return True


def make_engine(kind: str, max_size: int, deflate: DeflateParams | None) -> Engine:
    """The engine for ``--ws kind`` ('auto' is esg's own)."""
    factory: Any = ENGINES["esg" if kind == "auto" else kind]
    engine: Engine = factory(max_size, deflate)
    return engine
