"""All of esg's settings, and the work of turning them into a servable app.

``Config(app, **settings)`` validates and stores settings and configures logging at once
(esg.log_config).  ``load()`` imports the app, picks its interface and wraps it;
``bind_sockets()`` opens the listening sockets (esg.sockets).  A mistake the user can fix (bad
import string, missing file, port in use) is logged as one line on ``esg.error`` and raises
``SystemExit(1)`` (esg.user_errors.fail).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import socket
import ssl
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from esg._ssl import TLSConfigError, create_ssl_context
from esg._types import ASGIApp
from esg.importer import ImportFromStringError, import_from_string
from esg.log_config import LogConfig, configure_logging
from esg.logging import LOG_FORMATS, LOG_LEVELS, LOGGING_CONFIG, TRACE_LOG_LEVEL
from esg.sockets import listening_sockets, remove_unix_socket
from esg.user_errors import fail

# fail and remove_unix_socket live in esg.user_errors and esg.sockets; code that imported them
# from here goes on working.
__all__ = ["Config", "LOGGING_CONFIG", "LOG_FORMATS", "LOG_LEVELS", "fail", "remove_unix_socket"]

INTERFACES = ("auto", "asgi3", "asgi2", "wsgi")
LIFESPAN_CHOICES = ("auto", "on", "off")
LOOP_CHOICES = ("auto", "asyncio", "uvloop", "none")
WS_CHOICES = ("auto", "none", "websockets", "wsproto")
# What --reload watches by default (esg.supervisors.watch); --reload-include/--reload-exclude
# adjust them.
DEFAULT_RELOAD_INCLUDES = ["*.py"]
DEFAULT_RELOAD_EXCLUDES = [".*", ".py[cod]", ".sw.*", "~*"]
# The whole request head (request line and fields); h11_max_incomplete_event_size replaces it.
DEFAULT_LIMIT_REQUEST_HEAD = 65536
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

logger = logging.getLogger("esg.error")


class Config:
    """Settings for one esg server, validated when it is constructed."""

    loaded_app: ASGIApp
    lifespan_class: type[Any]

    def __init__(
        self,
        app: str | Callable[..., Any],
        host: str | None = "127.0.0.1",
        port: int = 8000,
        uds: str | None = None,
        uds_mode: int = 0o666,
        fd: int | None = None,
        loop: str = "auto",
        ws: str = "auto",
        ws_max_size: int = 16 * 1024 * 1024,
        ws_max_queue: int = 32,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
        lifespan: str = "auto",
        interface: str = "auto",
        reload: bool = False,
        reload_dirs: Sequence[str] | str | None = None,
        reload_includes: Sequence[str] | str | None = None,
        reload_excludes: Sequence[str] | str | None = None,
        reload_delay: float = 0.25,
        workers: int | None = None,
        timeout_worker_healthcheck: float = 5.0,
        env_file: str | os.PathLike[str] | None = None,
        log_config: LogConfig = LOGGING_CONFIG,
        log_level: str | int | None = None,
        access_log: bool = True,
        access_log_format: str | None = None,
        log_format: str = "text",
        use_colors: bool | None = None,
        proxy_headers: bool = True,
        server_header: bool = True,
        date_header: bool = True,
        forwarded_allow_ips: Sequence[str] | str | None = None,
        root_path: str = "",
        limit_concurrency: int | None = None,
        limit_max_requests: int | None = None,
        limit_max_requests_jitter: int = 0,
        backlog: int = 2048,
        timeout_keep_alive: int = 5,
        timeout_graceful_shutdown: int | None = None,
        timeout_header: float = 30.0,
        timeout_body: float = 60.0,
        limit_request_line: int = 8190,
        limit_request_fields: int = 100,
        limit_request_field_size: int = 8190,
        limit_request_body: int | None = None,
        http2: bool = True,
        http2_max_concurrent_streams: int = 100,
        http2_initial_stream_window_size: int = 1 << 20,
        http2_initial_connection_window_size: int = 1 << 24,
        http2_max_frame_size: int = 16384,
        http2_max_header_list_size: int | None = None,
        http2_keep_alive_interval: float | None = None,
        ssl_keyfile: str | os.PathLike[str] | None = None,
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile_password: str | None = None,
        ssl_version: int = ssl.PROTOCOL_TLS_SERVER,
        ssl_cert_reqs: int = ssl.CERT_NONE,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
        ssl_ciphers: str = "TLSv1",
        headers: Sequence[tuple[str, str]] | None = None,
        factory: bool = False,
        app_dir: str | None = "",
        metrics: bool = False,
        metrics_host: str = "127.0.0.1",
        metrics_port: int = 9090,
        # uvicorn's names, accepted so that code written for uvicorn runs unchanged
        # (docs/uvicorn.md says what each one does here).
        http: str | type[Any] = "auto",
        h11_max_incomplete_event_size: int | None = None,
        timeout_notify: float = 30,
        callback_notify: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.uds = uds
        self.uds_mode = uds_mode
        self.uds_inode: int | None = None  # of the socket file bind_sockets() made
        self.fd = fd
        self.loop = _choice("loop", loop, LOOP_CHOICES)
        self.ws = _choice("ws", ws, WS_CHOICES)
        self.ws_max_size = ws_max_size
        self.ws_max_queue = ws_max_queue
        self.ws_ping_interval = ws_ping_interval
        self.ws_ping_timeout = ws_ping_timeout
        self.ws_per_message_deflate = ws_per_message_deflate
        self.lifespan = _choice("lifespan", lifespan, LIFESPAN_CHOICES)
        self.interface = _choice("interface", interface, INTERFACES)
        self.reload = reload
        self.reload_dirs = _string_list(reload_dirs)
        self.reload_includes = _string_list(reload_includes)
        self.reload_excludes = _string_list(reload_excludes)
        self.reload_delay = reload_delay
        self.timeout_worker_healthcheck = timeout_worker_healthcheck
        self.env_file = env_file
        self.log_config = log_config
        self.log_level = parse_log_level(log_level)
        self.access_log = access_log
        self.access_log_format = access_log_format or None
        self.log_format = _choice("log_format", log_format, LOG_FORMATS)
        self.use_colors = use_colors
        self.proxy_headers = proxy_headers
        self.server_header = server_header
        self.date_header = date_header
        self.root_path = root_path
        self.limit_concurrency = limit_concurrency
        self.limit_max_requests = limit_max_requests
        self.limit_max_requests_jitter = limit_max_requests_jitter
        self.backlog = backlog
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.timeout_header = timeout_header
        self.timeout_body = timeout_body
        self.limit_request_line = limit_request_line
        self.limit_request_fields = limit_request_fields
        self.limit_request_field_size = limit_request_field_size
        self.limit_request_body = limit_request_body
        self.http2 = http2
        self.http2_max_concurrent_streams = http2_max_concurrent_streams
        self.http2_initial_stream_window_size = http2_initial_stream_window_size
        self.http2_initial_connection_window_size = http2_initial_connection_window_size
        self.http2_max_frame_size = http2_max_frame_size
        self.http2_max_header_list_size = http2_max_header_list_size
        self.http2_keep_alive_interval = http2_keep_alive_interval
        self.ssl_keyfile = ssl_keyfile
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile_password = ssl_keyfile_password
        self.ssl_version = ssl_version
        self.ssl_cert_reqs = ssl_cert_reqs
        self.ssl_ca_certs = ssl_ca_certs
        self.ssl_ciphers = ssl_ciphers
        self.headers = [validate_header(name, value) for name, value in headers or []]
        self.encoded_headers = encode_headers(self.headers)
        self.factory = factory
        self.app_dir = app_dir
        # Prometheus metrics on their own listener (esg.metrics); never on the app's port.
        self.metrics = metrics
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.http = http
        self.h11_max_incomplete_event_size = h11_max_incomplete_event_size
        # h11 buffers at most this many bytes of an incomplete event, which for a request is
        # its head: the same bound as esg's whole-head limit (431 when exceeded).  It can lower
        # that limit, not raise it: see _head_limit.
        self.limit_request_head = DEFAULT_LIMIT_REQUEST_HEAD
        # uvicorn's gunicorn worker passes these for its heartbeat; esg's ticker honours them.
        self.timeout_notify = timeout_notify
        self.callback_notify = callback_notify
        self.ssl: ssl.SSLContext | None = None
        self.loaded = False

        # Logging first, so that errors found below are reported through it.
        self.configure_logging()
        if env_file is not None:
            load_env_file(env_file)
        # Read after the env file, which may be what sets them.
        self.workers = workers if workers is not None else _workers_from_env()
        self.forwarded_allow_ips = parse_forwarded_allow_ips(forwarded_allow_ips)
        if h11_max_incomplete_event_size is not None:
            self.limit_request_head = _head_limit(h11_max_incomplete_event_size)
        _warn_about_http_choice(http)

    # -- derived settings ------------------------------------------------------------------

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_keyfile or self.ssl_certfile)

    @property
    def asgi_version(self) -> str:
        return "2.0" if self.interface == "asgi2" else "3.0"

    @property
    def use_subprocess(self) -> bool:
        """True when the app must be served from child processes (reload or several workers)."""
        return bool(self.reload or self.workers > 1)

    # -- logging ---------------------------------------------------------------------------

    def configure_logging(self) -> None:
        """Apply ``log_config`` with ``log_format``, ``access_log_format``, ``use_colors``,
        ``log_level`` and ``access_log`` (esg.log_config)."""
        configure_logging(
            self.log_config,
            log_format=self.log_format,
            access_log_format=self.access_log_format,
            use_colors=self.use_colors,
            log_level=self.log_level,
            access_log=self.access_log,
        )

    # -- event loop ------------------------------------------------------------------------

    def setup_event_loop(self) -> None:
        """Install the event loop policy for ``loop``; "none" leaves the current one alone."""
        if self.loop == "none":
            return
        use_uvloop = self.loop_factory() is not None
        with warnings.catch_warnings():
            # Python 3.14 deprecates policies; they still work, and asyncio.run() uses them.
            warnings.simplefilter("ignore", DeprecationWarning)
            policy: asyncio.AbstractEventLoopPolicy
            if use_uvloop:
                import uvloop

                policy = uvloop.EventLoopPolicy()
            else:
                policy = asyncio.DefaultEventLoopPolicy()
            asyncio.set_event_loop_policy(policy)

    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """A ``loop_factory`` for ``asyncio.Runner``; None means asyncio's default loop."""
        if self.loop in ("asyncio", "none"):
            return None
        try:
            import uvloop
        except ImportError:
            if self.loop == "uvloop":
                fail("--loop uvloop needs the uvloop package: pip install uvloop")
            return None
        return uvloop.new_event_loop

    # -- loading the app -------------------------------------------------------------------

    def load(self) -> None:
        """Import and wrap the app, pick the lifespan class, build the TLS context. Idempotent."""
        if self.loaded:
            return
        if self.is_ssl:
            self.ssl = self._create_ssl_context()
        self._insert_app_dir()
        app = self._import_app()
        app = self._apply_factory(app)
        self.interface = self._resolve_interface(app)
        self.loaded_app = self._wrap_app(app)
        # Proxy headers are applied by the connection itself, not by a middleware layer: it
        # decides once per connection whether the peer is a trusted proxy.
        self.proxy_trust: Any = None
        if self.proxy_headers:
            from esg.middleware.proxy_headers import TrustedHosts

            self.proxy_trust = TrustedHosts(self.forwarded_allow_ips)
        self.lifespan_class = self._pick_lifespan_class()
        self._check_websocket_settings()
        self._check_http2_settings()
        self.loaded = True

    def _check_websocket_settings(self) -> None:
        if self.ws in ("websockets", "wsproto"):
            from esg.websocket.engine import available

            if not available(self.ws):
                fail(f"--ws {self.ws} needs the '{self.ws}' package: pip install {self.ws}")
        if self.ws_max_size < 1:
            fail(f"--ws-max-size must be at least 1 byte; got {self.ws_max_size}")
        if self.ws_max_queue < 1:
            fail(f"--ws-max-queue must be at least 1 message; got {self.ws_max_queue}")

    def _check_http2_settings(self) -> None:
        """The --http2-* bounds of RFC 9113 (sections 6.5.2 and 6.9.1), one line each."""
        window = (1 << 31) - 1
        checks = [
            ("--http2-max-concurrent-streams", self.http2_max_concurrent_streams, 1, window),
            (
                "--http2-initial-stream-window-size",
                self.http2_initial_stream_window_size,
                1,
                window,
            ),
            (
                "--http2-initial-connection-window-size",
                self.http2_initial_connection_window_size,
                65535,
                window,
            ),
            ("--http2-max-frame-size", self.http2_max_frame_size, 16384, (1 << 24) - 1),
        ]
        if self.http2_max_header_list_size is not None:
            checks.append(
                ("--http2-max-header-list-size", self.http2_max_header_list_size, 1, window)
            )
        for option, value, low, high in checks:
            if not low <= value <= high:
                fail(f"{option} must be from {low} to {high}; got {value}")
        interval = self.http2_keep_alive_interval
        if interval is not None and interval < 0:
            fail(f"--http2-keep-alive-interval can't be negative; got {interval}")

    def _create_ssl_context(self) -> ssl.SSLContext:
        if not self.ssl_certfile:
            fail("--ssl-keyfile was given without --ssl-certfile; TLS needs a certificate.")
        try:
            return create_ssl_context(
                certfile=self.ssl_certfile,
                keyfile=self.ssl_keyfile,
                password=self.ssl_keyfile_password,
                ssl_version=self.ssl_version,
                cert_reqs=self.ssl_cert_reqs,
                ca_certs=self.ssl_ca_certs,
                ciphers=self.ssl_ciphers,
                http2=self.http2,
            )
        except TLSConfigError as exc:
            fail(str(exc), exc)

    def _insert_app_dir(self) -> None:
        if not self.app_dir:
            return
        path = os.path.abspath(self.app_dir)
        if path not in sys.path:
            sys.path.insert(0, path)

    def _import_app(self) -> Any:
        try:
            app = import_from_string(self.app)
        except ImportFromStringError as exc:
            fail(f"Error loading ASGI app. {exc}", exc)
        if not callable(app):
            fail(f'Error loading ASGI app. "{self.app}" is a {type(app).__name__}, not a callable.')
        return app

    def _apply_factory(self, app: Callable[..., Any]) -> Callable[..., Any]:
        if not self.factory:
            if not _looks_like_factory(app):
                return app
            logger.warning(
                '"%s" looks like an application factory (it takes no arguments); calling it. '
                "Pass --factory to say so and silence this warning.",
                _describe(self.app),
            )
        try:
            product = app()
        except TypeError as exc:
            fail(f'Error loading ASGI app factory "{_describe(self.app)}": {exc}', exc)
        if inspect.iscoroutine(product):
            product.close()
            fail(f'The factory "{_describe(self.app)}" is async; it must be a plain function.')
        if not callable(product):
            fail(
                f'The factory "{_describe(self.app)}" returned a {type(product).__name__}, '
                "not an ASGI app."
            )
        return product  # type: ignore[no-any-return]

    def _resolve_interface(self, app: Callable[..., Any]) -> str:
        if self.interface != "auto":
            return self.interface
        return "asgi3" if is_asgi3(app) else "asgi2"

    def _wrap_app(self, app: Callable[..., Any]) -> ASGIApp:
        if self.interface == "wsgi":
            from esg.middleware.wsgi import WSGIMiddleware

            app = WSGIMiddleware(app)
        elif self.interface == "asgi2":
            from esg.middleware.asgi2 import ASGI2Middleware

            app = ASGI2Middleware(app)
        if logging.getLogger("esg.error").getEffectiveLevel() <= TRACE_LOG_LEVEL:
            from esg.middleware.message_logger import MessageLoggerMiddleware

            app = MessageLoggerMiddleware(app)
        return app

    def _pick_lifespan_class(self) -> type[Any]:
        if self.lifespan == "off":
            from esg.lifespan.off import LifespanOff

            return LifespanOff
        from esg.lifespan.on import LifespanOn

        return LifespanOn

    # -- sockets ---------------------------------------------------------------------------

    def bind_sockets(self) -> list[socket.socket]:
        """The listening sockets, already listening (esg.sockets.listening_sockets).

        One socket, except with ``host=None``: all interfaces, one socket per address family.
        """
        sockets = listening_sockets(
            self.host,
            self.port,
            uds=self.uds,
            uds_mode=self.uds_mode,
            fd=self.fd,
            backlog=self.backlog,
        )
        if self.uds:
            self.uds_inode = os.stat(self.uds).st_ino
        return sockets

    def bind_socket(self) -> socket.socket:
        """The listening socket of a configuration that has one (any but ``host=None``)."""
        if self.host is None and not self.uds and self.fd is None:
            raise ValueError("host=None listens on several sockets: use bind_sockets()")
        [sock] = self.bind_sockets()
        return sock


# -- settings parsing ----------------------------------------------------------------------


def _choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _string_list(value: Sequence[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def parse_log_level(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return LOG_LEVELS[value.lower()]
    except KeyError:
        raise ValueError(
            f"log_level must be one of {', '.join(LOG_LEVELS)} or an int; got {value!r}"
        ) from None


def parse_forwarded_allow_ips(value: Sequence[str] | str | None) -> list[str]:
    """The trusted proxy addresses: a list, a comma-separated string, or $FORWARDED_ALLOW_IPS."""
    if value is None:
        value = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items if item.strip()]


def _warn_about_http_choice(http: str | type[Any]) -> None:
    """One line when ``--http`` asks for an HTTP implementation esg doesn't have.

    uvicorn chooses between h11 and httptools; esg has one parser of its own, so any choice
    serves the same way.  Not an error: command lines written for uvicorn must keep working.
    """
    if http == "auto":
        return
    shown = http if isinstance(http, str) else getattr(http, "__qualname__", repr(http))
    logger.warning(
        "--http %s is ignored: esg has a single HTTP/1.1 implementation, its own parser.", shown
    )


def _head_limit(h11_max_incomplete_event_size: int) -> int:
    """esg's request head limit for uvicorn's ``--h11-max-incomplete-event-size``.

    At most esg's own 64 KiB: a connection stops reading once that much waits unparsed
    (esg.http.protocol.HIGH_WATER), so a longer head could never complete.
    """
    size = h11_max_incomplete_event_size
    if size < 1:
        fail(f"--h11-max-incomplete-event-size must be at least 1 byte; got {size}")
    if size > DEFAULT_LIMIT_REQUEST_HEAD:
        logger.warning(
            "--h11-max-incomplete-event-size %d is above esg's request head limit; "
            "heads stay limited to %d bytes.",
            size,
            DEFAULT_LIMIT_REQUEST_HEAD,
        )
        return DEFAULT_LIMIT_REQUEST_HEAD
    return size


def _workers_from_env() -> int:
    raw = os.environ.get("WEB_CONCURRENCY")
    if not raw:
        return 1
    try:
        workers = int(raw)
    except ValueError:
        fail(f"WEB_CONCURRENCY must be a whole number of worker processes; got {raw!r}.")
    return max(workers, 1)


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` (from --header) as a validated ``(name, value)`` pair."""
    name, colon, value = text.partition(":")
    if not colon:
        raise ValueError(f"{text!r} is not a header; write it as Name:Value")
    return validate_header(name.strip(), value.strip())


def validate_header(name: str, value: str) -> tuple[str, str]:
    """Refuse what would corrupt every response: a non-token name or a CR/LF/NUL in a value."""
    if not name or not set(name) <= _TOKEN_CHARS:
        raise ValueError(f"{name!r} is not a valid header name")
    if any(char in value for char in "\r\n\0"):
        raise ValueError(f"the value of header {name!r} contains CR, LF or NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"the value of header {name!r} is not latin-1 text") from None
    return name, value


def encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def load_env_file(path: str | os.PathLike[str]) -> None:
    if not os.path.isfile(path):
        fail(f'Environment file "{os.fspath(path)}" does not exist or is not a file.')
    try:
        from dotenv import load_dotenv
    except ImportError:
        fail("--env-file needs the python-dotenv package: pip install python-dotenv")
    # Variables already in the environment win, so the shell can override the file.
    load_dotenv(dotenv_path=path, override=False)


# -- app inspection ------------------------------------------------------------------------


def is_asgi3(app: Callable[..., Any]) -> bool:
    """ASGI 3 apps are coroutine functions ``(scope, receive, send)``; ASGI 2 apps take
    ``(scope)`` and return the coroutine function.

    A class used as the app is instantiated per connection: ASGI 3 when its instances are
    awaitable (``App(scope, receive, send)`` is awaited), ASGI 2 otherwise.
    """
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.iscoroutinefunction(app):
        return True
    # An instance: what matters is the __call__ its class defines.
    return inspect.iscoroutinefunction(type(app).__call__)


def _looks_like_factory(app: Callable[..., Any]) -> bool:
    """A plain function or class that can be called with no arguments is a factory, not an app:
    every ASGI/WSGI app needs at least one argument."""
    is_plain = inspect.isroutine(app) or inspect.isclass(app) or isinstance(app, functools.partial)
    if not is_plain or is_asgi3(app):
        return False
    try:
        inspect.signature(app).bind()
    except (TypeError, ValueError):
        return False
    return True


def _describe(app: object) -> str:
    return app if isinstance(app, str) else getattr(app, "__qualname__", repr(app))
