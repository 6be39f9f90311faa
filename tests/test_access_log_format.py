"""--access-log-format and --log-format json: the formatters, their settings and the data the
connection hands them (both builds, through the fake transport)."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_transport as fake
import pytest
from click.testing import CliRunner

import esg.main
from esg.access_format import ACCESS_LOG_FIELDS, AccessLogFormat
from esg.config import Config
from esg.logging import (
    LOGGING_CONFIG,
    AccessFormatter,
    JsonAccessFormatter,
    JsonFormatter,
    logging_config,
)

pytestmark = pytest.mark.usefixtures("isolated_esg_loggers")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def access_record(
    target: str = "/a?b=1",
    status: int = 200,
    method: str = "GET",
    client: str = "127.0.0.1:5000",
    version: str = "1.1",
    **extra: Any,
) -> logging.LogRecord:
    """A record shaped like the ones HttpProtocol._log_access emits."""
    record = logging.LogRecord(
        "esg.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (client, method, target, version, status),
        None,
    )
    record.__dict__.update(extra)
    return record


def render(template: str, record: logging.LogRecord | None = None, **extra: Any) -> str:
    return AccessLogFormat(template).render(record or access_record(**extra))


def is_one_printable_line(text: str) -> bool:
    return "\n" not in text and text.isprintable()


async def asgi3_app(scope: Any, receive: Any, send: Any) -> None:
    pass


# -- fields, one by one ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "settings", "line"),
    [
        ("{client}", {}, "127.0.0.1:5000"),
        ("{client_host}", {}, "127.0.0.1"),
        ("{client_host}", {"client": "::1:5000"}, "::1"),
        ("{client_host}", {"client": "-"}, "-"),
        ("{method}", {"method": "DELETE"}, "DELETE"),
        ("{path}", {}, "/a"),
        ("{query}", {}, "?b=1"),
        ("{path}|{query}|", {"target": "/plain"}, "/plain||"),
        ("{path}{query}", {"target": "/x?a=1&b=?"}, "/x?a=1&b=?"),
        ("{request_line}", {}, "GET /a?b=1 HTTP/1.1"),
        ("{http_version}", {"version": "1.0"}, "1.0"),
        ("{status}", {"status": 404}, "404"),
        ("{status_phrase}", {"status": 404}, "Not Found"),
        ("{status} {status_phrase}", {"status": 599}, "599 -"),
        ("{bytes}", {"response_bytes": 1234}, "1234"),
        ("{bytes}", {"response_bytes": 0}, "0"),
        ("{bytes}", {"response_bytes": None}, "-"),
        ("{bytes}", {}, "-"),
        ("{duration_ms}ms", {"duration_ms": 1.23456}, "1.23ms"),
        ("{duration_ms:.3f}", {"duration_ms": 1.23456}, "1.235"),
        ("{duration_ms}", {}, "-"),
        ("{duration_ms:.3f}", {}, "-"),  # a missing value ignores the spec
        ("{duration_us}", {"duration_ms": 1.23456}, "1235"),
        ("{duration_us}", {}, "-"),
        ("{pid}", {}, str(os.getpid())),
        ("{worker}", {}, str(os.getpid())),
        ("{status:>5}|{method:<6}|", {}, "  200|GET   |"),
        ("{{literal}} {status}", {}, "{literal} 200"),
        ("{path!r}", {}, "'/a'"),
    ],
)
def test_field(template: str, settings: dict[str, Any], line: str) -> None:
    assert render(template, **settings) == line


def test_time_is_iso8601_utc_with_milliseconds() -> None:
    record = access_record()
    record.created = 1700000000.5
    record.msecs = 500.0
    assert render("{time}", record) == "2023-11-14T22:13:20.500Z"
    assert ISO_TIME.match(render("{time}"))


def test_request_headers_by_name_in_any_case() -> None:
    headers = [(b"user-agent", b"curl/8"), (b"accept", b"a"), (b"accept", b"b")]
    assert render("{req[User-Agent]}", request_headers=headers) == "curl/8"
    assert render("{req[accept]}", request_headers=headers) == "a, b"
    assert render("{req[x-missing]}", request_headers=headers) == "-"
    assert render("{req[user-agent]}") == "-"  # a record without headers


def test_response_headers_by_name() -> None:
    headers = [(b"Content-Type", b"text/plain"), (b"X-Id", b"7")]
    assert render("{res[content-type]} {res[x-id]}", response_headers=headers) == "text/plain 7"
    assert render("{res[content-type]}", response_headers=None) == "-"


def test_the_example_from_the_docs() -> None:
    template = (
        '{client} "{method} {path}{query}" {status} {bytes} {duration_ms}ms pid={pid} '
        'ua="{req[user-agent]}"'
    )
    record = access_record(
        duration_ms=0.5, response_bytes=12, request_headers=[(b"user-agent", b"curl/8")]
    )
    assert AccessLogFormat(template).render(record) == (
        f'127.0.0.1:5000 "GET /a?b=1" 200 12 0.50ms pid={os.getpid()} ua="curl/8"'
    )


def test_every_documented_field_renders() -> None:
    names = [name.replace("NAME", "x-a") for name in ACCESS_LOG_FIELDS]
    template = " ".join("{" + name + "}" for name in names)
    line = render(template, duration_ms=1.0, response_bytes=3, request_headers=[(b"x-a", b"1")])
    assert len(line.split(" ")) >= len(names)


# -- escaping --------------------------------------------------------------------------------


def test_hostile_path_stays_as_sent() -> None:
    # The target is logged percent-encoded, as the client sent it: %1b is no escape sequence.
    assert render("{path}{query}", target="/%1b[2J?x=%0a") == "/%1b[2J?x=%0a"


def test_control_characters_from_the_client_are_escaped() -> None:
    record = access_record(
        target="/\x1b[2J?q=\x07",
        client="evil\x9bhost:0",
        request_headers=[(b"user-agent", b"a\x85\x9b\tb\r\nINFO: forged")],
    )
    line = AccessLogFormat(
        "{client} {client_host} {path} {query} {request_line} {req[user-agent]}"
    ).render(record)
    assert line == (
        "evil\\x9bhost:0 evil\\x9bhost /\\x1b[2J ?q=\\x07 GET /\\x1b[2J?q=\\x07 HTTP/1.1 "
        "a\\x85\\x9b\\x09b\\x0d\\x0aINFO: forged"
    )
    assert is_one_printable_line(line)


def test_quotes_from_the_client_cannot_close_a_quoted_field() -> None:
    record = access_record(target='/a"b?c="d', request_headers=[(b"user-agent", b'x" 500 "forged')])
    line = AccessLogFormat('"{request_line}" ua="{req[user-agent]}" "{path}{query}"').render(record)
    assert line == '"GET /a\\"b?c=\\"d HTTP/1.1" ua="x\\" 500 \\"forged" "/a\\"b?c=\\"d"'
    assert re.fullmatch(r'"(?:[^"\\]|\\.)*" ua="(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"', line)


def test_response_header_values_are_escaped_too() -> None:
    record = access_record(response_headers=[(b"x-note", b'say "hi"\t\xe9\x9b')])
    assert render("{res[x-note]}", record) == 'say \\"hi\\"\\x09é\\x9b'


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{nope}", "unknown field {nope}; fields: client, client_host,"),
        ("{path.upper}", "unknown field {path.upper}"),
        ("{path[0]}", "unknown field {path[0]}"),
        ("{}", "every {} needs a field name"),
        ("{0}", "every {} needs a field name"),
        ("{req}", "{req} needs a header name"),
        ("{res[]}", "{res[]}: '' is not a header name"),
        ("{req[a b]}", "{req[a b]}: 'a b' is not a header name"),
        ("{status:q}", "{status:q}: Unknown format code 'q'"),
        ("{path:d}", "{path:d}: Unknown format code 'd'"),
        ("{req[x]:d}", "{req[x]:d}: Unknown format code 'd'"),
        ("{status!x}", "{status!x}: the conversion must be !r, !s or !a"),
        ("{status:{width}}", "nested fields are not supported"),
        ("{status", "expected '}' before end of string"),
        ("status}", "Single '}' encountered"),
    ],
)
def test_invalid_formats_are_one_line_errors(template: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        AccessLogFormat(template)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_rejects_an_invalid_format_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(esg.main, "run", lambda **kwargs: calls.append(kwargs))
    result = CliRunner().invoke(
        esg.main.main, ["--access-log-format", "{client} {nope}", "example:app"], prog_name="esg"
    )
    assert result.exit_code == 2
    assert result.output == (
        "Error: Invalid value for '--access-log-format': unknown field {nope}; fields: "
        + ", ".join(ACCESS_LOG_FIELDS)
        + ".\n"
    )
    assert calls == []


def test_cli_rejects_an_unknown_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(esg.main, "run", lambda **kwargs: None)
    result = CliRunner().invoke(esg.main.main, ["--log-format", "xml", "example:app"])
    assert result.exit_code == 2
    assert "Invalid value for '--log-format'" in result.output


def test_cli_passes_both_settings_on(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(esg.main, "run", lambda **kwargs: calls.append(kwargs))
    result = CliRunner().invoke(
        esg.main.main,
        ["example:app"],
        env={"ESG_ACCESS_LOG_FORMAT": "{status} {req[host]}", "ESG_LOG_FORMAT": "json"},
    )
    assert result.exit_code == 0, result.output
    [kwargs] = calls
    assert (kwargs["access_log_format"], kwargs["log_format"]) == ("{status} {req[host]}", "json")


def test_run_fails_with_one_line_for_an_invalid_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        esg.run(asgi3_app, access_log_format="{client} {nope}")
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR:    Invalid --access-log-format: unknown field {nope}; fields:")
    assert err.count("\n") == 1


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format must be one of text, json"):
        Config(asgi3_app, log_format="xml")


# -- the text formatter ----------------------------------------------------------------------


def test_access_formatter_uses_the_template_for_access_records() -> None:
    formatter = AccessFormatter(
        LOGGING_CONFIG["formatters"]["access"]["fmt"], access_format="{status} {path}"
    )
    assert formatter.format(access_record()) == "200 /a"


def test_access_formatter_formats_other_records_as_without_a_template() -> None:
    fmt = LOGGING_CONFIG["formatters"]["access"]["fmt"]
    formatter = AccessFormatter(fmt, use_colors=False, access_format="{status} {path}")
    without = AccessFormatter(fmt, use_colors=False)
    record = logging.LogRecord("esg.access", logging.INFO, __file__, 1, "note \x1b", None, None)
    assert formatter.format(record) == without.format(record)


def test_default_line_is_unchanged_without_a_template() -> None:
    formatter = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)
    record = access_record(duration_ms=0.5, response_bytes=3, request_headers=[])
    assert (
        formatter.format(record) == 'INFO:     127.0.0.1:5000 - "GET /a?b=1 HTTP/1.1" 200 OK 0.50ms'
    )


# -- JSON ------------------------------------------------------------------------------------


def test_json_error_record() -> None:
    record = logging.LogRecord(
        "esg.error", logging.WARNING, __file__, 1, "bad %s", ("p\x1b[2J\n\u2028é",), None
    )
    line = JsonFormatter(use_colors=True).format(record)
    assert is_one_printable_line(line) and line.isascii()
    assert "\\u001b[2J\\n\\u2028\\u00e9" in line
    data = json.loads(line)
    assert data == {
        "time": data["time"],
        "level": "WARNING",
        "logger": "esg.error",
        "pid": os.getpid(),
        "message": "bad p\x1b[2J\n\u2028é",
    }
    assert ISO_TIME.match(data["time"])


def test_json_exception_text() -> None:
    try:
        raise RuntimeError("boom \x1b[2J")
    except RuntimeError:
        record = logging.LogRecord(
            "esg.error", logging.ERROR, __file__, 1, "Exception in ASGI application\n", None, None
        )
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert is_one_printable_line(line)
    data = json.loads(line)
    assert data["message"] == "Exception in ASGI application\n"
    assert data["exc_info"].startswith("Traceback (most recent call last):\n")
    assert data["exc_info"].endswith("RuntimeError: boom \x1b[2J")


def test_json_access_record_fields() -> None:
    record = access_record(
        target='/%1b[2J?x="1"',
        status=404,
        duration_ms=1.23456,
        response_bytes=9,
        request_headers=[(b"user-agent", b'a\x85\x9b"q\tb')],
        response_headers=None,
    )
    line = JsonAccessFormatter().format(record)
    assert is_one_printable_line(line)
    data = json.loads(line)
    assert data == {
        "time": data["time"],
        "level": "INFO",
        "logger": "esg.access",
        "pid": os.getpid(),
        "message": '127.0.0.1:5000 - "GET /%1b[2J?x=\\"1\\" HTTP/1.1" 404 Not Found',
        "client": "127.0.0.1:5000",
        "method": "GET",
        "path": "/%1b[2J",
        "query": '?x="1"',
        "http_version": "1.1",
        "status": 404,
        "bytes": 9,
        "duration_ms": 1.235,
    }


def test_json_access_record_with_a_template_adds_its_headers() -> None:
    record = access_record(
        request_headers=[(b"user-agent", b'a\x85\x9b"q\tb\r\n')],
        response_headers=[(b"Content-Type", b"text/plain")],
    )
    formatter = JsonAccessFormatter(
        access_format='{status} ua="{req[User-Agent]}" {req[x-none]} {res[content-type]}'
    )
    line = formatter.format(record)
    assert is_one_printable_line(line)
    assert "\\u0085\\u009b" in line  # JSON escapes, not \\x escapes, for the raw values
    data = json.loads(line)
    assert data["message"] == '200 ua="a\\x85\\x9b\\"q\\x09b\\x0d\\x0a" - text/plain'
    assert data["request_headers"] == {"user-agent": 'a\x85\x9b"q\tb\r\n', "x-none": None}
    assert data["response_headers"] == {"content-type": "text/plain"}
    assert data["bytes"] is None and data["duration_ms"] is None


def test_json_access_formatter_tolerates_other_records() -> None:
    record = logging.LogRecord("esg.access", logging.INFO, __file__, 1, "note", None, None)
    data = json.loads(JsonAccessFormatter(access_format="{status}").format(record))
    assert data["message"] == "note" and "status" not in data


# -- the logging configuration ---------------------------------------------------------------


def test_logging_config_defaults_are_esgs_own() -> None:
    assert logging_config() == LOGGING_CONFIG
    assert logging_config() is not LOGGING_CONFIG


def test_logging_config_json() -> None:
    config = logging_config("json", "{status}")
    assert config["formatters"] == {
        "default": {"()": "esg.logging.JsonFormatter"},
        "access": {"()": "esg.logging.JsonAccessFormatter", "access_format": "{status}"},
    }
    assert config["handlers"] == LOGGING_CONFIG["handlers"]
    assert "access_format" not in LOGGING_CONFIG["formatters"]["access"]  # not mutated


def test_config_text_with_a_template(capsys: pytest.CaptureFixture[str]) -> None:
    Config(asgi3_app, access_log_format="{client_host} {status}")
    logging.getLogger("esg.access").info(
        '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/", "1.1", 200
    )
    assert capsys.readouterr().out == "1.2.3.4 200\n"


def test_config_json(capsys: pytest.CaptureFixture[str]) -> None:
    Config(asgi3_app, log_format="json", use_colors=True)
    logging.getLogger("esg.error").info("ready")
    logging.getLogger("esg.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "1.2.3.4:5",
        "GET",
        "/",
        "1.1",
        200,
        extra={"duration_ms": 2.0, "response_bytes": 5},
    )
    captured = capsys.readouterr()
    error = json.loads(captured.err)
    assert (error["level"], error["logger"], error["message"]) == ("INFO", "esg.error", "ready")
    access = json.loads(captured.out)
    assert (access["client"], access["status"], access["bytes"]) == ("1.2.3.4:5", 200, 5)


def test_log_config_wins_over_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"plain": {"format": "custom %(levelname)s %(message)s"}},
                "handlers": {
                    "out": {
                        "class": "logging.StreamHandler",
                        "formatter": "plain",
                        "stream": "ext://sys.stdout",
                    }
                },
                "loggers": {"esg": {"handlers": ["out"], "level": "INFO", "propagate": False}},
            }
        )
    )
    Config(asgi3_app, log_config=str(path), log_format="json", access_log_format="{status}")
    logging.getLogger("esg.access").info(
        '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/", "1.1", 200
    )
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "custom WARNING --log-format and --access-log-format are not applied: the logging "
        "configuration given (--log-config, or log_config) chooses the formatters.",
        'custom INFO 1.2.3.4:5 - "GET / HTTP/1.1" 200',
    ]


def test_log_config_still_validates_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        Config(asgi3_app, log_config=None, access_log_format="{nope}")


def test_esgs_formatters_take_the_template_in_a_log_config() -> None:
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "access": {"()": "esg.logging.AccessFormatter", "access_format": "{status} {bytes}"}
        },
        "handlers": {"a": {"class": "logging.NullHandler", "formatter": "access"}},
        "loggers": {"esg.access": {"handlers": ["a"], "level": "INFO"}},
    }
    Config(asgi3_app, log_config=config)
    [handler] = logging.getLogger("esg.access").handlers
    assert handler.formatter is not None
    assert handler.formatter.format(access_record(response_bytes=4)) == "200 4"


def test_metrics_settings() -> None:
    config = Config(asgi3_app, log_config=None)
    assert (config.metrics, config.metrics_host, config.metrics_port) == (False, "127.0.0.1", 9090)
    config = Config(asgi3_app, log_config=None, metrics=True, metrics_host="::", metrics_port=1)
    assert (config.metrics, config.metrics_host, config.metrics_port) == (True, "::", 1)


# -- what the connection hands the formatters (both builds) -----------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_records() -> Iterator[list[logging.LogRecord]]:
    handler = Records()
    logger = logging.getLogger("esg.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield handler.records
    logger.removeHandler(handler)


def serve_one(build: Any, app: Any, request: bytes, *, head: bool = False) -> None:
    async def scenario() -> None:
        conn = fake.connect(build, app, access_log=True)
        conn.feed(request)
        await conn.response(head=head)
        await conn.settle()

    fake.run(scenario())


async def plain(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


async def sized(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hel", "more_body": True})
    await send({"type": "http.response.body", "body": b"lo"})


async def streamed(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for piece in (b"ab", b"cde", b""):
        await send({"type": "http.response.body", "body": piece, "more_body": bool(piece)})


async def failing(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("app", "method", "sent", "headers"),
    [
        (plain, "GET", 5, [(b"x-a", b"1")]),
        (sized, "GET", 5, [(b"content-length", b"5")]),
        (streamed, "GET", 5, []),
        (plain, "HEAD", 0, [(b"x-a", b"1")]),
        (failing, "GET", 21, None),  # esg's own 500
    ],
    ids=["plain", "sized", "streamed", "head", "failing"],
)
def test_response_bytes_and_headers(
    build: Any,
    access_records: list[logging.LogRecord],
    caplog: pytest.LogCaptureFixture,
    app: Any,
    method: str,
    sent: int,
    headers: list[tuple[bytes, bytes]] | None,
) -> None:
    serve_one(
        build,
        app,
        fake.request(method, "/x?y=1", headers=[("User-Agent", "t")]),
        head=method == "HEAD",
    )
    [record] = access_records
    assert record.response_bytes == sent  # type: ignore[attr-defined]
    assert (b"user-agent", b"t") in record.request_headers  # type: ignore[attr-defined]
    assert isinstance(record.duration_ms, float)  # type: ignore[attr-defined]
    assert record.response_headers == headers  # type: ignore[attr-defined]
    # The server's args are unchanged, for --log-config formatters.
    assert record.args == (
        "127.0.0.1:50000",
        method,
        "/x?y=1",
        "1.1",
        500 if app is failing else 200,
    )


def test_the_line_end_to_end_in_process(
    build: Any, access_records: list[logging.LogRecord]
) -> None:
    serve_one(
        build,
        plain,
        fake.request("GET", '/%1b[2J?q="x', headers=[("User-Agent", 'a\x85"b')]),
    )
    [record] = access_records
    template = '{client} "{request_line}" {status} {bytes} ua="{req[user-agent]}" {res[x-a]}'
    assert AccessLogFormat(template).render(record) == (
        '127.0.0.1:50000 "GET /%1b[2J?q=\\"x HTTP/1.1" 200 5 ua="a\\x85\\"b" 1'
    )


def test_websocket_records(build: Any, access_records: list[logging.LogRecord]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if scope["path"] == "/yes":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
        else:
            await send({"type": "websocket.close"})

    async def scenario(path: str) -> None:
        conn = fake.connect(build, app, access_log=True)
        conn.feed(fake.upgrade_request(target=path))
        await conn.settle()

    fake.run(scenario("/yes"))
    fake.run(scenario("/no"))
    assert [(record.args[4], record.response_bytes) for record in access_records] == [  # type: ignore[index, attr-defined]
        (101, 0),
        (403, 0),
    ]
    line = AccessLogFormat("{method} {status} {bytes} {req[upgrade]}").render(access_records[0])
    assert line == "WebSocket 101 0 websocket"
    # The time from the request head to the handshake's answer.
    assert all(record.duration_ms >= 0 for record in access_records)  # type: ignore[attr-defined]
