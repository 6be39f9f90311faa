"""Large bodies: received ``bytes`` objects reach ``Data`` with as few copies as possible.

A large read (16 KiB or more) that is all body is kept as it came and handed out as the
``Data`` itself; a read that holds the end of one body and the start of the next request is
sliced once; a large read that starts with a head has only the head copied into the buffer.
Smaller reads go through the buffer as before.  These tests pin
that down in both builds (identity checks), and check that the bookkeeping around it —
``buffered()``, ``take_buffered()``, pipelining, chunked framing and limits — behaves as if
every byte had gone through the parser's buffer.
"""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

import pytest
from conformance import cases as corpus

KIB = 1024
MIB = 1024 * KIB


@pytest.fixture
def parser_mod(build: Any) -> ModuleType:
    module: ModuleType = build.module("esg.http.parser")
    return module


def drain(parser: Any) -> list[Any]:
    events = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


def summary(events: list[Any]) -> list[tuple[str, bytes]]:
    """Event names with targets and body bytes, consecutive Data merged."""
    out: list[tuple[str, bytes]] = []
    for event in events:
        name = type(event).__name__
        value = getattr(event, "target", None) or getattr(event, "data", b"")
        if name == "Data" and out and out[-1][0] == "Data":
            out[-1] = (name, out[-1][1] + value)
        else:
            out.append((name, value))
    return out


def head(length: int, target: bytes = b"/") -> bytes:
    length_field = b"Content-Length: %d" % length
    return corpus.head(b"POST " + target + b" HTTP/1.1", corpus.HOST, length_field)


def chunked_head(target: bytes = b"/") -> bytes:
    return corpus.head(b"POST " + target + b" HTTP/1.1", corpus.HOST, b"Transfer-Encoding: chunked")


def body_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def started(parser_mod: ModuleType, data: bytes, **limits: Any) -> Any:
    """A parser that has returned the request head in ``data`` (and nothing of its body)."""
    parser = parser_mod.RequestParser(**limits)
    parser.feed(data)
    assert isinstance(parser.next_event(), parser_mod.Request)
    return parser


# -- Content-Length ---------------------------------------------------------------------------


def test_a_read_that_is_the_whole_body_is_passed_through(parser_mod: ModuleType) -> None:
    body = body_of(MIB)
    parser = started(parser_mod, head(MIB))
    parser.feed(body)
    assert parser.buffered() == MIB
    event = parser.next_event()
    assert event.data is body  # no copy
    assert parser.buffered() == 0
    assert parser.body_complete()
    assert isinstance(parser.next_event(), parser_mod.EndOfMessage)


def test_each_read_of_a_body_is_passed_through(parser_mod: ModuleType) -> None:
    body = body_of(MIB)
    parser = started(parser_mod, head(MIB))
    reads = [body[start : start + 64 * KIB] for start in range(0, MIB, 64 * KIB)]
    for index, read in enumerate(reads):
        parser.feed(read)
        event = parser.next_event()
        assert event.data is read
        assert parser.body_complete() == (index == len(reads) - 1)
    assert isinstance(parser.next_event(), parser_mod.EndOfMessage)


def test_reads_that_waited_are_joined_into_one_piece(parser_mod: ModuleType) -> None:
    # As bytes from the buffer always were: everything received so far comes as one Data.
    body = body_of(MIB)
    parser = started(parser_mod, head(MIB + 10))
    for start in range(0, MIB, 64 * KIB):
        parser.feed(body[start : start + 64 * KIB])
    assert parser.buffered() == MIB
    event = parser.next_event()
    assert event.data == body
    assert parser.next_event() is None
    assert not parser.body_complete()
    parser.feed(b"0123456789")
    assert [e.data for e in drain(parser)[:1]] == [b"0123456789"]


def test_body_start_after_the_head_then_whole_reads(parser_mod: ModuleType) -> None:
    body = body_of(200 * KIB)
    raw = head(len(body)) + body
    parser = parser_mod.RequestParser()
    first, second = raw[: 64 * KIB], raw[64 * KIB :]
    parser.feed(first)
    events = drain(parser)
    assert [type(e).__name__ for e in events] == ["Request", "Data"]
    assert events[1].data == first[len(head(len(body))) :]
    parser.feed(second)
    events = drain(parser)
    assert events[0].data is second
    assert isinstance(events[1], parser_mod.EndOfMessage)


def test_body_end_and_next_request_in_one_read(parser_mod: ModuleType) -> None:
    body = body_of(300 * KIB)
    following = head(5, b"/two") + b"hello" + corpus.get(target=b"/three")
    parser = started(parser_mod, head(len(body)))
    parser.feed(body[: 100 * KIB])
    assert parser.next_event().data == body[: 100 * KIB]
    read = body[100 * KIB :] + following
    parser.feed(read)
    assert parser.buffered() == len(read)
    events = drain(parser)
    assert [type(e).__name__ for e in events] == ["Data", "EndOfMessage"]
    assert events[0].data == body[100 * KIB :]
    assert parser.paused()
    assert parser.buffered() == len(following)  # the next requests wait, unparsed
    parser.start_next_request()
    events = drain(parser)
    assert events[0].target == b"/two"
    assert [e.data for e in events[1:-1]] == [b"hello"]
    parser.start_next_request()
    assert drain(parser)[0].target == b"/three"
    assert parser.buffered() == 0


def test_body_ends_in_a_later_waiting_read(parser_mod: ModuleType) -> None:
    body = body_of(150 * KIB)
    following = corpus.get(target=b"/next")
    parser = started(parser_mod, head(len(body)))
    reads = [body[: 64 * KIB], body[64 * KIB : 128 * KIB], body[128 * KIB :] + following[:7]]
    for read in reads:
        parser.feed(read)
    parser.feed(following[7:])
    assert parser.buffered() == len(body) + len(following)
    events = drain(parser)
    assert events[0].data == body
    assert isinstance(events[1], parser_mod.EndOfMessage)
    assert parser.buffered() == len(following)
    parser.start_next_request()
    assert drain(parser)[0].target == b"/next"


def test_body_ends_exactly_at_the_end_of_a_waiting_read(parser_mod: ModuleType) -> None:
    body = body_of(128 * KIB)
    following = corpus.get(target=b"/next")
    parser = started(parser_mod, head(len(body)))
    parser.feed(body[: 64 * KIB])
    parser.feed(body[64 * KIB :])
    parser.feed(following)
    events = drain(parser)
    assert events[0].data == body
    assert isinstance(events[1], parser_mod.EndOfMessage)
    parser.start_next_request()
    assert drain(parser)[0].target == b"/next"


def test_a_fed_bytearray_is_copied(parser_mod: ModuleType, build: Any) -> None:
    parser = started(parser_mod, head(64 * KIB))
    data = bytearray(b"abcd" * 16 * KIB)
    if build.compiled:  # the compiled feed() takes bytes only, as asyncio and uvloop give
        with pytest.raises(TypeError):
            parser.feed(data)
        return
    parser.feed(data)
    data[:4] = b"wxyz"
    event = parser.next_event()
    assert event.data == b"abcd" * 16 * KIB and type(event.data) is bytes


@pytest.mark.parametrize("size", [KIB, 64 * KIB])
def test_take_buffered_returns_waiting_reads_in_order(parser_mod: ModuleType, size: int) -> None:
    parser = started(parser_mod, head(10 * size))
    parser.feed(b"a" * size)
    parser.feed(b"b" * size)
    assert parser.buffered() == 2 * size
    assert parser.take_buffered() == b"a" * size + b"b" * size
    assert parser.buffered() == 0
    parser.feed(b"c" * size)
    assert parser.next_event().data == b"c" * size


def test_small_reads_go_through_the_buffer(parser_mod: ModuleType) -> None:
    parser = started(parser_mod, head(4 * KIB))
    parts = [b"%d" % i * KIB for i in range(4)]
    for part in parts:
        parser.feed(part)
    assert parser.next_event().data == b"".join(parts)
    assert parser.body_complete()


# -- a large read that starts with a head -----------------------------------------------------


def test_head_and_body_in_one_large_read(parser_mod: ModuleType) -> None:
    body = body_of(100 * KIB)
    parser = parser_mod.RequestParser()
    parser.feed(head(len(body)) + body)
    assert parser.buffered() == len(head(len(body))) + len(body)
    request = parser.next_event()
    assert request.content_length == len(body)
    assert parser.buffered() == len(body)
    assert parser.next_event().data == body
    assert isinstance(parser.next_event(), parser_mod.EndOfMessage)
    assert parser.buffered() == 0


def test_head_body_and_more_requests_in_one_large_read(parser_mod: ModuleType) -> None:
    body = body_of(20 * KIB)
    following = corpus.get(target=b"/two") + head(3, b"/three") + b"abc"
    parser = parser_mod.RequestParser()
    parser.feed(head(len(body)) + body + following)
    events = drain(parser)
    assert [type(e).__name__ for e in events] == ["Request", "Data", "EndOfMessage"]
    assert events[1].data == body
    assert parser.buffered() == len(following)
    parser.start_next_request()
    assert [type(e).__name__ for e in drain(parser)] == ["Request", "EndOfMessage"]
    parser.start_next_request()
    assert [e.data for e in drain(parser)[1:-1]] == [b"abc"]


@pytest.mark.parametrize(
    "first",
    [
        corpus.get(target=b"/get"),  # no body: what follows is parsed from the buffer
        chunked_head() + b"5\r\nhello\r\n0\r\n\r\n",  # chunk-size lines too
    ],
    ids=["no-body", "chunked"],
)
def test_large_read_after_a_head_without_length_body(parser_mod: ModuleType, first: bytes) -> None:
    following = head(20 * KIB, b"/next") + b"z" * 20 * KIB
    parser = parser_mod.RequestParser()
    parser.feed(first + following)
    events = drain(parser)
    assert isinstance(events[-1], parser_mod.EndOfMessage)
    assert parser.buffered() == len(following)
    parser.start_next_request()
    events = drain(parser)
    assert events[0].target == b"/next"
    assert b"".join(e.data for e in events[1:-1]) == b"z" * 20 * KIB


@pytest.mark.parametrize(
    "raw",
    [
        b"\r\n\r\n" + head(20 * KIB) + b"y" * 20 * KIB,  # empty lines before the request line
        head(40 * KIB)[:-2],  # the head isn't complete yet
    ],
    ids=["empty-lines", "incomplete"],
)
def test_large_read_the_usual_path_handles(parser_mod: ModuleType, raw: bytes) -> None:
    raw += b"x" * (20 * KIB)  # a long field value keeps an incomplete head incomplete
    parser = parser_mod.RequestParser(limit_request_head=1 << 20, limit_request_field_size=1 << 20)
    parser.feed(raw)
    events = drain(parser)
    whole = parser_mod.RequestParser(limit_request_head=1 << 20, limit_request_field_size=1 << 20)
    for index in range(0, len(raw), 1000):  # small reads: the buffer from the start
        whole.feed(raw[index : index + 1000])
    expected = drain(whole)
    assert summary(events) == summary(expected)
    assert parser.buffered() == whole.buffered()


def test_large_read_with_a_head_over_the_limit(parser_mod: ModuleType) -> None:
    raw = corpus.head(b"GET / HTTP/1.1", corpus.HOST, b"X-Big: " + b"v" * 5000) + b"x" * 20 * KIB
    parser = parser_mod.RequestParser(limit_request_head=4096, limit_request_field_size=8190)
    parser.feed(raw)
    with pytest.raises(parser_mod.ParseError) as error:
        parser.next_event()
    assert error.value.status == 431


def test_nothing_is_kept_after_an_error(parser_mod: ModuleType) -> None:
    parser = started(parser_mod, chunked_head())
    parser.feed(b"zz\r\n")
    with pytest.raises(parser_mod.ParseError):
        parser.next_event()
    parser.feed(b"x" * KIB)
    with pytest.raises(parser_mod.ParseError):
        parser.next_event()


# -- chunked ----------------------------------------------------------------------------------


def test_a_read_that_is_all_chunk_data_is_passed_through(parser_mod: ModuleType) -> None:
    body = body_of(MIB)
    parser = started(parser_mod, chunked_head() + b"%x\r\n" % MIB)
    assert parser.next_event() is None
    parser.feed(body[: 64 * KIB])
    assert parser.next_event().data == body[: 64 * KIB]
    rest = body[64 * KIB :]
    parser.feed(rest)
    assert parser.next_event().data is rest
    parser.feed(b"\r\n0\r\n\r\n")
    assert [type(e).__name__ for e in drain(parser)] == ["EndOfMessage"]


def test_chunk_end_size_line_and_next_chunk_in_one_read(parser_mod: ModuleType) -> None:
    first, second = body_of(100 * KIB, 1), body_of(100 * KIB, 2)
    parser = started(parser_mod, chunked_head() + b"%x\r\n" % len(first))
    parser.feed(first[: 50 * KIB])
    assert parser.next_event().data == first[: 50 * KIB]
    parser.feed(first[50 * KIB :] + b"\r\n%x;ext=1\r\n" % len(second) + second[:10])
    assert parser.next_event().data == first[50 * KIB :] + second[:10]
    rest = second[10:]
    parser.feed(rest)
    assert parser.next_event().data is rest
    parser.feed(b"\r\n0\r\nx-trailer: yes\r\n\r\n" + corpus.get(target=b"/next"))
    assert [type(e).__name__ for e in drain(parser)] == ["EndOfMessage"]
    parser.start_next_request()
    assert drain(parser)[0].target == b"/next"


def test_chunked_body_limit_still_applies(parser_mod: ModuleType) -> None:
    parser = started(parser_mod, chunked_head() + b"10000\r\n", limit_request_body=100 * KIB)
    assert parser.next_event() is None
    parser.feed(b"x" * 64 * KIB)
    assert len(parser.next_event().data) == 64 * KIB
    parser.feed(b"\r\n10000\r\n")
    with pytest.raises(parser_mod.ParseError) as error:
        parser.next_event()
    assert error.value.status == 413


def test_content_length_limit_still_applies(parser_mod: ModuleType) -> None:
    parser = parser_mod.RequestParser(limit_request_body=MIB - 1)
    parser.feed(head(MIB))
    with pytest.raises(parser_mod.ParseError) as error:
        parser.next_event()
    assert error.value.status == 413


# -- any cut, any drain points ----------------------------------------------------------------


def pipelined_uploads() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Several uploads on one connection: (raw bytes, [(target, body)])."""
    expected = []
    raw = b""
    for index, size in enumerate([300 * KIB, 0, 70 * KIB, 5, 129 * KIB]):
        body = body_of(size, index)
        target = b"/cl%d" % index
        raw += head(size, target) + body
        expected.append((target, body))
        target = b"/te%d" % index
        raw += chunked_head(target)
        pos = 0
        rng = random.Random(index)
        while pos < size:
            step = rng.choice([1, 100, 8 * KIB, 64 * KIB, 100 * KIB])
            piece = body[pos : pos + step]
            raw += b"%x\r\n" % len(piece) + piece + b"\r\n"
            pos += step
        raw += b"0\r\n\r\n"
        expected.append((target, body))
    return raw, expected


@pytest.mark.parametrize("seed", range(8))
def test_uploads_survive_any_cut_and_any_drain_points(parser_mod: ModuleType, seed: int) -> None:
    raw, expected = pipelined_uploads()
    rng = random.Random(seed)
    parser = parser_mod.RequestParser()
    got: list[tuple[bytes, bytes]] = []
    parts: list[bytes] = []
    unparsed = 0  # bytes fed and not yet turned into events, by this test's own count
    pos = 0
    while pos < len(raw):
        step = rng.choice([1, 7, 1000, 16 * KIB, 64 * KIB, 256 * KIB])
        piece = raw[pos : pos + step]
        pos += len(piece)
        parser.feed(piece)
        unparsed += len(piece)
        assert parser.buffered() <= unparsed
        if rng.random() < 0.3 and pos < len(raw):
            continue  # let reads pile up before the next drain
        while True:
            event = parser.next_event()
            if event is None:
                break
            if isinstance(event, parser_mod.Request):
                target = event.target
            elif isinstance(event, parser_mod.Data):
                assert type(event.data) is bytes and event.data
                parts.append(event.data)
            else:
                got.append((target, b"".join(parts)))
                parts = []
                parser.start_next_request()
        unparsed = parser.buffered()
    assert got == expected
    assert parser.buffered() == 0
