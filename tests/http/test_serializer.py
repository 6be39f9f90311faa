"""Response bytes, against both builds: status lines, chunk framing, header validation."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

NO_DEFAULTS: frozenset[bytes] = frozenset()


@pytest.fixture
def ser(build: Any) -> ModuleType:
    module: ModuleType = build.module("esg.http.serializer")
    return module


def inspect(ser: ModuleType, headers: Any, status: Any = 200, defaults: Any = NO_DEFAULTS) -> Any:
    return ser.inspect_response_headers(status, headers, defaults)


# -- status lines, dates, chunks -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (100, b"HTTP/1.1 100 Continue\r\n"),
        (418, b"HTTP/1.1 418 I'm a Teapot\r\n"),
        (500, b"HTTP/1.1 500 Internal Server Error\r\n"),
        (599, b"HTTP/1.1 599 \r\n"),  # no known phrase: the reason is empty, the space stays
        (999, b"HTTP/1.1 999 \r\n"),
    ],
)
def test_status_line(ser: ModuleType, status: int, line: bytes) -> None:
    assert ser.status_line(status) == line


def test_date_line_is_imf_fixdate(ser: ModuleType) -> None:
    assert ser.date_line(0) == b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    assert ser.date_line(784111777) == b"date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"


@pytest.mark.parametrize(
    ("body", "framed"),
    [
        (b"hello", b"5\r\nhello\r\n"),
        (b"x" * 255, b"ff\r\n" + b"x" * 255 + b"\r\n"),
        (b"y" * 4096, b"1000\r\n" + b"y" * 4096 + b"\r\n"),
        (b"\r\n0\r\n\r\n", b"7\r\n\r\n0\r\n\r\n\r\n"),  # content is framed, never interpreted
    ],
)
def test_chunk_framing(ser: ModuleType, body: bytes, framed: bytes) -> None:
    assert ser.chunk(body) == framed


def test_constants(ser: ModuleType) -> None:
    assert ser.LAST_CHUNK == b"0\r\n\r\n"
    assert ser.CONTINUE_RESPONSE == b"HTTP/1.1 100 Continue\r\n\r\n"


# -- header blocks ---------------------------------------------------------------------------


def test_header_block_keeps_order_and_case(ser: ModuleType) -> None:
    head = inspect(ser, [(b"Content-Type", b"text/plain"), (b"X-A", b""), (b"x-a", b"2")])
    assert head.status == 200
    assert head.block == b"Content-Type: text/plain\r\nX-A: \r\nx-a: 2\r\n"
    assert head.content_length == -1
    assert not (head.chunked or head.close or head.has_server or head.has_date)
    assert head.overridden is None


def test_no_headers(ser: ModuleType) -> None:
    head = inspect(ser, [], status=204)
    assert (head.status, head.block) == (204, b"")


def test_headers_as_lists_and_bytes_like(ser: ModuleType) -> None:
    headers = [[bytearray(b"X-One"), bytearray(b"1")], (memoryview(b"x-two"), memoryview(b"2"))]
    assert inspect(ser, headers).block == b"X-One: 1\r\nx-two: 2\r\n"


def test_special_headers_are_noted(ser: ModuleType) -> None:
    headers = [
        (b"Content-Length", b"12"),
        (b"Connection", b"Close"),
        (b"Server", b"mine"),
        (b"DATE", b"today"),
    ]
    head = inspect(ser, headers)
    assert head.content_length == 12
    assert not head.chunked
    assert head.close and head.has_server and head.has_date
    assert inspect(ser, [(b"Transfer-Encoding", b"Chunked")]).chunked


def test_content_length_with_transfer_encoding_is_refused(ser: ModuleType) -> None:
    headers = [(b"content-length", b"12"), (b"transfer-encoding", b"chunked")]
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, headers)


def test_connection_keep_alive_is_not_close(ser: ModuleType) -> None:
    assert not inspect(ser, [(b"connection", b"keep-alive")]).close


def test_overridden_default_names(ser: ModuleType) -> None:
    defaults = frozenset([b"x-frame-options", b"x-powered-by"])
    head = inspect(ser, [(b"X-Frame-Options", b"DENY"), (b"x-other", b"1")], defaults=defaults)
    assert head.overridden == {b"x-frame-options"}


@pytest.mark.parametrize("value", [b"5", b" 5 ", b"0", b"000"])
def test_valid_content_length(ser: ModuleType, value: bytes) -> None:
    assert inspect(ser, [(b"content-length", value)]).content_length == int(value)


def test_identical_duplicate_content_length_is_accepted(ser: ModuleType) -> None:
    head = inspect(ser, [(b"content-length", b"5"), (b"Content-Length", b"5")])
    assert head.content_length == 5


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"5"), (b"content-length", b"6")],
        [(b"content-length", b"")],
        [(b"content-length", b"-1")],
        [(b"content-length", b"+5")],
        [(b"content-length", b"0x5")],
        [(b"content-length", b"5, 5")],
        [(b"content-length", "٥".encode())],  # a non-ASCII digit
    ],
    ids=["conflict", "empty", "negative", "plus", "hex", "list", "unicode-digit"],
)
def test_invalid_content_length(ser: ModuleType, headers: Any) -> None:
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, headers)


@pytest.mark.parametrize(
    "name",
    [b"", b"bad name", b"x:y", b"x\r\n", b"caf\xc3\xa9", b"(x)", b"a\x00", b"tab\t"],
)
def test_invalid_header_name(ser: ModuleType, name: bytes) -> None:
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, [(name, b"v")])
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, [(bytearray(name), b"v")])


@pytest.mark.parametrize("value", [b"a\r\nb", b"a\nb", b"a\rb", b"a\x00b", b"\r\n", b"x\n"])
def test_invalid_header_value(ser: ModuleType, value: bytes) -> None:
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, [(b"x-value", value)])
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, [(b"x-value", bytearray(value))])


def test_value_with_tabs_and_latin1_is_accepted(ser: ModuleType) -> None:
    head = inspect(ser, [(b"x-value", b"a\tb \xe9")])
    assert head.block == b"x-value: a\tb \xe9\r\n"


@pytest.mark.parametrize(
    "header",
    [("x-str", "text"), (b"x", "text"), ("x", b"text"), (b"x", 5), (None, b"v")],
)
def test_non_bytes_headers_are_refused(ser: ModuleType, header: Any) -> None:
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, [header])


@pytest.mark.parametrize("status", ["200", 200.0, True, False, 99, 600, 700, 999, 1000, None, -1])
def test_invalid_status(ser: ModuleType, status: Any) -> None:
    with pytest.raises(ser.InvalidStatus) as caught:
        inspect(ser, [], status=status)
    assert isinstance(caught.value, ser.InvalidResponse)


@pytest.mark.parametrize("status", [100, 101, 200, 599])
def test_status_range_edges(ser: ModuleType, status: int) -> None:
    assert inspect(ser, [], status=status).status == status


def test_intenum_status_is_accepted(ser: ModuleType) -> None:
    from http import HTTPStatus

    head = inspect(ser, [], status=HTTPStatus.CREATED)
    assert head.status == 201 and type(head.status) is int


def test_transfer_coding_other_than_chunked_is_refused(ser: ModuleType) -> None:
    with pytest.raises(ser.InvalidResponse):
        inspect(ser, [(b"transfer-encoding", b"gzip")])
