"""The settings a connection reads: ``ConnectionSettings``.

``HttpProtocol`` and ``WebSocketSession`` take their limits, timeouts and switches from the
server's settings object, and read nothing else of it.  ``esg.Config`` is that object in a
server; the test suite's fake transport builds a small dataclass instead
(``tests/fake_transport.py:FakeConfig``).  This ``typing.Protocol`` is what both provide:
mypy checks ``Config`` against it where the server hands its config to the connections, and a
test holds the fake to the same list.  Every member is read-only here: a connection never
changes a setting (and so ``Config``'s ``int`` timeouts pass for ``float``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from esg._types import ASGIApp
    from esg.middleware.proxy_headers import TrustedHosts

__all__ = ["ConnectionSettings"]


class ConnectionSettings(Protocol):
    """What ``HttpProtocol`` and ``WebSocketSession`` read of the server's settings."""

    # -- HTTP -------------------------------------------------------------------------------

    @property
    def loaded_app(self) -> ASGIApp:
        """The app, wrapped as ``Config.load()`` leaves it."""

    @property
    def asgi_version(self) -> str: ...

    @property
    def access_log(self) -> bool: ...

    @property
    def root_path(self) -> str: ...

    @property
    def proxy_trust(self) -> TrustedHosts | None:
        """Whose X-Forwarded-* headers to apply; None without ``--proxy-headers``."""

    @property
    def limit_concurrency(self) -> int | None: ...

    @property
    def limit_request_line(self) -> int: ...

    @property
    def limit_request_fields(self) -> int: ...

    @property
    def limit_request_field_size(self) -> int: ...

    @property
    def limit_request_head(self) -> int: ...

    @property
    def limit_request_body(self) -> int | None: ...

    @property
    def timeout_keep_alive(self) -> float: ...

    @property
    def timeout_header(self) -> float: ...

    @property
    def timeout_body(self) -> float:
        """Also the WebSocket session's: how long a client may leave written bytes untaken."""

    # -- HTTP/2 ----------------------------------------------------------------------------

    @property
    def http2(self) -> bool:
        """``--http2``: the preface (cleartext) and ALPN ``h2`` (TLS) hand a connection over."""

    @property
    def http2_max_concurrent_streams(self) -> int: ...

    @property
    def http2_initial_stream_window_size(self) -> int: ...

    @property
    def http2_initial_connection_window_size(self) -> int: ...

    @property
    def http2_max_frame_size(self) -> int: ...

    @property
    def http2_max_header_list_size(self) -> int | None:
        """None: derived from the HTTP/1.1 limits (esg.http2.protocol.max_header_list_size)."""

    @property
    def http2_keep_alive_interval(self) -> float | None: ...

    # -- WebSocket --------------------------------------------------------------------------

    @property
    def ws(self) -> str:
        """``--ws``: "none" turns upgrades off; otherwise which engine frames the messages."""

    @property
    def ws_max_size(self) -> int: ...

    @property
    def ws_max_queue(self) -> int: ...

    @property
    def ws_ping_interval(self) -> float | None: ...

    @property
    def ws_ping_timeout(self) -> float | None: ...

    @property
    def ws_per_message_deflate(self) -> bool: ...
