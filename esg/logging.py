"""Log formatting for esg: the TRACE level, coloured level names and the access log line.

Loggers: ``esg.error`` (server messages, to stderr) and ``esg.access`` (one line per response,
to stdout), both children of ``esg``.  The server emits access records as::

    logger.info('%s - "%s %s HTTP/%s" %d', client_addr, method, full_path, http_version,
                status_code, extra={"duration_ms": 0.42})

Request targets, methods and (behind a proxy) client addresses come from the network, so
``AccessFormatter`` escapes every non-printable character before the line reaches a terminal
(``escape_for_log``); the server escapes them itself too, for formatters of a ``--log-config``.
``DefaultFormatter`` escapes messages and tracebacks line by line: an app's exception text may
quote a decoded path (``/%1b[2J`` is ESC [ 2 J), and only the newlines between lines stay.
"""

from __future__ import annotations

import copy
import http
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

TRACE_LOG_LEVEL = 5
logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}

_RESET = "\033[0m"
_LEVEL_COLORS: dict[int, str] = {
    TRACE_LOG_LEVEL: "\033[34m",  # blue
    logging.DEBUG: "\033[36m",  # cyan
    logging.INFO: "\033[32m",  # green
    logging.WARNING: "\033[33m",  # yellow
    logging.ERROR: "\033[31m",  # red
    logging.CRITICAL: "\033[91m",  # bright red
}
_STATUS_CLASS_COLORS: dict[int, str] = {
    1: "\033[97m",  # informational: bright white
    2: "\033[32m",  # success: green
    3: "\033[33m",  # redirect: yellow
    4: "\033[31m",  # client error: red
    5: "\033[91m",  # server error: bright red
}

DEFAULT_FORMAT = "%(levelprefix)s %(message)s"
ACCESS_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "esg.logging.DefaultFormatter",
            "fmt": DEFAULT_FORMAT,
            "use_colors": None,
        },
        "access": {"()": "esg.logging.AccessFormatter", "fmt": ACCESS_FORMAT},
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "esg": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "esg.error": {"level": "INFO"},
        "esg.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def escape_for_log(text: str) -> str:
    """``text`` with every non-printable character written as ``\\xNN`` (or ``\\uNNNN``).

    Only non-printables change, so escaping twice gives the same result as escaping once.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape_char(char) for char in text)


def escape_lines(text: str) -> str:
    """``text`` with each line escaped by ``escape_for_log``; only the newlines (LF) stay."""
    if text.isprintable():
        return text
    return "\n".join(escape_for_log(line) for line in text.split("\n"))


def _escape_char(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _stream_is_tty(stream: TextIO | None) -> bool:
    # NO_COLOR (https://no-color.org) lets a user opt out without touching esg's flags.
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def colorize_level(levelname: str, levelno: int) -> str:
    color = _LEVEL_COLORS.get(levelno)
    return f"{color}{levelname}{_RESET}" if color else levelname


class DefaultFormatter(logging.Formatter):
    """Adds ``%(levelprefix)s``: ``"INFO:    "`` padded to line messages up, coloured on a tty."""

    # Positional parameters match logging.Formatter, so logging.config's "class" form works.
    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        use_colors: bool | None = None,
    ) -> None:
        self.use_colors = self._default_use_colors() if use_colors is None else use_colors
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)

    def _default_use_colors(self) -> bool:
        return _stream_is_tty(sys.stderr)

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Work on a copy: other handlers may format the same record without colours.
        record = copy.copy(record)
        padding = " " * max(0, 8 - len(record.levelname))
        levelname = record.levelname
        if self.use_colors:
            levelname = colorize_level(levelname, record.levelno)
        record.__dict__["levelprefix"] = f"{levelname}:{padding}"
        record.message = escape_lines(record.message)
        self.add_fields(record)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return escape_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return escape_lines(super().formatStack(stack_info))

    def add_fields(self, record: logging.LogRecord) -> None:
        """Hook for subclasses to add attributes to the (copied) record."""


class AccessFormatter(DefaultFormatter):
    """Formats the server's access records: ``127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK 0.42ms``.

    Fields for custom formats: ``client_addr``, ``request_line``, ``status_code`` ("200 OK",
    coloured on a tty) and ``duration`` ("0.42ms", or "" when the server gave none).  When
    the format has no ``duration`` field, the duration is appended at the end of the line.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        use_colors: bool | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate, defaults=defaults, use_colors=use_colors)
        self._appends_duration = "duration" not in self._fmt if self._fmt else True

    def _default_use_colors(self) -> bool:
        return _stream_is_tty(sys.stdout)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        duration = _duration_text(record)
        if duration and self._appends_duration:
            line = f"{line} {duration}"
        return line

    def add_fields(self, record: logging.LogRecord) -> None:
        record.__dict__["duration"] = _duration_text(record)
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            # Not a record from the server's access path: leave the fields empty so custom
            # formats don't crash, and let the message speak for itself.
            record.__dict__.setdefault("client_addr", "-")
            record.__dict__.setdefault("request_line", "")
            record.__dict__.setdefault("status_code", "")
            return
        client_addr, method, full_path, http_version, status_code = args
        client = escape_for_log(str(client_addr))
        request_line = escape_for_log(f"{method} {full_path} HTTP/{http_version}")
        status = self.status_text(status_code)
        record.__dict__.update(client_addr=client, request_line=request_line, status_code=status)
        # %(message)s must be the escaped line too, for formats that use it.
        record.msg = '%s - "%s" %s'
        record.args = (client, request_line, status)
        record.message = record.getMessage()

    def status_text(self, status_code: object) -> str:
        try:
            code = int(status_code)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return escape_for_log(str(status_code))
        try:
            text = f"{code} {http.HTTPStatus(code).phrase}"
        except ValueError:
            text = str(code)
        if self.use_colors:
            color = _STATUS_CLASS_COLORS.get(code // 100)
            if color:
                text = f"{color}{text}{_RESET}"
        return text


def _duration_text(record: logging.LogRecord) -> str:
    duration = getattr(record, "duration_ms", None)
    if not isinstance(duration, int | float):
        return ""
    return f"{duration:.2f}ms"
