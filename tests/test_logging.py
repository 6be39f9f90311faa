from __future__ import annotations

import copy
import io
import logging
import logging.config
import sys
from typing import Any

import pytest

from esg.escaping import escape_for_log, escape_lines
from esg.logging import (
    LOGGING_CONFIG,
    TRACE_LOG_LEVEL,
    AccessFormatter,
    DefaultFormatter,
)

pytestmark = pytest.mark.usefixtures("isolated_esg_loggers")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def make_record(
    msg: str = "hello", args: Any = None, level: int = logging.INFO, **extra: Any
) -> logging.LogRecord:
    record = logging.LogRecord("esg.error", level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def access_record(
    path: str = "/a?b=1", status: int = 200, method: str = "GET", **extra: Any
) -> logging.LogRecord:
    record = logging.LogRecord(
        "esg.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", method, path, "1.1", status),
        None,
    )
    record.__dict__.update(extra)
    return record


def test_trace_level_is_registered() -> None:
    assert TRACE_LOG_LEVEL == 5
    assert logging.getLevelName(5) == "TRACE"
    assert logging.getLevelName("TRACE") == 5


@pytest.mark.parametrize(
    ("level", "line"),
    [
        (logging.INFO, "INFO:     hello"),
        (logging.WARNING, "WARNING:  hello"),
        (logging.CRITICAL, "CRITICAL: hello"),
        (TRACE_LOG_LEVEL, "TRACE:    hello"),
    ],
)
def test_default_formatter_lines_messages_up(level: int, line: str) -> None:
    formatter = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False)
    assert formatter.format(make_record(level=level)) == line


def test_default_formatter_colors_the_level_name() -> None:
    formatter = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=True)
    assert formatter.format(make_record()) == "\033[32mINFO\033[0m:     hello"


def test_formatting_does_not_change_the_record_for_other_handlers() -> None:
    record = make_record()
    DefaultFormatter("%(levelprefix)s %(message)s", use_colors=True).format(record)
    assert "levelprefix" not in record.__dict__


def test_colors_follow_the_stream_when_not_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("sys.stderr", FakeTTY())
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert DefaultFormatter().use_colors is True
    assert AccessFormatter().use_colors is False  # access lines go to stdout, not a tty here
    monkeypatch.setenv("NO_COLOR", "1")
    assert DefaultFormatter().use_colors is False


def test_access_line_has_status_phrase_and_duration() -> None:
    formatter = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)
    line = formatter.format(access_record(duration_ms=0.4249))
    assert line == 'INFO:     127.0.0.1:5000 - "GET /a?b=1 HTTP/1.1" 200 OK 0.42ms'


def test_access_line_without_duration_ends_at_the_status() -> None:
    formatter = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)
    line = formatter.format(access_record(status=404))
    assert line == 'INFO:     127.0.0.1:5000 - "GET /a?b=1 HTTP/1.1" 404 Not Found'


def test_unknown_status_has_no_phrase() -> None:
    formatter = AccessFormatter("%(status_code)s", use_colors=False)
    assert formatter.format(access_record(status=599)) == "599"


def test_access_status_is_colored_by_class() -> None:
    formatter = AccessFormatter("%(status_code)s", use_colors=True)
    assert formatter.format(access_record(status=200)) == "\033[32m200 OK\033[0m"
    assert formatter.format(access_record(status=503)) == "\033[91m503 Service Unavailable\033[0m"


def test_format_with_duration_field_does_not_repeat_it() -> None:
    formatter = AccessFormatter("%(request_line)s took %(duration)s", use_colors=False)
    assert formatter.format(access_record(duration_ms=12)) == "GET /a?b=1 HTTP/1.1 took 12.00ms"


def test_access_message_field_is_the_escaped_line() -> None:
    formatter = AccessFormatter("%(message)s", use_colors=False)
    line = formatter.format(access_record(path="/x\x1b[2J"))
    assert line == '127.0.0.1:5000 - "GET /x\\x1b[2J HTTP/1.1" 200 OK'


def test_control_bytes_from_the_client_never_reach_the_line() -> None:
    formatter = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)
    line = formatter.format(access_record(path="/a\x1b]0;pwned\x07\r\n\x85b", method="G\x00T"))
    assert line.isprintable()
    assert '"G\\x00T /a\\x1b]0;pwned\\x07\\x0d\\x0a\\x85b HTTP/1.1"' in line


def test_access_formatter_tolerates_other_records() -> None:
    formatter = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)
    assert formatter.format(make_record("plain")) == 'INFO:     - - "" '


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("/plain/path?q=é", "/plain/path?q=é"),
        ("\x00\x1f\x7f", "\\x00\\x1f\\x7f"),
        ("a\tb\nc", "a\\x09b\\x0ac"),
        ("\x9b\xa0", "\\x9b\\xa0"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("\U000e0001", "\\U000e0001"),
        ("", ""),
    ],
)
def test_escape_for_log(raw: str, escaped: str) -> None:
    assert escape_for_log(raw) == escaped
    assert escape_for_log(escaped) == escaped  # idempotent


def test_default_config_sends_access_to_stdout_and_errors_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.config.dictConfig(copy.deepcopy(LOGGING_CONFIG))
    logging.getLogger("esg.error").info("server message")
    logging.getLogger("esg.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/", "1.1", 200
    )
    captured = capsys.readouterr()
    assert captured.err == "INFO:     server message\n"
    assert captured.out == 'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK\n'


def test_default_config_is_not_mutated_by_use() -> None:
    before = copy.deepcopy(LOGGING_CONFIG)
    logging.config.dictConfig(copy.deepcopy(LOGGING_CONFIG))
    assert before == LOGGING_CONFIG


def test_default_formatter_escapes_messages_but_keeps_their_lines() -> None:
    formatter = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=True)
    record = make_record("bad %s\nsecond line", ("\x1b[2J\r\x9b",), level=logging.ERROR)
    line = formatter.format(record)
    assert line == "\033[31mERROR\033[0m:    bad \\x1b[2J\\x0d\\x9b\nsecond line"


def test_default_formatter_escapes_exception_text() -> None:
    # An app's exception may quote the decoded path: /%1b[2J%0d%0a is ESC [ 2 J CR LF.
    try:
        raise ValueError("no route for /\x1b[2J\r\nINFO:     forged")
    except ValueError:
        record = logging.LogRecord(
            "esg.error", logging.ERROR, __file__, 1, "Exception in ASGI application", None,
            sys.exc_info(),
        )  # fmt: skip
    text = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False).format(record)
    assert "\x1b" not in text and "\r" not in text
    assert "ValueError: no route for /\\x1b[2J\\x0d" in text
    assert all(line.isprintable() for line in text.split("\n"))


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("one\ntwo", "one\ntwo"), ("a\x1b\nb\rc", "a\\x1b\nb\\x0dc"), ("", "")],
)
def test_escape_lines_keeps_only_newlines(raw: str, escaped: str) -> None:
    assert escape_lines(raw) == escaped
