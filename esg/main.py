"""The ``esg`` command line and ``esg.run()``.

The options are a superset of the seed's (same names and defaults), so ``esg module:app``
accepts what ``uvicorn module:app`` does.  Every option can also come from an ``ESG_*``
environment variable (click's ``auto_envvar_prefix``); a flag on the command line wins.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable
from typing import Any

import click

from esg import __version__, _compiled
from esg.access_format import check_access_log_format
from esg.config import (
    INTERFACES,
    LIFESPAN_CHOICES,
    LOG_FORMATS,
    LOG_LEVELS,
    WS_CHOICES,
    Config,
    parse_header,
)
from esg.sockets import remove_unix_socket
from esg.user_errors import fail

# "none" stays out of the CLI: it means "leave the loop alone", which only embedding code needs.
CLI_LOOP_CHOICES = ("auto", "asyncio", "uvloop")
EPILOG = (
    "Every option can also be set with an environment variable: ESG_ followed by the option "
    "name in capitals with dashes turned into underscores, e.g. ESG_PORT=9000, "
    "ESG_ACCESS_LOG=false, ESG_SSL_KEYFILE_PASSWORD=secret. ESG_APP gives APP. "
    "Repeatable options take several values separated by spaces (ESG_RELOAD_DIR), except "
    "ESG_HEADER, whose headers are separated by newlines. "
    "An option given on the command line wins over its variable. "
    "uvicorn's --http and --h11-max-incomplete-event-size are accepted too (README: "
    '"Coming from uvicorn").'
)
# Options whose command-line name differs from the Config keyword.
_CONFIG_NAMES = {
    "reload_dir": "reload_dirs",
    "reload_include": "reload_includes",
    "reload_exclude": "reload_excludes",
    "header": "headers",
}


class OneLineUsageError(click.ClickException):
    """A usage mistake reported as a single "Error: ..." line (exit status 2)."""

    exit_code = 2


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(_compiled.describe(__version__))
    ctx.exit()


def _parse_headers(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    headers = []
    for text in values:
        try:
            headers.append(parse_header(text))
        except ValueError as exc:
            raise OneLineUsageError(f"Invalid value for '--header': {exc}.") from None
    return headers


def _check_access_log_format(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    try:
        check_access_log_format(value)
    except ValueError as exc:
        raise OneLineUsageError(f"Invalid value for '--access-log-format': {exc}.") from None
    return value or None


def _parse_octal_mode(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        mode = int(value.removeprefix("0o"), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise OneLineUsageError(
            f"Invalid value for '--uds-mode': {value!r} is not an octal mode such as 660."
        )
    return mode


class HeaderLines(click.ParamType):  # type: ignore[type-arg]
    """``--header`` values; in ``ESG_HEADER`` several headers are separated by newlines.

    Click splits a repeatable option's environment variable on whitespace by default, which
    would cut ``X-A: some value`` apart.
    """

    name = "text"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return str(value)


@click.command(
    context_settings={"auto_envvar_prefix": "ESG", "max_content_width": 100},
    epilog=EPILOG,
)
@click.argument("app", envvar="ESG_APP")
@click.option(
    "--host",
    type=str,
    default="127.0.0.1",
    show_default=True,
    help="Host or IP address to listen on.",
)
@click.option("--port", type=int, default=8000, show_default=True, help="TCP port to listen on.")
@click.option(
    "--uds",
    type=str,
    default=None,
    help="Listen on this UNIX domain socket path instead of host/port.",
)
@click.option(
    "--uds-mode",
    type=str,
    default="666",
    show_default=True,
    callback=_parse_octal_mode,
    help="Permissions of the --uds socket file, in octal.",
)
@click.option(
    "--fd",
    type=int,
    default=None,
    help="Serve on an already-open listening socket with this file descriptor.",
)
@click.option(
    "--reload",
    is_flag=True,
    default=False,
    help="Restart the server when source files change (development only).",
)
@click.option(
    "--reload-dir",
    type=click.Path(exists=True),
    multiple=True,
    help="Directory to watch for --reload (repeatable). Defaults to the current working directory.",
)
@click.option(
    "--reload-include",
    type=str,
    multiple=True,
    help="Glob of files that trigger a reload (repeatable). '*.py' is watched by "
    "default; exclude it with --reload-exclude.",
)
@click.option(
    "--reload-exclude",
    type=str,
    multiple=True,
    help="Glob of files that never trigger a reload (repeatable). '.*, .py[cod], "
    ".sw.*, ~*' are excluded by default; re-include them with --reload-include.",
)
@click.option(
    "--reload-delay",
    type=float,
    default=0.25,
    show_default=True,
    help="Seconds to wait between checks for changed files.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="How many worker processes to run. Defaults to $WEB_CONCURRENCY, or 1. "
    "Cannot be combined with --reload.",
)
@click.option(
    "--timeout-worker-healthcheck",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds a worker has to answer the supervisor's health check before it is killed "
    "and replaced; 0 turns the check off.",
)
@click.option(
    "--loop",
    type=click.Choice(CLI_LOOP_CHOICES),
    default="auto",
    show_default=True,
    help="Event loop to use; 'auto' picks uvloop when it is installed.",
)
@click.option(
    "--ws",
    type=click.Choice(WS_CHOICES),
    default="auto",
    show_default=True,
    help="WebSocket implementation: 'auto' is esg's own; 'none' serves upgrade requests as "
    "plain HTTP.",
)
@click.option(
    "--ws-max-size",
    type=int,
    default=16777216,
    show_default=True,
    help="Largest WebSocket message accepted, in bytes.",
)
@click.option(
    "--ws-max-queue",
    type=int,
    default=32,
    show_default=True,
    help="How many incoming WebSocket messages may wait for the app before reading pauses.",
)
@click.option(
    "--ws-ping-interval",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds between WebSocket keep-alive pings; 0 turns them off.",
)
@click.option(
    "--ws-ping-timeout",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds to wait for a ping's answer before closing the WebSocket.",
)
@click.option(
    "--ws-per-message-deflate/--no-ws-per-message-deflate",
    default=True,
    help="Accept WebSocket compression (permessage-deflate) when the client offers it.  "
    "[default: on]",
)
@click.option(
    "--lifespan",
    type=click.Choice(LIFESPAN_CHOICES),
    default="auto",
    show_default=True,
    help="Lifespan events: 'on' requires the app to support them, 'auto' tolerates "
    "apps that don't, 'off' never sends them.",
)
@click.option(
    "--interface",
    type=click.Choice(INTERFACES),
    default="auto",
    show_default=True,
    help="The app's calling convention: ASGI 3, ASGI 2 or WSGI. WSGI apps need 'wsgi' explicitly.",
)
@click.option(
    "--env-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="PATH",
    help="Load environment variables from this .env file (needs python-dotenv).",
)
@click.option(
    "--log-config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="PATH",
    help="Logging configuration file: .ini, .json or .yaml/.yml (YAML needs PyYAML).",
)
@click.option(
    "--log-level",
    type=click.Choice(list(LOG_LEVELS)),
    default=None,
    help="Minimum level of esg's log messages.  [default: info]",
)
@click.option(
    "--access-log/--no-access-log", default=True, help="Log (or don't) one line per response."
)
@click.option(
    "--access-log-format",
    type=str,
    default=None,
    metavar="FORMAT",
    help="The access log line, with {field} placeholders: client, client_host, method, path, "
    "query, request_line, http_version, status, status_phrase, bytes, duration_ms, "
    "duration_us, pid, worker, time, req[Header-Name], res[Header-Name]; e.g. "
    "'{client} \"{request_line}\" {status} {bytes} {duration_ms}ms'. Format specs work "
    "({duration_ms:.3f}); {{ and }} are literal braces. Not applied with --log-config.",
    callback=_check_access_log_format,
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="'json' writes one JSON object per line on the error and the access log. Not "
    "applied with --log-config.",
)
@click.option(
    "--use-colors/--no-use-colors",
    default=None,
    help="Force colours in log output on or off (default: on for terminals).",
)
@click.option(
    "--proxy-headers/--no-proxy-headers",
    default=True,
    help="Trust (or ignore) X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Port "
    "from --forwarded-allow-ips for the client address and scheme.",
)
@click.option(
    "--server-header/--no-server-header",
    default=True,
    help="Send (or don't) the default 'server: esg' response header.",
)
@click.option(
    "--date-header/--no-date-header",
    default=True,
    help="Send (or don't) the default Date response header.",
)
@click.option(
    "--forwarded-allow-ips",
    type=str,
    default=None,
    help="Comma-separated IPs or networks of proxies to trust, or '*'. Defaults to "
    "$FORWARDED_ALLOW_IPS, or '127.0.0.1'.",
)
@click.option(
    "--root-path",
    type=str,
    default="",
    help="ASGI 'root_path' for an app mounted below a URL prefix by a proxy.",
)
@click.option(
    "--limit-concurrency",
    type=int,
    default=None,
    help=("Answer 503 (HTTP/2: refuse the stream) once this many connections or tasks are active."),
)
@click.option(
    "--backlog",
    type=int,
    default=2048,
    show_default=True,
    help="Length of the queue of connections waiting to be accepted.",
)
@click.option(
    "--limit-max-requests",
    type=int,
    default=None,
    help="Stop the process after serving this many requests; with --workers, the worker is "
    "replaced.",
)
@click.option(
    "--limit-max-requests-jitter",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Add a random 0..N to each process's --limit-max-requests, so workers don't restart "
    "together.",
)
@click.option(
    "--timeout-keep-alive",
    type=int,
    default=5,
    show_default=True,
    help="Seconds an idle keep-alive connection stays open.",
)
@click.option(
    "--timeout-graceful-shutdown",
    type=int,
    default=None,
    help="Seconds to let open requests finish on shutdown before cancelling them.",
)
@click.option(
    "--timeout-header",
    type=float,
    default=30.0,
    show_default=True,
    help=(
        "Seconds a client has to finish its TLS handshake, and to send a complete request head"
        " (from accept or the end of the previous response); then 408 or close."
    ),
)
@click.option(
    "--timeout-body",
    type=float,
    default=60.0,
    show_default=True,
    help=(
        "Seconds the app waits in receive() for more request body, and that a response may"
        " stay blocked on a client taking none of it; then close."
    ),
)
@click.option(
    "--limit-request-line",
    type=int,
    default=8190,
    show_default=True,
    help="Longest request line in bytes (longer: 414).",
)
@click.option(
    "--limit-request-fields",
    type=int,
    default=100,
    show_default=True,
    help="Most header fields in one request (more: 431).",
)
@click.option(
    "--limit-request-field-size",
    type=int,
    default=8190,
    show_default=True,
    help="Longest header field (name and value) in bytes (longer: 431).",
)
@click.option(
    "--limit-request-body",
    type=int,
    default=None,
    help="Largest request body in bytes (larger: 413). Unlimited by default.",
)
@click.option(
    "--http2/--no-http2",
    is_flag=True,
    default=True,
    show_default=True,
    help="Serve HTTP/2 too: with prior knowledge on the same port, and by ALPN over TLS.",
)
@click.option(
    "--http2-max-concurrent-streams",
    type=int,
    default=100,
    show_default=True,
    help="Most streams a client may have open at once on one HTTP/2 connection.",
)
@click.option(
    "--http2-initial-stream-window-size",
    type=int,
    default=1 << 20,
    show_default=True,
    help="HTTP/2 flow-control window of each stream's request body, in bytes.",
)
@click.option(
    "--http2-initial-connection-window-size",
    type=int,
    default=1 << 24,
    show_default=True,
    help="HTTP/2 flow-control window of a whole connection's request bodies, in bytes.",
)
@click.option(
    "--http2-max-frame-size",
    type=int,
    default=16384,
    show_default=True,
    help="Largest HTTP/2 frame payload esg accepts, in bytes (16384 to 16777215).",
)
@click.option(
    "--http2-max-header-list-size",
    type=int,
    default=None,
    help="Largest decoded HTTP/2 header list in bytes (larger: 431). Default: what "
    "--limit-request-fields and the head limit allow HTTP/1.1.",
)
@click.option(
    "--http2-keep-alive-interval",
    type=float,
    default=None,
    help="Seconds between HTTP/2 keep-alive PINGs; a connection that doesn't answer within one "
    "interval is closed. Off by default.",
)
@click.option("--ssl-keyfile", type=str, default=None, help="TLS private key file.")
@click.option(
    "--ssl-certfile", type=str, default=None, help="TLS certificate (chain) file; enables HTTPS."
)
@click.option(
    "--ssl-keyfile-password", type=str, default=None, help="Password of an encrypted --ssl-keyfile."
)
@click.option(
    "--ssl-version",
    type=int,
    default=int(ssl.PROTOCOL_TLS_SERVER),
    show_default=True,
    help="Protocol constant for ssl.SSLContext (see the ssl module).",
)
@click.option(
    "--ssl-cert-reqs",
    type=int,
    default=int(ssl.CERT_NONE),
    show_default=True,
    help="Client certificate policy: 0 none, 1 optional, 2 required (ssl.CERT_*).",
)
@click.option(
    "--ssl-ca-certs",
    type=str,
    default=None,
    help="CA certificates file used to verify client certificates.",
)
@click.option(
    "--ssl-ciphers",
    type=str,
    default="TLSv1",
    show_default=True,
    help="OpenSSL cipher list (see the ssl module).",
)
@click.option(
    "--header",
    type=HeaderLines(),
    multiple=True,
    callback=_parse_headers,
    help="Extra default response header as Name:Value (repeatable).",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    allow_from_autoenv=False,
    callback=_print_version,
    help="Print esg's version and exit.",
)
@click.option(
    "--app-dir",
    type=str,
    default=".",
    show_default=True,
    help="Directory to import APP from (put first on the module search path).",
)
@click.option(
    "--factory",
    is_flag=True,
    default=False,
    show_default=True,
    help="APP is a function that takes no arguments and returns the ASGI app.",
)
@click.option(
    "--metrics/--no-metrics",
    default=False,
    help="Serve Prometheus metrics on a separate listener (--metrics-host/--metrics-port), "
    "never on the app's port.  [default: off]",
)
@click.option(
    "--metrics-host",
    type=str,
    default="127.0.0.1",
    show_default=True,
    help="Host or IP address the --metrics listener binds to.",
)
@click.option(
    "--metrics-port",
    type=int,
    default=9090,
    show_default=True,
    help="TCP port of the --metrics listener.",
)
# uvicorn's options for its choice of HTTP parser, kept out of --help: they exist so that
# command lines written for uvicorn (Dockerfiles, Procfiles) run unchanged, and name parsers
# esg doesn't have.  The epilog says they are accepted; docs/uvicorn.md says what each one does.
@click.option("--http", type=str, default="auto", hidden=True)
@click.option("--h11-max-incomplete-event-size", type=int, default=None, hidden=True)
def main(**options: Any) -> None:
    """Serve the ASGI app APP, given as "module:attribute" (e.g. "example:app")."""
    if options["reload"] and (options["workers"] or 1) > 1:
        raise OneLineUsageError("--reload and --workers can't be combined; choose one.")
    run(**config_kwargs(options))


def config_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The parsed command line as keyword arguments for ``Config``."""
    kwargs = {_CONFIG_NAMES.get(name, name): value for name, value in options.items()}
    for name in ("reload_dirs", "reload_includes", "reload_excludes"):
        kwargs[name] = list(kwargs[name]) or None
    kwargs["headers"] = kwargs["headers"] or None
    if kwargs["log_config"] is None:
        # No --log-config means esg's own default, not "leave logging alone" (Config's None).
        del kwargs["log_config"]
    return kwargs


def run(app: str | Callable[..., Any], **kwargs: Any) -> None:
    """Serve ``app`` (an ASGI app, or "module:attribute") with the given ``Config`` settings.

    Blocks until the server stops; exits with status 3 when the server could not start.
    """
    config = Config(app, **kwargs)
    if config.reload and (kwargs.get("workers") or 1) > 1:
        fail("--reload and --workers can't be combined; choose one.")
    try:
        if config.use_subprocess:
            _run_supervised(config)
        else:
            _serve(config)
    except KeyboardInterrupt:
        # The Ctrl-C that stopped the server, handed back by Server.serve() to Python's default
        # handler once the graceful shutdown is over: the command line (and a script calling
        # esg.run(), as with uvicorn.run()) ends cleanly rather than with a traceback.
        pass


def _run_supervised(config: Config) -> None:
    """Serve from child processes: the reloader (``--reload``) or the workers' supervisor."""
    if not isinstance(config.app, str):
        fail("--reload and --workers need the app as an import string, e.g. 'module:app'.")
    if not hasattr(os, "fork"):
        fail("--reload and --workers need a system with fork(); run one process instead.")
    sockets = config.bind_sockets()
    try:
        if config.reload:
            from esg.supervisors.reload import Reloader

            code = Reloader(config, sockets).run()
        else:
            from esg.supervisors.multiprocess import Multiprocess

            code = Multiprocess(config, sockets).run()
    finally:
        if config.uds:
            remove_unix_socket(config.uds, config.uds_inode)
        for sock in sockets:
            sock.close()
    if code:
        sys.exit(code)


def _serve(config: Config) -> None:
    # Load before starting the server: a bad import string or TLS file stops us with one
    # line before any socket is bound.  Server.run() loads again, which is a no-op.
    config.setup_event_loop()
    config.load()
    from esg.server import Server

    server = Server(config)
    sockets = config.bind_sockets()
    try:
        server.run(sockets=sockets)
    finally:
        if config.uds:
            remove_unix_socket(config.uds, config.uds_inode)
        for sock in sockets:
            sock.close()
    if server.startup_failed:
        sys.exit(3)
