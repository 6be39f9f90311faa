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

Access records also carry, as ``extra`` attributes: ``duration_ms`` (float), ``response_bytes``
(body bytes sent, or None when unknown), ``request_headers`` and ``response_headers`` (the
ASGI header lists, raw bytes; the response's are the app's own, without esg's Date, Server or
framing headers).  ``--access-log-format`` (``AccessLogFormat``) turns them into named fields, and
``--log-format json`` (``JsonFormatter``, ``JsonAccessFormatter``) into one JSON object a line.
"""

from __future__ import annotations

import copy
import http
import json
import logging
import os
import re
import string
import sys
import time
from collections.abc import Callable, Mapping
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


_show_process_id = False


def show_process_id() -> None:
    """Prefix esg's own log lines with ``[pid]``: several processes share the terminal."""
    global _show_process_id
    _show_process_id = True


def _process_label(record: logging.LogRecord) -> str:
    return f" [{record.process}]" if _show_process_id else ""


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


# -- --access-log-format ---------------------------------------------------------------------
#
# Templates use str.format's syntax, ``{field}``: its grammar already has the indexing that
# ``{req[user-agent]}`` needs, takes format specs (``{duration_ms:.3f}``, ``{status:>3}``), and
# leaves ``%`` (frequent in URLs and in log formats of other tools) as plain text.

ACCESS_LOG_FIELDS: dict[str, str] = {
    "client": "client address as host:port (the forwarded client behind a trusted proxy)",
    "client_host": "client address without the port",
    "method": "request method",
    "path": "request path as sent (percent-encoded), with --root-path in front",
    "query": "query string with its leading '?', or '' when there is none",
    "request_line": 'method, target and version: "GET /a?b=1 HTTP/1.1"',
    "http_version": "1.1 or 1.0",
    "status": "response status code",
    "status_phrase": "the status's reason phrase (OK, Not Found)",
    "bytes": "response body bytes sent (without chunked framing)",
    "duration_ms": "from the request head to the end of the response, in ms (2 decimals)",
    "duration_us": "the same in whole microseconds",
    "pid": "id of the process that served the request",
    "worker": "same as pid",
    "time": "when the response ended: ISO 8601 UTC with milliseconds",
    "req[NAME]": "request header NAME (any case); several are joined with ', '",
    "res[NAME]": "response header NAME as the app set it",
}
_HEADER_FIELD = re.compile(r"(req|res)\[(.*)\]\Z", re.DOTALL)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_CONVERSIONS = (None, "r", "s", "a")


def is_access_record(record: logging.LogRecord) -> bool:
    """True for the server's access records (see the module docstring for their shape)."""
    args = record.args
    return isinstance(args, tuple) and len(args) == 5


def iso_time(record: logging.LogRecord) -> str:
    """The record's time as ISO 8601 UTC with milliseconds: ``2024-05-01T12:34:56.789Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + (
        f".{int(record.msecs):03d}Z"
    )


class _Missing:
    """A value the server doesn't have: ``-`` whatever the format spec asks for."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return "-"

    def __str__(self) -> str:
        return "-"

    __repr__ = __str__


MISSING: Any = _Missing()


class _Millis(float):
    """A duration in milliseconds, shown with two decimals unless a format spec says otherwise."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return float.__format__(self, spec or ".2f")

    def __str__(self) -> str:
        return f"{float(self):.2f}"


def escape_field(value: str) -> str:
    """A client-supplied value for a text access line: ``escape_for_log``, and ``"`` as ``\\"``
    so that a value can't end a quoted field early and forge the ones after it."""
    if '"' in value:
        value = value.replace('"', '\\"')
    return escape_for_log(value)


class _Headers:
    """``req``/``res`` in a template: ``{req[user-agent]}`` looks one header up, on demand."""

    __slots__ = ("headers", "escape")

    def __init__(self, headers: Any, escape: Callable[[str], str]) -> None:
        self.headers = headers if isinstance(headers, list | tuple) else ()
        self.escape = escape

    def get(self, name: object) -> str | None:
        key = str(name).lower().encode("latin-1", "replace")
        values = [
            value.decode("latin-1") if isinstance(value, bytes | bytearray) else str(value)
            for header, value in self.headers
            if (
                header if isinstance(header, bytes) else str(header).encode("latin-1", "replace")
            ).lower()
            == key
        ]
        if not values:
            return None
        return self.escape(", ".join(values))

    def __getitem__(self, name: object) -> Any:
        value = self.get(name)
        return MISSING if value is None else value


class _AccessFields:
    """The fields of one access record, each computed only when a template uses it.

    ``escape`` is applied to what came from the network: ``escape_field`` for text lines,
    ``str`` for JSON (``json.dumps`` escapes everything itself).
    """

    __slots__ = ("record", "escape", "client_text", "method_text", "target", "version", "code")

    def __init__(self, record: logging.LogRecord, escape: Callable[[str], str]) -> None:
        self.record = record
        self.escape = escape
        client, method, target, version, status = record.args  # type: ignore[misc]
        self.client_text = str(client)
        self.method_text = str(method)
        self.target = str(target)
        self.version = str(version)
        try:
            self.code: int | None = int(status)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.code = None

    def client(self) -> str:
        return self.escape(self.client_text)

    def client_host(self) -> str:
        host, colon, port = self.client_text.rpartition(":")
        return self.escape(host if colon and port.isdigit() else self.client_text)

    def method(self) -> str:
        return self.escape(self.method_text)

    def path(self) -> str:
        return self.escape(self.target.partition("?")[0])

    def query(self) -> str:
        query = self.target.partition("?")[2]
        return self.escape("?" + query) if query else ""

    def request_line(self) -> str:
        return self.escape(f"{self.method_text} {self.target} HTTP/{self.version}")

    def http_version(self) -> str:
        return self.escape(self.version)

    def status(self) -> Any:
        return MISSING if self.code is None else self.code

    def status_phrase(self) -> Any:
        if self.code is None:
            return MISSING
        try:
            return http.HTTPStatus(self.code).phrase
        except ValueError:
            return MISSING

    def bytes(self) -> Any:
        sent = getattr(self.record, "response_bytes", None)
        return sent if isinstance(sent, int) else MISSING

    def duration_ms(self) -> Any:
        duration = getattr(self.record, "duration_ms", None)
        return _Millis(duration) if isinstance(duration, int | float) else MISSING

    def duration_us(self) -> Any:
        duration = getattr(self.record, "duration_ms", None)
        return round(duration * 1000.0) if isinstance(duration, int | float) else MISSING

    def pid(self) -> Any:
        process = self.record.process
        return MISSING if process is None else process

    def time(self) -> str:
        return iso_time(self.record)

    def request_headers(self) -> _Headers:
        return _Headers(getattr(self.record, "request_headers", None), self.escape)

    def response_headers(self) -> _Headers:
        return _Headers(getattr(self.record, "response_headers", None), self.escape)


_FIELD_GETTERS: dict[str, Callable[[_AccessFields], Any]] = {
    "client": _AccessFields.client,
    "client_host": _AccessFields.client_host,
    "method": _AccessFields.method,
    "path": _AccessFields.path,
    "query": _AccessFields.query,
    "request_line": _AccessFields.request_line,
    "http_version": _AccessFields.http_version,
    "status": _AccessFields.status,
    "status_phrase": _AccessFields.status_phrase,
    "bytes": _AccessFields.bytes,
    "duration_ms": _AccessFields.duration_ms,
    "duration_us": _AccessFields.duration_us,
    "pid": _AccessFields.pid,
    "worker": _AccessFields.pid,
    "time": _AccessFields.time,
    "req": _AccessFields.request_headers,
    "res": _AccessFields.response_headers,
}

# A record with every field present, to try a template's format specs on at startup.
_SAMPLE_RECORD = logging.LogRecord(
    "esg.access",
    logging.INFO,
    __file__,
    0,
    '%s - "%s %s HTTP/%s" %d',
    ("127.0.0.1:5000", "GET", "/a?b=1", "1.1", 200),
    None,
)
_SAMPLE_RECORD.__dict__.update(
    duration_ms=0.5, response_bytes=5, request_headers=[], response_headers=[]
)


class AccessLogFormat:
    """A compiled ``--access-log-format``: ``{field}`` placeholders (``ACCESS_LOG_FIELDS``).

    Constructing one validates the template; a mistake raises ``ValueError`` with a one-line
    message.  Only the fields the template names are computed for each record.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self.fields: list[str] = []  # names computed per record ("req"/"res" for headers)
        self.request_headers: list[str] = []  # lower-cased names of req[...] fields
        self.response_headers: list[str] = []
        for field, placeholder in _template_fields(template):
            header = _HEADER_FIELD.match(field)
            if header is not None:
                kind, name = header.groups()
                if not _HEADER_NAME.match(name):
                    raise ValueError(f"{{{field}}}: {name!r} is not a header name")
                names = self.request_headers if kind == "req" else self.response_headers
                if name.lower() not in names:
                    names.append(name.lower())
                name = kind
            elif field in ("req", "res"):
                raise ValueError(f"{{{field}}} needs a header name, e.g. {{{field}[content-type]}}")
            elif field not in _FIELD_GETTERS:
                raise ValueError(
                    f"unknown field {{{field}}}; fields: {', '.join(ACCESS_LOG_FIELDS)}"
                )
            else:
                name = field
            if name not in self.fields:
                self.fields.append(name)
            # The name is known; its format spec is tried on a sample value.
            try:
                placeholder.format_map(_FieldSample(_AccessFields(_SAMPLE_RECORD, escape_field)))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{placeholder}: {' '.join(str(exc).split())}") from None

    def values(self, record: logging.LogRecord, escape: Callable[[str], str]) -> dict[str, Any]:
        fields = _AccessFields(record, escape)
        return {name: _FIELD_GETTERS[name](fields) for name in self.fields}

    def render(self, record: logging.LogRecord, escape: Callable[[str], str] = escape_field) -> str:
        """The access line of one of the server's access records."""
        return self.template.format_map(self.values(record, escape))


def _template_fields(template: str) -> list[tuple[str, str]]:
    """The fields of a ``{field}`` template, each with its placeholder, syntax checked."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    fields = []
    for _text, field, spec, conversion in parsed:
        if field is None:
            continue
        placeholder = "{" + field + (f"!{conversion}" if conversion else "")
        placeholder += f":{spec}}}" if spec else "}"
        if field == "" or field.isdigit():
            raise ValueError("every {} needs a field name, e.g. {status}")
        if conversion not in _CONVERSIONS:
            raise ValueError(f"{placeholder}: the conversion must be !r, !s or !a")
        if spec and ("{" in spec or "}" in spec):
            raise ValueError(f"{placeholder}: nested fields are not supported")
        fields.append((field, placeholder))
    return fields


class _FieldSample(dict[str, Any]):
    """The sample record's fields, computed as a placeholder asks for them."""

    def __init__(self, fields: _AccessFields) -> None:
        super().__init__()
        self.fields = fields

    def __missing__(self, name: str) -> Any:
        if name in ("req", "res"):
            return _AnyHeader()
        return _FIELD_GETTERS[name](self.fields)


class _AnyHeader:
    """A sample header lookup: every header is present, with a text value."""

    def __getitem__(self, name: object) -> str:
        return "value"


def check_access_log_format(template: str | None) -> AccessLogFormat | None:
    """``template`` compiled (None for None or ""); ``ValueError`` says what is wrong."""
    return AccessLogFormat(template) if template else None


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
        fields = _AccessFields(record, escape_field)
        status = fields.status_phrase()
        status = f"{fields.status()} {status}" if status is not MISSING else str(fields.status())
        return f'{fields.client()} - "{fields.request_line()}" {status}'

    def add_json_fields(self, record: logging.LogRecord, data: dict[str, Any]) -> None:
        if not is_access_record(record):
            return
        fields = _AccessFields(record, str)
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
