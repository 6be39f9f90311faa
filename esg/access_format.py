"""``--access-log-format``: the template language of an access line.

A template is text with ``{field}`` placeholders (``ACCESS_LOG_FIELDS`` lists them), written in
str.format's syntax: its grammar already has the indexing that ``{req[user-agent]}`` needs, takes
format specs (``{duration_ms:.3f}``, ``{status:>3}``), and leaves ``%`` (frequent in URLs and in
the log formats of other tools) as plain text.  ``AccessLogFormat(template)`` checks a template
once, at startup, and renders the server's access records (see esg.logging for their shape);
the formatters of esg.logging use it for text lines and for the ``"message"`` of JSON ones.
"""

from __future__ import annotations

import http
import logging
import re
import string
import time
from collections.abc import Callable
from typing import Any

from esg.escaping import escape_field

__all__ = [
    "ACCESS_LOG_FIELDS",
    "MISSING",
    "AccessFields",
    "AccessLogFormat",
    "check_access_log_format",
    "is_access_record",
    "iso_time",
]

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
    """True for the server's access records (esg.logging's docstring gives their shape)."""
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


class AccessFields:
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


_FIELD_GETTERS: dict[str, Callable[[AccessFields], Any]] = {
    "client": AccessFields.client,
    "client_host": AccessFields.client_host,
    "method": AccessFields.method,
    "path": AccessFields.path,
    "query": AccessFields.query,
    "request_line": AccessFields.request_line,
    "http_version": AccessFields.http_version,
    "status": AccessFields.status,
    "status_phrase": AccessFields.status_phrase,
    "bytes": AccessFields.bytes,
    "duration_ms": AccessFields.duration_ms,
    "duration_us": AccessFields.duration_us,
    "pid": AccessFields.pid,
    "worker": AccessFields.pid,
    "time": AccessFields.time,
    "req": AccessFields.request_headers,
    "res": AccessFields.response_headers,
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
                placeholder.format_map(_FieldSample(AccessFields(_SAMPLE_RECORD, escape_field)))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{placeholder}: {' '.join(str(exc).split())}") from None

    def values(self, record: logging.LogRecord, escape: Callable[[str], str]) -> dict[str, Any]:
        fields = AccessFields(record, escape)
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

    def __init__(self, fields: AccessFields) -> None:
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
