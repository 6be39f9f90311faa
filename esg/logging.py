"""Log formatting for esg: the TRACE level, coloured level names and the access log line.

Loggers: ``esg.error`` (server messages, to stderr) and ``esg.access`` (one line per response,
to stdout), both children of ``esg``.  The server emits access records as::

    logger.info('%s - "%s %s HTTP/%s" %d', client_addr, method, full_path, http_version,
                status_code, extra={"duration_ms": 0.42})

Request targets, methods and (behind a proxy) client addresses come from the network, so
``AccessFormatter`` escapes every non-printable character before the line reaches a terminal
(``esg.escaping``); the server escapes them itself too, for formatters of a ``--log-config``.
``DefaultFormatter`` escapes messages and tracebacks line by line: an app's exception text may
quote a decoded path (``/%1b[2J`` is ESC [ 2 J), and only the newlines between lines stay.

Access records also carry, as ``extra`` attributes: ``duration_ms`` (float), ``response_bytes``
(body bytes sent, or None when unknown), ``request_headers`` and ``response_headers`` (the
ASGI header lists, raw bytes; the response's are the app's own, without esg's Date, Server or
framing headers).  ``--access-log-format`` (a template of ``esg.access_format``) turns them into
named fields, and ``--log-format json`` (``JsonFormatter``, ``JsonAccessFormatter``) into one
JSON object a line.  Applying a logging configuration (esg's, or a user's ``--log-config``) is
esg.log_config's job.
"""

from __future__ import annotations

import copy
import http
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from esg.access_format import MISSING, AccessFields, AccessLogFormat, is_access_record, iso_time
from esg.escaping import escape_field, escape_for_log, escape_lines

# escape_for_log and escape_lines live in esg.escaping; the connection and the WebSocket session
# import escape_for_log from here, as code written before the split may.
__all__ = [
    "ACCESS_FORMAT",
    "DEFAULT_FORMAT",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LOGGING_CONFIG",
    "TRACE_LOG_LEVEL",
    "AccessFormatter",
    "DefaultFormatter",
    "JsonAccessFormatter",
    "JsonFormatter",
    "colorize_level",
    "escape_for_log",
    "escape_lines",
    "logging_config",
    "show_process_id",
]

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


_show_process_id = False


def show_process_id() -> None:
    """Prefix esg's own log lines with ``[pid]``: several processes share the terminal."""
    global _show_process_id
    _show_process_id = True


def _process_label(record: logging.LogRecord) -> str:
    return f" [{record.process}]" if _show_process_id else ""


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
        record.__dict__["levelprefix"] = f"{levelname}:{padding}{_process_label(record)}"
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

    ``access_format`` (``--access-log-format``) replaces the whole line of the server's access
    records with an ``AccessLogFormat`` template; other records keep ``fmt``.
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
        access_format: str | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate, defaults=defaults, use_colors=use_colors)
        self._appends_duration = "duration" not in self._fmt if self._fmt else True
        self.access_format = AccessLogFormat(access_format) if access_format else None

    def _default_use_colors(self) -> bool:
        return _stream_is_tty(sys.stdout)

    def formatMessage(self, record: logging.LogRecord) -> str:
        if self.access_format is not None and is_access_record(record):
            return self.access_format.render(record)
        line = super().formatMessage(record)
        duration = _duration_text(record)
        if duration and self._appends_duration:
            line = f"{line} {duration}"
        return line

    def add_fields(self, record: logging.LogRecord) -> None:
        record.__dict__["duration"] = _duration_text(record)
        if not is_access_record(record):
            # Not a record from the server's access path: leave the fields empty so custom
            # formats don't crash, and let the message speak for itself.
            record.__dict__.setdefault("client_addr", "-")
            record.__dict__.setdefault("request_line", "")
            record.__dict__.setdefault("status_code", "")
            return
        client_addr, method, full_path, http_version, status_code = record.args  # type: ignore[misc]
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


# -- --log-format json -----------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``{"time", "level", "logger", "pid", "message"}``, plus
    ``"exc_info"`` (the traceback text) and ``"stack_info"`` when the record has them.

    ``json.dumps`` with ``ensure_ascii`` writes every control and non-ASCII character as a
    ``\\uXXXX`` escape, so no input can break the line or reach a terminal raw.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        use_colors: bool | None = None,  # accepted like esg's other formatters; JSON has none
    ) -> None:
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": self.json_message(record),
        }
        self.add_json_fields(record, data)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=True, default=str)

    def json_message(self, record: logging.LogRecord) -> str:
        return record.getMessage()

    def add_json_fields(self, record: logging.LogRecord, data: dict[str, Any]) -> None:
        """Hook for subclasses: add fields to the record's JSON object."""


class JsonAccessFormatter(JsonFormatter):
    """JSON access records: the common fields, and for the server's access records
    ``client``, ``method``, ``path``, ``query``, ``http_version``, ``status``, ``bytes``
    (null when unknown) and ``duration_ms``.  ``"message"`` is the access line: the
    ``access_format`` template's when one is given, whose ``req[...]``/``res[...]`` headers
    are added as ``"request_headers"``/``"response_headers"`` objects (null when absent).
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
        access_format: str | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate, defaults=defaults, use_colors=use_colors)
        self.access_format = AccessLogFormat(access_format) if access_format else None

    def json_message(self, record: logging.LogRecord) -> str:
        if not is_access_record(record):
            return record.getMessage()
        if self.access_format is not None:
            return self.access_format.render(record)
        fields = AccessFields(record, escape_field)
        status = fields.status_phrase()
        status = f"{fields.status()} {status}" if status is not MISSING else str(fields.status())
        return f'{fields.client()} - "{fields.request_line()}" {status}'

    def add_json_fields(self, record: logging.LogRecord, data: dict[str, Any]) -> None:
        if not is_access_record(record):
            return
        fields = AccessFields(record, str)
        path, _, query = fields.target.partition("?")
        duration = getattr(record, "duration_ms", None)
        sent = getattr(record, "response_bytes", None)
        data.update(
            client=fields.client_text,
            method=fields.method_text,
            path=path,
            query=f"?{query}" if query else "",
            http_version=fields.version,
            status=fields.code,
            bytes=sent if isinstance(sent, int) else None,
            duration_ms=round(duration, 3) if isinstance(duration, int | float) else None,
        )
        access_format = self.access_format
        if access_format is None:
            return
        if access_format.request_headers:
            headers = fields.request_headers()
            data["request_headers"] = {
                name: headers.get(name) for name in access_format.request_headers
            }
        if access_format.response_headers:
            headers = fields.response_headers()
            data["response_headers"] = {
                name: headers.get(name) for name in access_format.response_headers
            }


# -- the default configuration, with --log-format/--access-log-format ---------------------------

LOG_FORMATS = ("text", "json")


def logging_config(
    log_format: str = "text", access_log_format: str | None = None
) -> dict[str, Any]:
    """``LOGGING_CONFIG`` with the formatters of ``--log-format`` and ``--access-log-format``."""
    config = copy.deepcopy(LOGGING_CONFIG)
    formatters = config["formatters"]
    if log_format == "json":
        formatters["default"] = {"()": "esg.logging.JsonFormatter"}
        formatters["access"] = {"()": "esg.logging.JsonAccessFormatter"}
    if access_log_format:
        formatters["access"]["access_format"] = access_log_format
    return config
