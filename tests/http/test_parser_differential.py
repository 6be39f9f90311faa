"""Differential testing of esg's request parser against h11 and llhttp (through httptools), the
way HTTP Garden does it.

Inputs are the valid requests of the conformance corpus and generated requests
(tests/conformance/mutations.py), as they are and after HTTP Garden's mutation operators: byte
insert/delete/replace, CR/LF/NUL/SP/HTAB insertion, field duplication and chunk re-splitting.
Each input is read whole by esg (both builds) and by each peer, and the verdicts are compared:
the same complete requests (method, target, version, fields, body, keep-alive) and the same
answer to whatever follows them (refused, or not).

Before comparing, representations are made alike (none of this is a verdict): field names
lowercased and trailing SP/HTAB dropped from values (llhttp keeps both as sent; RFC 9110 5.5
leaves OWS out of the value); Content-Length fields with one identical value merged and
Transfer-Encoding values lowercased (h11 rewrites both); Host left out after an absolute-form
target (RFC 9112 3.2.2: esg replaces it with the target's authority); trailer fields left out
(esg drops them, httptools reports them as header fields).  Messages after one that closes the
connection, or after llhttp switches protocols, are not compared: nothing more is read.

Every remaining disagreement must belong to a ``Known`` class: a predicate over the input and
both verdicts, the RFC clause behind esg's answer, and example inputs.  The list is exact:
``test_every_known_class_still_happens`` fails for a class whose examples stop disagreeing (or
fall into another class), and tests/conformance/README.md must carry every class.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import h11
import httptools
import pytest
from conformance import cases as corpus
from conformance import mutations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CONFORMANCE_DIR = Path(__file__).resolve().parent.parent / "conformance"


# Seeds: the corpus' valid cases (read with esg's default limits, which the peers lack).
SEEDS = [case.raw for case in corpus.CASES if case.valid and not case.limits]
PEERS = ("h11", "llhttp")
DIFF_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- verdicts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    method: bytes
    target: bytes
    version: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    keep_alive: bool


@dataclass
class Verdict:
    """Complete messages in order, then the error (None: accepted so far, or waiting)."""

    messages: list[Message] = field(default_factory=list)
    error: str | None = None
    switched: bool = False  # llhttp switched protocols after the last message
    # esg only: (head end, message end) per Request emitted, the last one maybe unfinished.
    spans: list[tuple[int, int]] = field(default_factory=list)

    def comparable(self) -> Verdict:
        """Up to the message after which the connection reads nothing more."""
        for index, message in enumerate(self.messages):
            if not message.keep_alive:
                return Verdict(self.messages[: index + 1])
        return self


def esg_verdict(parser_mod: ModuleType, raw: bytes) -> Verdict:
    parser = parser_mod.RequestParser()
    verdict = Verdict()
    request: Any = None
    body = bytearray()
    try:
        parser.feed(raw)
        while True:
            event = parser.next_event()
            if event is None:
                if not parser.paused():
                    break
                parser.start_next_request()
            elif isinstance(event, parser_mod.Request):
                request, body = event, bytearray()
                verdict.spans.append((len(raw) - parser.buffered(), len(raw)))
            elif isinstance(event, parser_mod.Data):
                body += event.data
            else:
                headers = tuple((bytes(n), bytes(v)) for n, v in request.headers)
                method, target, version = request.method, request.target, request.http_version
                message = Message(method, target, version, headers, bytes(body), request.keep_alive)
                verdict.messages.append(message)
                verdict.spans[-1] = (verdict.spans[-1][0], len(raw) - parser.buffered())
    except parser_mod.ParseError as exc:
        verdict.error = f"{exc.status} {exc.reason}"
    return verdict


def h11_verdict(raw: bytes) -> Verdict:
    """Serve ``raw`` with h11, answering each request so that the next one can be read."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    verdict = Verdict()
    request: Any = None
    body = bytearray()
    try:
        conn.receive_data(raw)
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                request, body = event, bytearray()
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
                conn.send(h11.EndOfMessage())
                keep_alive = conn.our_state is h11.DONE and conn.their_state is h11.DONE
                headers = tuple((bytes(n), bytes(v)) for n, v in request.headers)
                method, target = bytes(request.method), bytes(request.target)
                version = request.http_version.decode()
                verdict.messages.append(
                    Message(method, target, version, headers, bytes(body), keep_alive)
                )
                if not keep_alive:
                    break
                conn.start_next_cycle()
            else:
                break
    except h11.ProtocolError as exc:
        verdict.error = str(exc)
    return verdict


class LlhttpRecorder:
    """httptools callbacks collecting complete messages."""

    def __init__(self) -> None:
        self.parser: Any = None
        self.verdict = Verdict()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_head = True
        self.body = bytearray()
        self.head: tuple[bytes, str, bool] = (b"", "", True)

    def on_message_begin(self) -> None:
        self.url, self.headers, self.in_head, self.body = b"", [], True, bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:  # trailer fields arrive here too
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        self.head = (parser.get_method(), parser.get_http_version(), parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method, version, keep_alive = self.head
        headers = tuple(self.headers)
        message = Message(method, self.url, version, headers, bytes(self.body), keep_alive)
        self.verdict.messages.append(message)


def llhttp_verdict(raw: bytes) -> Verdict:
    recorder = LlhttpRecorder()
    recorder.parser = parser = httptools.HttpRequestParser(recorder)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        recorder.verdict.switched = True
    except httptools.HttpParserError as exc:
        recorder.verdict.error = f"{type(exc).__name__}: {exc}"
    return recorder.verdict


PEER_VERDICTS: dict[str, Callable[[bytes], Verdict]] = {
    "h11": h11_verdict,
    "llhttp": llhttp_verdict,
}


def canonical(message: Message) -> Message:
    """One spelling for what parsers may represent differently (see the module docstring)."""
    headers: list[tuple[bytes, bytes]] = []
    merged_length: bytes | None = None
    for name, value in message.headers:
        name, value = name.lower(), value.rstrip(b" \t")
        if name == b"transfer-encoding":
            value = value.lower()
        elif name == b"content-length":
            members = {member.strip(b" \t") for member in value.split(b",")}
            if len(members) == 1:
                value = members.pop()
                if value == merged_length:
                    continue
                merged_length = value
        elif name == b"host" and message.target[:1] not in (b"/", b"*"):
            continue
        headers.append((name, value))
    return Message(
        message.method,
        message.target,
        message.version,
        tuple(headers),
        message.body,
        message.keep_alive,
    )


# -- disagreements ----------------------------------------------------------------------------

MESSAGE_FIELDS = ("method", "target", "version", "headers", "body", "keep_alive")


@dataclass
class Disagreement:
    """Where esg and a peer part: the first message they see differently.

    ``kind`` is "esg rejects" (esg answers an error where the peer reads a message or waits),
    "peer rejects", "esg waits" (the peer completes a message esg still waits on), "peer
    waits", or "differs" (both read message ``index``; ``fields`` name what differs).
    """

    peer: str
    raw: bytes
    kind: str
    index: int
    ours: Verdict
    theirs: Verdict
    parser_mod: ModuleType
    spans: list[tuple[int, int]]
    fields: tuple[str, ...] = ()

    @property
    def esg_error(self) -> str:
        return self.ours.error or ""

    @property
    def peer_error(self) -> str:
        return self.theirs.error or ""

    @property
    def message(self) -> Message | None:
        """esg's message ``index``, if esg read it whole."""
        messages = self.ours.messages
        return messages[self.index] if self.index < len(messages) else None

    @property
    def esg_took_it(self) -> bool:
        """esg read message ``index`` whole or is still reading it: it refused nothing there."""
        return self.message is not None or not self.esg_error

    @property
    def tail(self) -> bytes:
        """The input from where message ``index`` starts."""
        return self.raw[self.spans[self.index - 1][1] :] if self.index else self.raw

    @property
    def head(self) -> bytes:
        """The head of message ``index`` without empty lines before it, up to its blank line."""
        tail = self.tail
        while tail.startswith(b"\r\n"):
            tail = tail[2:]
        end = tail.find(b"\r\n\r\n")
        return tail if end < 0 else tail[: end + 2]

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    @property
    def body(self) -> bytes:
        """The framed body (chunk lines included) of esg's message ``index``, maybe partial."""
        if self.index >= len(self.spans):
            return b""
        head_end, end = self.spans[self.index]
        return self.raw[head_end:end]

    def __str__(self) -> str:
        at = slice(self.index, self.index + 1)
        return (
            f"{self.peer}: {self.kind} at message {self.index} {self.fields or ''}\n"
            f"  input: {self.raw[:600]!r}\n"
            f"  esg: {self.ours.messages[at]} {self.ours.error}\n"
            f"  {self.peer}: {self.theirs.messages[at]} {self.theirs.error}"
        )


def compare(
    parser_mod: ModuleType, peer: str, raw: bytes, ours: Verdict, theirs: Verdict
) -> Disagreement | None:
    spans = ours.spans
    ours = Verdict([canonical(m) for m in ours.messages], ours.error).comparable()
    theirs = Verdict([canonical(m) for m in theirs.messages], theirs.error, theirs.switched)
    theirs = theirs.comparable()
    if theirs.switched and len(ours.messages) >= len(theirs.messages):
        ours = Verdict(ours.messages[: len(theirs.messages)])

    def part(kind: str, index: int, differ: tuple[str, ...] = ()) -> Disagreement:
        return Disagreement(peer, raw, kind, index, ours, theirs, parser_mod, spans, differ)

    for index, (a, b) in enumerate(zip(ours.messages, theirs.messages, strict=False)):
        if a != b:
            differ = tuple(f for f in MESSAGE_FIELDS if getattr(a, f) != getattr(b, f))
            return part("differs", index, differ)
    index = min(len(ours.messages), len(theirs.messages))
    if len(ours.messages) > index:
        return part("peer rejects" if theirs.error is not None else "peer waits", index)
    if len(theirs.messages) > index:
        return part("esg rejects" if ours.error is not None else "esg waits", index)
    if (ours.error is None) != (theirs.error is None):
        return part("esg rejects" if ours.error is not None else "peer rejects", index)
    return None


# -- predicates for the documented classes ----------------------------------------------------

CTL = frozenset([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])
TCHARS = frozenset(mutations.TCHAR)
Predicate = Callable[[Disagreement], bool]


def esg_says(*reasons: str) -> Predicate:
    """esg's error names one of these rules."""
    return lambda d: any(reason in d.esg_error for reason in reasons)


def field_values(head: bytes, name: bytes) -> list[bytes]:
    return re.findall(rb"(?im)^%s:([^\r\n]*)" % re.escape(name), head)


def size_lines(body: bytes) -> list[bytes]:
    """The chunk-size lines of a chunked body esg read (or is reading)."""
    lines, at = [], 0
    while (end := body.find(b"\r\n", at)) >= 0:
        lines.append(body[at:end])
        digits = re.match(rb"[0-9A-Fa-f]*", body[at:end])
        size = int(digits.group() or b"0", 16) if digits else 0
        if size == 0:
            break
        at = end + 2 + size + 2
    return lines


def bare_cr_or_lf(d: Disagreement) -> bool:
    return "Bare" in d.esg_error and re.search(rb"(?<!\r)\n|\r[^\n]", d.tail) is not None


def control_byte_in_value(d: Disagreement) -> bool:
    return "header field value" in d.esg_error and bool(CTL & set(d.head))


def folded_or_indented_field(d: Disagreement) -> bool:
    rule = esg_says("folding", "Whitespace before the first")(d)
    return rule and re.search(rb"\r\n[ \t]", d.head) is not None


def http09_request_line(d: Disagreement) -> bool:
    return "Invalid request line" in d.esg_error and d.request_line.count(b" ") == 1


def request_line_whitespace(d: Disagreement) -> bool:
    return "request line" in d.esg_error and b"  " in d.request_line


def fragment_in_target(d: Disagreement) -> bool:
    return "request target" in d.esg_error and b"#" in d.request_line


def host_count(d: Disagreement) -> bool:
    hosts = len(field_values(d.head, b"host"))
    missing = hosts == 0 and d.request_line.endswith(b" HTTP/1.1")
    return "exactly one Host" in d.esg_error and (hosts > 1 or missing)


def http10_keep_alive(d: Disagreement) -> bool:
    message = d.message
    return (
        d.fields == ("keep_alive",)
        and message is not None
        and message.version == "1.0"
        and message.keep_alive
    )


def connection_close_wins(d: Disagreement) -> bool:
    values = field_values(d.head, b"connection")
    options = {option.strip(b" \t").lower() for value in values for option in value.split(b",")}
    message = d.message
    return (
        d.fields == ("keep_alive",)
        and message is not None
        and not message.keep_alive
        and b"close" in options
    )


def empty_line_first(d: Disagreement) -> bool:
    return d.tail.startswith(b"\r\n") or d.tail == b"\r"


def chunk_extension_bws(d: Disagreement) -> bool:
    lines = size_lines(d.body) if d.esg_took_it else []
    return any(re.search(rb"[ \t][;=]|[;=][ \t]", line) for line in lines)


def long_chunk_size(d: Disagreement) -> bool:
    lines = size_lines(d.body) if d.esg_took_it else []
    return any(len(re.match(rb"[0-9A-Fa-f]*", line).group()) > 20 for line in lines)  # type: ignore[union-attr]


def unlisted_method(d: Disagreement) -> bool:
    method = d.request_line.split(b" ", 1)[0]
    return "method" in d.peer_error.lower() and bool(method) and set(method) <= TCHARS


def repeated_content_length(d: Disagreement) -> bool:
    values = field_values(d.head, b"content-length")
    members = [member.strip(b" \t") for value in values for member in value.split(b",")]
    same = all(m.isdigit() for m in members) and len({int(m) for m in members}) == 1
    return d.esg_took_it and len(members) > 1 and same


def framing_field_in_trailers(d: Disagreement) -> bool:
    decoded = mutations.decode_chunked(d.body) if d.esg_took_it else None
    names = {line.split(b":")[0].lower() for line in decoded[1]} if decoded else set()
    return bool(names & {b"content-length", b"transfer-encoding"})


def ows_after_transfer_encoding(d: Disagreement) -> bool:
    values = field_values(d.head, b"transfer-encoding")
    return d.esg_took_it and any(value.endswith((b" ", b"\t")) for value in values)


def refused_once_complete(d: Disagreement) -> bool:
    """esg still waits where the peer refused; esg refuses too once the line or head ends."""
    if d.esg_error or d.message is not None:
        return False
    tail = d.tail + b"\n" if d.tail.endswith(b"\r") else d.tail
    ends = (b"\r\n", b"\r\n\r\n")
    return any(esg_verdict(d.parser_mod, tail + end).error is not None for end in ends)


# -- the documented classes -------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A class of inputs on which esg and the ``peers`` disagree, and why esg is right.

    Each of ``examples`` must show this disagreement with at least one of ``peers``, and each
    peer must show it on at least one example.
    """

    name: str
    peers: tuple[str, ...]
    kind: str
    rfc: str
    matches: Predicate
    examples: tuple[bytes, ...]

    def explains(self, d: Disagreement) -> bool:
        return d.peer in self.peers and d.kind == self.kind and self.matches(d)


H11, LLHTTP, BOTH = ("h11",), ("llhttp",), PEERS
GET, HOST = corpus.get, corpus.HOST

# fmt: off
KNOWN = [
    # esg answers an error, the peer reads a request (or waits for more).
    Known("bare_cr_or_lf", BOTH, "esg rejects",
          "RFC 9112 2.2: a bare CR MUST be treated as invalid; a bare LF MAY be taken as a line "
          "end, esg refuses it (rows 7, 8)",
          bare_cr_or_lf, (b"GET / HTTP/1.1\nHost: a\n\n", GET() + b"\n" + GET())),
    Known("control_byte_in_a_field_value", H11, "esg rejects",
          "RFC 9110 5.5: a field value is field-vchar, SP and HTAB; no other CTL (row 9)",
          control_byte_in_value, (GET(b"X-A: a\x01b"),)),
    Known("obs_fold_or_whitespace_before_the_first_field", H11, "esg rejects",
          "RFC 9112 5.2: obs-fold MUST be refused or replaced (esg refuses); 2.2: whitespace "
          "before the first field MUST be refused or its line ignored (row 10)",
          folded_or_indented_field, (GET(b"X-A: a", b" b"),)),
    Known("http09_request_line", LLHTTP, "esg rejects",
          "RFC 9112 3: request-line = method SP request-target SP HTTP-version; no HTTP/0.9 "
          "(row 3)",
          http09_request_line, (b"GET /\r\n\r\n",)),
    Known("request_line_whitespace", LLHTTP, "esg rejects",
          "RFC 9112 3: one SP between the request-line's parts; parsing on runs of whitespace is "
          "a MAY, esg answers 400 (row 4)",
          request_line_whitespace, (corpus.head(b"GET  / HTTP/1.1", HOST),)),
    Known("http_version_not_1x", BOTH, "esg rejects",
          "RFC 9112 2.3 / RFC 9110 15.6.6: esg serves HTTP/1.0 and 1.1, 505 for a higher major "
          "version, 400 for HTTP/0.x (row 2)",
          esg_says("HTTP/0.x", "505 "), (corpus.head(b"GET / HTTP/2.0", HOST),)),
    Known("target_form_not_allowed", BOTH, "esg rejects",
          "RFC 9112 3.2: origin-form starts with /, asterisk-form is exactly * and only for "
          "OPTIONS, authority-form only for CONNECT; absolute-form must be an http(s) URI with "
          "a valid authority (RFC 9110 4.2, 4.2.4; RFC 3986 3.2) (row 6)",
          esg_says("Invalid request target", "Asterisk-form", "absolute-form"),
          (corpus.head(b"GET index.html HTTP/1.1", HOST),
           corpus.head(b"GET ftp://a/ HTTP/1.1", HOST))),
    Known("fragment_in_target", BOTH, "esg rejects",
          "RFC 9112 3.2.1: origin-form is absolute-path [ \"?\" query ]; a fragment is never "
          "sent (row 4)",
          fragment_in_target, (GET(target=b"/a#b"),)),
    Known("invalid_host", BOTH, "esg rejects",
          "RFC 9112 3.2: 400 for a Host with an invalid value (RFC 3986 3.2.2 host, 3.2.3 "
          "port) (row 14)",
          esg_says("Invalid Host header"), (corpus.head(b"GET / HTTP/1.1", b"Host: a b"),)),
    Known("missing_or_repeated_host", LLHTTP, "esg rejects",
          "RFC 9112 3.2: 400 for an HTTP/1.1 request without Host or with more than one "
          "(row 14)",
          host_count, (corpus.head(b"GET / HTTP/1.1"), GET(HOST))),
    Known("transfer_coding_not_a_token", LLHTTP, "esg rejects",
          "RFC 9112 6.1 / RFC 9110 10.1.4: Transfer-Encoding is a list of transfer-coding "
          "tokens; anything else is a 400, even before a final chunked (row 22)",
          esg_says("Invalid Transfer-Encoding"), (corpus.with_coding(b"\xe9, chunked"),)),
    Known("chunked_twice", LLHTTP, "esg rejects",
          "RFC 9112 6.1: chunked MUST NOT be applied more than once; such framing is a 400 "
          "(row 20)",
          esg_says("chunked applied twice"), (corpus.with_coding(b"chunked\t", b"chunked"),)),
    Known("transfer_coding_not_implemented", LLHTTP, "esg rejects",
          "RFC 9112 6.1: a server SHOULD answer 501 to a transfer coding it does not "
          "understand (row 20)",
          esg_says("501 Transfer coding"), (corpus.with_coding(b"gzip, chunked"),)),
    Known("unsupported_expectation", BOTH, "esg rejects",
          "RFC 9110 10.1.1: a server MAY answer 417 to an expectation other than 100-continue",
          esg_says("417 "), (GET(b"Expect: later"),)),
    Known("configured_limits", BOTH, "esg rejects",
          "RFC 6585 5 (431), RFC 9110 15.5.14 (413) and 15.5.15 (414): limits esg is "
          "configured with; the peers have none (rows 5, 13, 17, 25)",
          esg_says("413 ", "414 ", "431 "), (GET(*corpus.fields(100)),)),
    Known("chunk_line_outside_the_grammar", BOTH, "esg rejects",
          "RFC 9112 7.1 / 7.1.1: chunk-size [ chunk-ext ] CRLF, chunk-ext-val is a token or a "
          "quoted-string (rows 23, 24)",
          esg_says("Invalid chunk size line"),
          (corpus.chunked_post(b"5\t\r\nhello\r\n0\r\n\r\n"),
           corpus.chunked_post(b"5;a=\r\nhello\r\n0\r\n\r\n"))),
    Known("chunk_size_over_60_bits", BOTH, "esg rejects",
          "RFC 9112 7.1: recipients MUST anticipate large chunk sizes and prevent integer "
          "overflow; esg takes at most 15 significant hex digits (row 23)",
          esg_says("Chunk size too large"),
          (corpus.chunked_post(b"1000000000000000\r\nhello\r\n0\r\n\r\n"),)),
    Known("trailer_field_syntax", H11, "esg rejects",
          "RFC 9112 7.1.2: trailer fields are field lines (RFC 9110 5.5 values, no obs-fold) "
          "(row 26)",
          esg_says("Invalid trailer field"),
          (corpus.chunked_post(corpus.chunks(b"hello", trailers=[b"X-T: 1", b" 2"])),)),
    # Both read the request; they differ on keep-alive.
    Known("http10_keep_alive", H11, "differs",
          "RFC 9112 9.3 / C.2.2: an HTTP/1.0 keep-alive connection persists; h11 always closes "
          "HTTP/1.0",
          http10_keep_alive, (corpus.head(b"GET / HTTP/1.0", b"Connection: keep-alive"),)),
    Known("connection_close_wins", LLHTTP, "differs",
          "RFC 9112 9.6: a server that receives the close option MUST close after its "
          "response, whatever else Connection lists",
          connection_close_wins,
          (corpus.head(b"GET / HTTP/1.0", b"Connection: keep-alive", b"Connection: close"),)),
    # esg reads a request the peer refuses.
    Known("empty_line_before_a_request", H11, "peer rejects",
          "RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request line",
          empty_line_first, (b"\r\n" + GET(),)),
    Known("chunk_extension_bws", BOTH, "peer rejects",
          "RFC 9112 7.1.1: chunk-ext = *( BWS \";\" BWS chunk-ext-name "
          "[ BWS \"=\" BWS chunk-ext-val ] )",
          chunk_extension_bws, (corpus.chunked_post(b"5 ; a = b\r\nhello\r\n0\r\n\r\n"),)),
    Known("chunk_size_with_many_leading_zeros", H11, "peer rejects",
          "RFC 9112 7.1: chunk-size = 1*HEXDIG; leading zeros are digits too (esg bounds the "
          "value to 64 bits and the line's length, h11 the digits to 20)",
          long_chunk_size, (corpus.chunked_post(b"0" * 20 + b"5\r\nhello\r\n0\r\n\r\n"),)),
    Known("method_outside_llhttp_list", LLHTTP, "peer rejects",
          "RFC 9110 9.1: a method is any token; an unknown one is the application's to answer "
          "(501), not the parser's (row 1)",
          unlisted_method, (corpus.head(b"BREW /pot HTTP/1.1", HOST),)),
    Known("repeated_content_length", BOTH, "peer rejects",
          "RFC 9110 8.6: Content-Length values with the same decimal value MAY be replaced by "
          "one (h11 merges identical spellings only, llhttp none) (row 16)",
          repeated_content_length, (corpus.with_length(b"5, 5"), corpus.with_length(b"5, 005"))),
    Known("framing_fields_in_trailers", BOTH, "peer rejects",
          "RFC 9110 6.5.1 / 6.5.2: trailer fields never frame a message; esg drops them "
          "(row 26)",
          framing_field_in_trailers,
          (corpus.chunked_post(corpus.chunks(b"hello", trailers=[b"Content-Length: 50"])),
           corpus.chunked_post(corpus.chunks(b"hello", trailers=[b"Transfer-Encoding: x"])))),
    Known("ows_after_transfer_encoding", LLHTTP, "peer rejects",
          "RFC 9112 5.1: field-line = field-name \":\" OWS field-value OWS; the trailing OWS is "
          "not part of the coding (row 12)",
          ows_after_transfer_encoding, (corpus.with_coding(b"chunked\t"),)),
    Known("peer_refuses_before_the_line_ends", BOTH, "peer rejects",
          "RFC 9112 2.2 leaves open when to refuse: esg checks a head once its blank line "
          "arrives and a chunk line once its CRLF does, and refuses these bytes then (the "
          "limits bound what it buffers meanwhile)",
          refused_once_complete,
          (b"GET / HTTP/1.1\r\nHost: a\r\nX\r\n", b"\x01GET / HTTP/1.1\r\n")),
]
# fmt: on
KNOWN_BY_NAME = {known.name: known for known in KNOWN}
assert len(KNOWN_BY_NAME) == len(KNOWN), "class names must be unique"


def explain(d: Disagreement) -> Known | None:
    """The first documented class the disagreement belongs to."""
    return next((known for known in KNOWN if known.explains(d)), None)


def disagreement(parser_mod: ModuleType, peer: str, raw: bytes) -> Disagreement | None:
    ours, theirs = esg_verdict(parser_mod, raw), PEER_VERDICTS[peer](raw)
    return compare(parser_mod, peer, raw, ours, theirs)


def check(parser_mod: ModuleType, peer: str, raw: bytes) -> Known | None:
    """The documented class of the disagreement on ``raw``, if any; fails if undocumented."""
    d = disagreement(parser_mod, peer, raw)
    if d is None:
        return None
    known = explain(d)
    assert known is not None, f"undocumented disagreement (fix esg or document it):\n{d}"
    return known


# -- tests ------------------------------------------------------------------------------------


@pytest.fixture
def parser_mod(build: Any) -> ModuleType:
    module: ModuleType = build.module("esg.http.parser")
    return module


@pytest.mark.parametrize("peer", PEERS)
def test_valid_corpus_cases_agree_or_are_documented(parser_mod: ModuleType, peer: str) -> None:
    for raw in SEEDS:
        check(parser_mod, peer, raw)


@pytest.mark.parametrize("peer", PEERS)
@DIFF_SETTINGS
@given(rng=st.randoms(use_true_random=False))
def test_generated_requests(parser_mod: ModuleType, peer: str, rng: random.Random) -> None:
    check(parser_mod, peer, mutations.generate_requests(rng))


@pytest.mark.parametrize("peer", PEERS)
@DIFF_SETTINGS
@given(operator=st.sampled_from(sorted(mutations.OPERATORS)), rng=st.randoms(use_true_random=False))
def test_mutated_generated_requests(
    parser_mod: ModuleType, peer: str, operator: str, rng: random.Random
) -> None:
    raw = mutations.OPERATORS[operator](mutations.generate_requests(rng), rng)
    check(parser_mod, peer, mutations.mutate(raw, rng, rng.randint(0, 2)))


@pytest.mark.parametrize("peer", PEERS)
@DIFF_SETTINGS
@given(
    seed=st.sampled_from(SEEDS),
    operator=st.sampled_from(sorted(mutations.OPERATORS)),
    rng=st.randoms(use_true_random=False),
)
def test_mutated_corpus_cases(
    parser_mod: ModuleType, peer: str, seed: bytes, operator: str, rng: random.Random
) -> None:
    raw = mutations.OPERATORS[operator](seed, rng)
    check(parser_mod, peer, mutations.mutate(raw, rng, rng.randint(0, 2)))


def sweep_inputs(count: int, seed: int) -> list[bytes]:
    """A fixed list: the seeds, the classes' examples, then generated and mutated inputs."""
    rng = random.Random(seed)
    inputs = [*SEEDS, *(example for known in KNOWN for example in known.examples)]
    for _ in range(count):
        raw = rng.choice(SEEDS) if rng.random() < 0.4 else mutations.generate_requests(rng)
        inputs.append(mutations.mutate(raw, rng, rng.randint(1, 4)) if rng.random() < 0.9 else raw)
    return inputs


SWEEP = sweep_inputs(3000, seed=9112)


@pytest.mark.parametrize("peer", PEERS)
def test_fixed_seed_sweep(parser_mod: ModuleType, peer: str) -> None:
    """Thousands of mutants, the same on every run: each disagreement is documented, and each
    class documented for this peer is met."""
    hits = Counter(known.name for raw in SWEEP if (known := check(parser_mod, peer, raw)))
    expected = {known.name for known in KNOWN if peer in known.peers}
    assert expected - set(hits) == set()


@pytest.mark.parametrize("known", KNOWN, ids=lambda known: known.name)
def test_every_known_class_still_happens(parser_mod: ModuleType, known: Known) -> None:
    shown: dict[bytes, set[str]] = {example: set() for example in known.examples}
    for example in known.examples:
        for peer in known.peers:
            d = disagreement(parser_mod, peer, example)
            if d is not None and explain(d) is known:
                shown[example].add(peer)
    assert [example for example, peers in shown.items() if not peers] == []
    assert set(known.peers) == set().union(*shown.values())


def test_readme_documents_every_class() -> None:
    readme = (CONFORMANCE_DIR / "README.md").read_text()
    assert [known.name for known in KNOWN if f"`{known.name}`" not in readme] == []


@pytest.mark.parametrize("peer", PEERS)
def test_no_class_excuses_a_framing_difference(parser_mod: ModuleType, peer: str) -> None:
    """The classes are narrow: had esg read another body, or another number of requests, from
    the bytes a peer reads, no class would explain it (a smuggling bug can't hide here)."""
    raw = corpus.chunked_post(corpus.chunks(b"hello")) + corpus.post(b"abc") + GET()
    theirs = PEER_VERDICTS[peer](raw)
    ours = esg_verdict(parser_mod, raw)
    assert compare(parser_mod, peer, raw, ours, theirs) is None
    shorter_body = Verdict(list(ours.messages), spans=ours.spans)
    first = shorter_body.messages[0]
    shorter_body.messages[0] = Message(
        *[getattr(first, f) for f in MESSAGE_FIELDS[:4]], b"hell", True
    )
    one_request_less = Verdict(ours.messages[:2], spans=ours.spans[:2])
    for tampered in (shorter_body, one_request_less):
        d = compare(parser_mod, peer, raw, tampered, theirs)
        assert d is not None and explain(d) is None, d
