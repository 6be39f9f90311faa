"""Property tests for the request parser (hypothesis).

* Requests built from generated tokens, values and bodies come back exactly as they were built,
  however the bytes are cut.
* Arbitrary bytes, and corpus cases with a few bytes mutated, end in events or a ParseError
  carrying one of the statuses esg answers with; never in any other exception.  The compiled
  and pure builds reach the same result.
* Memory stays bounded: a head that trickles in one byte at a time is refused with 431 before
  70 KiB have been fed.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from conformance import cases as corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esg import _compiled

STATUSES = {400, 413, 414, 417, 431, 501, 505}
PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def parser_mod(build: Any) -> ModuleType:
    module: ModuleType = build.module("esg.http.parser")
    return module


# -- generated valid requests ---------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%/"
# Fields with framing or connection meaning are added by the generator itself.
RESERVED_NAMES = {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect"}

tokens = st.text(TCHAR, min_size=1, max_size=12).map(str.encode)
methods = tokens.filter(lambda m: m != b"CONNECT")
field_names = tokens.filter(lambda n: n.lower() not in RESERVED_NAMES)
field_words = st.binary(min_size=1, max_size=12).map(
    lambda word: bytes(b for b in word if 0x21 <= b <= 0x7E or b >= 0x80) or b"w"
)
ows = st.text(" \t", max_size=3).map(str.encode)
targets = st.builds(
    lambda path, query: b"/" + path + (b"?" + query if query is not None else b""),
    st.text(PCHAR, max_size=30).map(str.encode),
    st.none() | st.text(PCHAR + "?", max_size=20).map(str.encode),
)
hosts = st.builds(
    lambda name, port: name + (b":%d" % port if port is not None else b""),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=20).map(str.encode),
    st.none() | st.integers(0, 65535),
)


@st.composite
def field_values(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(the bytes sent, the value esg must report): inner SP/HTAB kept, outer OWS trimmed."""
    words = draw(st.lists(field_words, max_size=4))
    value = b""
    for index, word in enumerate(words):
        value += (draw(st.text(" \t", min_size=1, max_size=2)).encode() if index else b"") + word
    return draw(ows) + value + draw(ows), value


@st.composite
def chunk_extensions(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(tokens, max_size=2))
    quoted = st.text(PCHAR + " ", max_size=8).map(lambda text: b'"%s"' % text.encode())
    values = st.none() | tokens | quoted
    return b"".join(b";" + name + (b"=" + v if (v := draw(values)) else b"") for name in names)


@dataclass
class Built:
    raw: bytes
    method: bytes
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


@st.composite
def valid_requests(draw: st.DrawFn) -> Built:
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    method, target, body = draw(methods), draw(targets), draw(st.binary(max_size=100))
    lines: list[bytes] = []
    headers: list[tuple[bytes, bytes]] = []

    def add(name: bytes, sent: bytes, value: bytes) -> None:
        lines.append(name + b":" + sent)
        headers.append((name.lower(), value))

    if version == "1.1":
        host = draw(hosts)
        add(b"Host", draw(ows) + host, host)
    for name, (sent, value) in draw(st.lists(st.tuples(field_names, field_values()), max_size=8)):
        add(name, sent, value)
    connection = draw(st.sampled_from([None, b"close", b"keep-alive"]))
    if connection is not None:
        add(b"Connection", b" " + connection, connection)
    chunked = version == "1.1" and draw(st.booleans())
    if chunked:
        add(b"Transfer-Encoding", b" chunked", b"chunked")
        encoded = encode_chunked(draw, body)
    else:
        if body or draw(st.booleans()):
            add(b"Content-Length", b" %d" % len(body), b"%d" % len(body))
        encoded = body
    keep_alive = connection != b"close" and (version == "1.1" or connection == b"keep-alive")
    raw = corpus.head(b"%s %s HTTP/%s" % (method, target, version.encode()), *lines) + encoded
    return Built(raw, method, target, version, headers, body, keep_alive)


def encode_chunked(draw: st.DrawFn, body: bytes) -> bytes:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=4)))
    pieces = [piece for piece in corpus.split_at(body, cuts) if piece]
    encoded = b"".join(b"%x%s\r\n%s\r\n" % (len(p), draw(chunk_extensions()), p) for p in pieces)
    trailers = draw(st.lists(st.tuples(field_names, field_values()), max_size=2))
    return encoded + b"0\r\n" + b"".join(n + b":" + v + b"\r\n" for n, (v, _) in trailers) + b"\r\n"


def split_at(raw: bytes, cuts: list[int]) -> list[bytes]:
    pieces: list[bytes] = corpus.split_at(raw, {cut % (len(raw) + 1) for cut in cuts})
    return pieces


@PROPERTY_SETTINGS
@given(st.lists(valid_requests(), min_size=1, max_size=3), st.lists(st.integers(0, 10**6)))
def test_generated_requests_are_read_back_exactly(
    parser_mod: ModuleType, requests: list[Built], cuts: list[int]
) -> None:
    raw = b"".join(request.raw for request in requests)
    case = corpus.Case("generated", raw, ())
    outcome = corpus.replay(parser_mod, case, split_at(raw, cuts))
    assert outcome.error is None
    assert [m.complete for m in outcome.messages] == [True] * len(requests)
    for message, built in zip(outcome.messages, requests, strict=True):
        head = message.head
        assert (head["method"], head["target"], head["http_version"]) == (
            built.method,
            built.target,
            built.version,
        )
        assert list(head["headers"]) == built.headers
        assert bytes(message.body) == built.body
        assert head["keep_alive"] == built.keep_alive
        assert head["raw_path"] == built.target.partition(b"?")[0]
        assert head["query_string"] == built.target.partition(b"?")[2]


# -- arbitrary and mutated bytes ------------------------------------------------------------


@st.composite
def mutated_cases(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(corpus.CASES)).raw[:2000])
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([0, 9, 10, 13, 32, 34, 44, 58, 59, 0x0B, 0x7F, 0x85, 0xA0]))
        if action == "insert":
            raw.insert(position, byte)
        elif position < len(raw):
            raw[position : position + 1] = b"" if action == "delete" else bytes([byte])
    return bytes(raw)


noise = (
    st.binary(max_size=300)
    | mutated_cases()
    | st.builds(
        lambda start, tail: start + tail,
        st.sampled_from([b"GET / HTTP/1.1\r\nHost: a\r\n", b"POST / HTTP/1.1\r\nHost: a\r\n"]),
        st.binary(max_size=200),
    )
)


def outcome_of(parser_mod: ModuleType, raw: bytes, cuts: list[int]) -> Any:
    """Replay ``raw`` then EOF.  Only ParseError may escape the parser (the driver catches it);
    anything else propagates and fails the test."""
    case = corpus.Case("noise", raw, (), eof=True)
    outcome = corpus.replay(parser_mod, case, split_at(raw, cuts))
    assert outcome.error is None or outcome.error in STATUSES
    return outcome


@PROPERTY_SETTINGS
@given(noise, st.lists(st.integers(0, 10**6), max_size=8))
def test_any_bytes_give_events_or_a_parse_error(
    parser_mod: ModuleType, raw: bytes, cuts: list[int]
) -> None:
    outcome_of(parser_mod, raw, cuts)


def full_record(outcome: Any) -> tuple[Any, ...]:
    return tuple((m.head, bytes(m.body), m.complete) for m in outcome.messages), outcome.error


COMPILED = None if _compiled.NO_EXTENSIONS else _compiled.load_compiled("esg.http.parser")


@pytest.mark.skipif(COMPILED is None, reason="compiled parser not built or disabled")
@PROPERTY_SETTINGS
@given(noise, st.lists(st.integers(0, 10**6), max_size=8))
def test_compiled_and_pure_builds_agree(raw: bytes, cuts: list[int]) -> None:
    compiled, pure = COMPILED, importlib.import_module("esg.http.parser")
    assert compiled is not None
    assert full_record(outcome_of(compiled, raw, cuts)) == full_record(outcome_of(pure, raw, cuts))


# -- memory bound -----------------------------------------------------------------------------

KIB = 1024
TRICKLING_HEADS = {
    "fields_of_8000_bytes": b"X-Big: " + b"v" * 8000 + b"\r\n",
    "small_fields": b"X-Small: value\r\n",
    "one_endless_value": b"v" * 8000,
}


@pytest.mark.parametrize("unit", TRICKLING_HEADS.values(), ids=TRICKLING_HEADS.keys())
def test_trickling_head_is_refused_before_70_kib(parser_mod: ModuleType, unit: bytes) -> None:
    # Raise the field-count limit so the 64 KiB head limit is what must stop the small fields.
    parser = parser_mod.RequestParser(limit_request_fields=100_000)
    start = b"GET / HTTP/1.1\r\n"
    stream = start + (b"Host: a\r\nX-Endless: " if unit[:1] == b"v" else b"")
    stream += unit * (80 * KIB // len(unit) + 1)
    fed = 0
    with pytest.raises(parser_mod.ParseError) as error:
        for byte in range(len(stream)):
            parser.feed(stream[byte : byte + 1])
            fed += 1
            assert parser.next_event() is None
    assert error.value.status == 431
    assert fed < 70 * KIB
