"""esg's byte-level conformance corpus for the HTTP/1.1 request parser, and its replay driver.

Each ``Case`` is raw bytes plus the verdict esg must reach: the complete requests it emits and,
for an error case, the status of the ``ParseError`` that ends the connection ("close": the parser
is dead afterwards).  ``rows`` names the rows of docs/security.md's request checklist that a case
guards.  Cases are built with ``ok`` (every request valid), ``bad`` (ends in an error) and ``cut``
(the peer closes mid-message).  ``replay`` feeds the bytes in the given pieces and records what
came out; ``problems`` compares that record with the case.  See README.md beside this file.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

CRLF = b"\r\n"
HOST = b"Host: example.com"


# -- the shape of a case -------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """One request esg must emit.  ``None`` fields and unnamed headers are not checked."""

    method: bytes = b"GET"
    target: bytes = b"/"
    version: str = "1.1"
    # Subset check: for every name listed, the request's values for it are exactly these.
    headers: tuple[tuple[bytes, bytes], ...] = ((b"host", b"example.com"),)
    body: bytes = b""
    keep_alive: bool = True
    raw_path: bytes | None = None
    query_string: bytes | None = None
    expect_continue: bool | None = False
    content_length: int | None | Literal["unchecked"] = "unchecked"
    chunked: bool | None = None


@dataclass(frozen=True)
class Case:
    id: str
    raw: bytes
    requests: tuple[Req, ...]  # complete requests (Request, Data*, EndOfMessage), in order
    errors: tuple[int | None, ...] = (None,)  # acceptable final ParseError statuses
    pending: int = 0  # 1: the last message's head was valid and emitted, its end never is
    eof: bool = False  # call feed_eof() after the bytes
    limits: dict[str, int] = field(default_factory=dict)
    rows: tuple[int, ...] = ()
    note: str = ""

    @property
    def valid(self) -> bool:
        return self.errors == (None,) and self.pending == 0


def ok(id: str, raw: bytes, *requests: Req, rows: tuple[int, ...] = (), **kw: Any) -> Case:
    return Case(id, raw, requests, rows=rows, **kw)


def bad(
    id: str,
    raw: bytes,
    status: int | tuple[int, ...],
    *before: Req,
    rows: tuple[int, ...] = (),
    head_ok: bool = False,
    **kw: Any,
) -> Case:
    """An error case: ``before`` are the valid requests emitted first; ``head_ok`` means the
    failing message's head is valid (the error is in its body), so its Request may reach the app
    but its EndOfMessage never does."""
    errors = status if isinstance(status, tuple) else (status,)
    return Case(id, raw, before, errors, int(head_ok), rows=rows, **kw)


def cut(id: str, raw: bytes, *before: Req, pending: int, rows: tuple[int, ...] = ()) -> Case:
    """The peer closes mid-message: no EndOfMessage for it; a 400 or a quiet None both do."""
    return Case(id, raw, before, (None, 400), pending, eof=True, rows=rows)


# -- byte builders (exact: every CR and LF is spelled out or added here) --------------------


def head(line: bytes, *fields: bytes) -> bytes:
    return line + CRLF + b"".join(f + CRLF for f in fields) + CRLF


def get(*fields: bytes, target: bytes = b"/") -> bytes:
    return head(b"GET " + target + b" HTTP/1.1", HOST, *fields)


def post(body: bytes, *fields: bytes) -> bytes:
    length = b"Content-Length: %d" % len(body)
    return head(b"POST /submit HTTP/1.1", HOST, length, *fields) + body


def chunked_post(encoded: bytes, *fields: bytes) -> bytes:
    return head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding: chunked", *fields) + encoded


def chunks(*pieces: bytes, trailers: Sequence[bytes] = ()) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    return body + b"0\r\n" + b"".join(t + CRLF for t in trailers) + CRLF


def fields(count: int, size: int = 10) -> list[bytes]:
    return [b"X-F%d: %s" % (i, b"v" * size) for i in range(count)]


def POST(body: bytes, **kw: Any) -> Req:
    return Req(b"POST", b"/submit", body=body, content_length=len(body), chunked=False, **kw)


def UPLOAD(body: bytes, **kw: Any) -> Req:
    return Req(b"POST", b"/upload", body=body, content_length=None, chunked=True, **kw)


GET = Req()
BIG = b"a" * 9000
HELLO = chunks(b"hello")


# fmt: off
# -- valid requests -------------------------------------------------------------------------

VALID = [
    ok("get_minimal", get(), Req(raw_path=b"/", query_string=b"", content_length=None,
                                 chunked=False)),
    ok("get_path_and_query", get(target=b"/search/x?q=a%20b&n=1"),
       Req(target=b"/search/x?q=a%20b&n=1", raw_path=b"/search/x", query_string=b"q=a%20b&n=1")),
    ok("get_empty_query", get(target=b"/p?"), Req(target=b"/p?", raw_path=b"/p",
                                                  query_string=b"")),
    ok("head_request", head(b"HEAD /index.html HTTP/1.1", HOST), Req(b"HEAD", b"/index.html")),
    ok("post_content_length", post(b"hello world"), POST(b"hello world")),
    ok("post_content_length_zero", post(b""), POST(b"", )),
    ok("content_length_leading_zeros_are_digits",
       head(b"POST /submit HTTP/1.1", HOST, b"Content-Length: 005") + b"hello",
       POST(b"hello"), rows=(15,)),
    ok("content_length_surrounding_ows_trimmed",
       head(b"POST /submit HTTP/1.1", HOST, b"Content-Length: \t5 ") + b"hello",
       POST(b"hello"), rows=(12, 15)),
    ok("post_binary_body_with_crlf_and_nul", post(b"\x00\r\n\r\n\xff\n\r"),
       POST(b"\x00\r\n\r\n\xff\n\r")),
    ok("body_that_looks_like_a_request_is_only_body",
       post(b"GET /smuggled HTTP/1.1\r\nHost: evil\r\n\r\n"),
       POST(b"GET /smuggled HTTP/1.1\r\nHost: evil\r\n\r\n"), rows=(29,)),
    ok("chunked_body_that_looks_like_a_request_is_only_body",
       chunked_post(chunks(b"GET /smuggled HTTP/1.1\r\nHost: evil\r\n\r\n")),
       UPLOAD(b"GET /smuggled HTTP/1.1\r\nHost: evil\r\n\r\n"), rows=(29,)),
    ok("body_with_request_bytes_then_a_real_request",
       post(b"GET /x HTTP/1.1\r\n\r\n") + get(target=b"/real"),
       POST(b"GET /x HTTP/1.1\r\n\r\n"), Req(target=b"/real"), rows=(29,)),
    ok("eof_after_a_complete_request_is_clean", get(), GET, eof=True, rows=(18,)),
    ok("chunked_simple", chunked_post(chunks(b"hello", b" world")), UPLOAD(b"hello world")),
    ok("chunked_empty_body", chunked_post(b"0\r\n\r\n"), UPLOAD(b"")),
    ok("chunked_hex_sizes_both_cases",
       chunked_post(b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"),
       UPLOAD(b"0123456789abcdefghij")),
    ok("chunked_size_leading_zeros", chunked_post(b"0005\r\nhello\r\n000\r\n\r\n"),
       UPLOAD(b"hello"), rows=(23,)),
    ok("chunked_size_many_leading_zeros_not_significant",
       chunked_post(b"00000000000000000005\r\nhello\r\n0\r\n\r\n"), UPLOAD(b"hello"), rows=(23,)),
    ok("chunked_extensions", chunked_post(
        b'5;name=value\r\nhello\r\n6;flag\r\n world\r\n0;last="q;uo\\"ted"\r\n\r\n'),
       UPLOAD(b"hello world"), rows=(24,)),
    ok("chunked_extension_bws_around_semicolon_and_equals",
       chunked_post(b"5 ; a = b\t;\tc\r\nhello\r\n0\r\n\r\n"), UPLOAD(b"hello"), rows=(24,)),
    ok("chunked_trailers_discarded", chunked_post(chunks(b"hello", trailers=[
        b"X-Checksum: abc", b"X-Other:1"])), UPLOAD(b"hello"), rows=(26,)),
    ok("transfer_encoding_name_case_insensitive",
       head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding: Chunked") + HELLO,
       UPLOAD(b"hello"), rows=(20,)),
    ok("transfer_encoding_leading_tab_is_ows",
       head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding:\tchunked") + HELLO,
       UPLOAD(b"hello"), rows=(22,)),
    ok("chunked_tiny_chunk_flood", chunked_post(b"1\r\na\r\n" * 4000 + b"0\r\n\r\n"),
       UPLOAD(b"a" * 4000), rows=(25,)),
    ok("pipelined_get_get", get(target=b"/one") + get(target=b"/two"),
       Req(target=b"/one"), Req(target=b"/two"), rows=(27, 28)),
    ok("pipelined_post_then_get", post(b"abc") + get(), POST(b"abc"), GET, rows=(27,)),
    ok("pipelined_chunked_then_get", chunked_post(HELLO) + get(), UPLOAD(b"hello"), GET),
    ok("pipelined_ten_requests", b"".join(get(target=b"/%d" % i) for i in range(10)),
       *(Req(target=b"/%d" % i) for i in range(10)), rows=(28,)),
    ok("trailer_content_length_never_changes_framing",
       chunked_post(chunks(b"hello", trailers=[b"Content-Length: 50"])) + get(),
       UPLOAD(b"hello"), GET, rows=(26,)),
    ok("trailer_transfer_encoding_never_changes_framing",
       chunked_post(chunks(b"hello", trailers=[b"Transfer-Encoding: chunked"])) + get(),
       UPLOAD(b"hello"), GET, rows=(26,)),
    ok("http10_default_close", head(b"GET / HTTP/1.0"),
       Req(version="1.0", headers=(), keep_alive=False)),
    ok("http10_keep_alive", head(b"GET / HTTP/1.0", b"Connection: keep-alive"),
       Req(version="1.0", headers=(), keep_alive=True)),
    ok("http10_keep_alive_pipelined", head(b"GET /a HTTP/1.0", b"Connection: Keep-Alive")
       + head(b"POST /b HTTP/1.0", b"Content-Length: 2") + b"hi",
       Req(target=b"/a", version="1.0", headers=()),
       Req(b"POST", b"/b", "1.0", (), b"hi", keep_alive=False, content_length=2)),
    ok("empty_line_before_the_request_line_ignored", b"\r\n" + get(), GET),
    ok("empty_line_after_a_body_ignored", post(b"abc") + b"\r\n" + get(), POST(b"abc"), GET),
    ok("http11_connection_keep_alive", get(b"Connection: keep-alive"), Req(keep_alive=True)),
    ok("http11_connection_close", get(b"Connection: close"), Req(keep_alive=False)),
    ok("connection_close_in_a_list_any_case", get(b"Connection: Upgrade, Close"),
       Req(keep_alive=False)),
    ok("absolute_form_uses_target_authority",
       head(b"GET http://example.org:8080/path?x=1 HTTP/1.1", b"Host: example.org:8080"),
       Req(target=b"http://example.org:8080/path?x=1", raw_path=b"/path", query_string=b"x=1",
           headers=((b"host", b"example.org:8080"),)), rows=(6,)),
    ok("absolute_form_host_replaced_by_authority",
       head(b"GET https://example.org/p HTTP/1.1", b"Host: other.example"),
       Req(target=b"https://example.org/p", raw_path=b"/p",
           headers=((b"host", b"example.org"),)), rows=(6,)),
    ok("options_asterisk", head(b"OPTIONS * HTTP/1.1", HOST),
       Req(b"OPTIONS", b"*", raw_path=b"*"), rows=(6,)),
    ok("custom_method_tokens", head(b"PROPFIND /d HTTP/1.1", HOST)
       + head(b"x!#$%&'*+-.^_`|~9 /e HTTP/1.1", HOST) + head(b"get /f HTTP/1.1", HOST),
       Req(b"PROPFIND", b"/d"), Req(b"x!#$%&'*+-.^_`|~9", b"/e"), Req(b"get", b"/f"), rows=(1,)),
    ok("obs_text_value_kept_as_is", get(b"X-Name: \xa0value\x85", b"X-Cafe: caf\xe9"),
       Req(headers=((b"x-name", b"\xa0value\x85"), (b"x-cafe", b"caf\xe9"))), rows=(12,)),
    ok("value_sp_htab_trimmed_inner_kept", get(b"X-A: \t a \t b \t", b"X-B:value"),
       Req(headers=((b"x-a", b"a \t b"), (b"x-b", b"value"))), rows=(12,)),
    ok("empty_header_values", get(b"X-Empty:", b"X-Blank: \t "),
       Req(headers=((b"x-empty", b""), (b"x-blank", b"")))),
    ok("header_names_lowercased_order_and_repeats_kept",
       get(b"X-MiXeD: 1", b"x-mixed: 2", b"Accept: */*"),
       Req(headers=((b"x-mixed", b"1"), (b"x-mixed", b"2"), (b"accept", b"*/*")))),
    ok("fields_at_the_count_limit", get(*fields(99)),
       Req(headers=((b"x-f98", b"v" * 10),)), rows=(13,)),
    ok("field_just_under_the_size_limit", get(b"X-Big: " + b"v" * 8000),
       Req(headers=((b"x-big", b"v" * 8000),)), rows=(13,)),
    ok("request_line_just_under_the_limit", get(target=b"/" + b"p" * 8000),
       Req(target=b"/" + b"p" * 8000), rows=(5,)),
    ok("head_just_under_the_limit", get(*fields(7, 8000)), Req(), rows=(13,)),
    ok("expect_100_continue", post(b"hello", b"Expect: 100-continue"),
       POST(b"hello", expect_continue=True)),
    ok("expect_100_continue_case_insensitive", post(b"hello", b"Expect: 100-Continue"),
       POST(b"hello", expect_continue=True)),
    ok("expect_100_continue_ignored_in_http10",
       head(b"POST / HTTP/1.0", b"Content-Length: 2", b"Expect: 100-continue") + b"hi",
       Req(b"POST", b"/", "1.0", (), b"hi", False, content_length=2, expect_continue=False)),
    ok("identical_content_lengths_merged",
       head(b"POST /submit HTTP/1.1", HOST, b"Content-Length: 5", b"Content-Length: 5") + b"hello",
       POST(b"hello"), rows=(16,)),
    ok("identical_content_length_list_merged",
       head(b"POST /submit HTTP/1.1", HOST, b"Content-Length: 5, 5") + b"hello",
       POST(b"hello"), rows=(16,)),
    ok("host_ipv6_literal_with_port", head(b"GET / HTTP/1.1", b"Host: [::1]:8000"),
       Req(headers=((b"host", b"[::1]:8000"),)), rows=(14,)),
    ok("host_empty_value_allowed", head(b"GET / HTTP/1.1", b"Host:"),
       Req(headers=((b"host", b""),)), rows=(14,)),
    ok("host_with_port", head(b"GET / HTTP/1.1", b"Host: example.com:80"),
       Req(headers=((b"host", b"example.com:80"),)), rows=(14,)),
    ok("tab_inside_a_value", get(b"X-Tab: a\tb"), Req(headers=((b"x-tab", b"a\tb"),)),
       rows=(9,)),
    ok("body_limit_exactly_reached", post(b"0123456789"), POST(b"0123456789"),
       limits={"limit_request_body": 10}, rows=(17,)),
    ok("chunked_body_limit_exactly_reached", chunked_post(chunks(b"01234", b"56789")),
       UPLOAD(b"0123456789"), limits={"limit_request_body": 10}, rows=(17,)),
    # Found by the fuzzer: a line exactly at its limit was refused when a read ended right
    # after its CR (taken for one more byte of the line), but accepted when it came whole.
    ok("request_line_exactly_at_a_configured_limit", get(target=b"/" + b"p" * 50),
       Req(target=b"/" + b"p" * 50), limits={"limit_request_line": 64}, rows=(5,)),
    ok("chunk_size_line_exactly_at_the_limit",
       chunked_post(b"0" * 63 + b"5;x=" + b"e" * 16381 + b"\r\nhello\r\n0\r\n\r\n"),
       UPLOAD(b"hello"), rows=(25,)),
    ok("trailers_exactly_at_a_configured_head_limit",
       chunked_post(chunks(b"hello", trailers=[b"X-T: " + b"t" * 200] * 4 + [b"X: " + b"u" * 191])),
       UPLOAD(b"hello"), limits={"limit_request_head": 1024}, rows=(26,)),
]

# -- rows 1-4: the request line -------------------------------------------------------------

REQUEST_LINE = [
    bad("method_with_equals_sign", head(b"G=T / HTTP/1.1", HOST), 400, rows=(1,)),
    bad("method_with_nul", head(b"G\x00T / HTTP/1.1", HOST), 400, rows=(1,)),
    bad("method_empty", head(b" / HTTP/1.1", HOST), 400, rows=(1,)),
    bad("method_with_brackets", head(b"G[E]T / HTTP/1.1", HOST), 400, rows=(1,)),
    bad("method_with_8bit_byte", head(b"G\xc9T / HTTP/1.1", HOST), 400, rows=(1,)),
    bad("version_http_1_32", head(b"GET / HTTP/1.32", HOST), 400, rows=(2,)),
    bad("version_ftp", head(b"GET / FTP/1.1", HOST), 400, rows=(2,)),
    bad("version_lowercase_name", head(b"GET / http/1.1", HOST), 400, rows=(2,)),
    bad("version_without_minor", head(b"GET / HTTP/1", HOST), 400, rows=(2,)),
    bad("version_three_parts", head(b"GET / HTTP/1.1.1", HOST), 400, rows=(2,)),
    bad("version_http_0_9", head(b"GET / HTTP/0.9", HOST), 400, rows=(2,)),
    bad("version_two_digit_major", head(b"GET / HTTP/11.1", HOST), 400, rows=(2,)),
    bad("version_http_2_0_not_supported", head(b"GET / HTTP/2.0", HOST), 505, rows=(2,)),
    bad("version_http_3_0_not_supported", head(b"GET / HTTP/3.0", HOST), 505, rows=(2,)),
    bad("http09_request_without_version", b"GET /\r\n\r\n", 400, rows=(3,)),
    bad("request_line_without_target_or_version", b"GET\r\n\r\n", 400, rows=(3,)),
    bad("request_line_empty_version", head(b"GET / ", HOST), 400, rows=(3, 4)),
    bad("request_line_two_spaces", head(b"GET  / HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_with_fragment", get(target=b"/a#b"), 400, rows=(4,)),
    bad("request_line_space_before_version", head(b"GET /  HTTP/1.1", HOST), 400, rows=(4,)),
    bad("request_line_tab_separator", head(b"GET\t/ HTTP/1.1", HOST), 400, rows=(4,)),
    bad("request_line_trailing_space", head(b"GET / HTTP/1.1 ", HOST), 400, rows=(4,)),
    bad("request_line_leading_space", head(b" GET / HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_empty", head(b"GET  HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_with_control_byte", head(b"GET /a\x01b HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_with_del", head(b"GET /a\x7f HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_with_nul", head(b"GET /\x00 HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_with_8bit_bytes", head(b"GET /caf\xc3\xa9 HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_with_vertical_tab", head(b"GET /\x0b HTTP/1.1", HOST), 400, rows=(4,)),
    bad("target_relative_without_slash", head(b"GET index.html HTTP/1.1", HOST), 400,
        rows=(4, 6)),
]

# -- rows 5-6: request line length and target forms -----------------------------------------

TARGETS = [
    bad("request_line_over_the_limit", get(target=b"/" + BIG), 414, rows=(5,)),
    bad("request_line_over_the_limit_before_crlf", b"GET /" + BIG, 414, rows=(5,)),
    bad("request_line_over_a_configured_limit", get(target=b"/" + b"x" * 200), 414,
        limits={"limit_request_line": 100}, rows=(5,)),
    bad("asterisk_target_outside_options", head(b"GET * HTTP/1.1", HOST), 400, rows=(6,)),
    bad("asterisk_target_with_post", head(b"POST * HTTP/1.1", HOST, b"Content-Length: 0"), 400,
        rows=(6,)),
    bad("authority_form_outside_connect", head(b"GET example.com:80 HTTP/1.1", HOST), 400,
        rows=(6,)),
    bad("connect_authority_form_not_implemented",
        head(b"CONNECT example.com:443 HTTP/1.1", b"Host: example.com:443"), 501, rows=(6,)),
    bad("absolute_form_with_userinfo", head(b"GET http://user@example.com/ HTTP/1.1", HOST),
        400, rows=(6, 14)),
    bad("absolute_form_without_host_field", head(b"GET http://example.com/ HTTP/1.1"), 400,
        rows=(6, 14)),
    bad("absolute_form_with_two_host_fields",
        head(b"GET http://example.com/ HTTP/1.1", HOST, HOST), 400, rows=(6, 14)),
]

# -- rows 7-11: line ends, field syntax ------------------------------------------------------

FIELD_SYNTAX = [
    bad("bare_cr_ends_the_request_line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400, rows=(7,)),
    bad("bare_cr_inside_the_request_line", head(b"GET /a\rb HTTP/1.1", HOST), 400, rows=(7,)),
    bad("bare_cr_in_a_value", get(b"X-A: a\rb"), 400, rows=(7,)),
    bad("bare_cr_in_a_name", get(b"X\r-A: b"), 400, rows=(7,)),
    bad("bare_cr_before_a_line_end", get(b"X-A: a\r"), 400, rows=(7,)),
    bad("bare_cr_in_the_final_empty_line", b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400,
        rows=(7,)),
    bad("bare_lf_ends_the_request_line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, rows=(8,)),
    bad("bare_lf_ends_a_field", b"GET / HTTP/1.1\r\nHost: a\nX-B: c\r\n\r\n", 400, rows=(8,)),
    bad("bare_lf_everywhere", b"GET / HTTP/1.1\nHost: a\n\n", 400, rows=(8,)),
    bad("bare_lf_final_empty_line", b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, rows=(8,)),
    bad("nul_in_a_value", get(b"X-A: a\x00b"), 400, rows=(9,)),
    bad("control_byte_in_a_value", get(b"X-A: a\x01b"), 400, rows=(9,)),
    bad("escape_byte_in_a_value", get(b"X-A: \x1b[31m"), 400, rows=(9,)),
    bad("del_in_a_value", get(b"X-A: a\x7fb"), 400, rows=(9,)),
    bad("vertical_tab_in_a_value", get(b"X-A: a\x0bb"), 400, rows=(9,)),
    bad("form_feed_ends_a_value", get(b"X-A: a\x0c"), 400, rows=(9,)),
    bad("space_before_the_colon", head(b"GET / HTTP/1.1", b"Host : example.com"), 400,
        rows=(10,)),
    bad("tab_before_the_colon", get(b"X-A\t: b"), 400, rows=(10,)),
    bad("space_before_the_first_field", head(b"GET / HTTP/1.1", b" " + HOST), 400, rows=(10,)),
    bad("tab_before_the_first_field", head(b"GET / HTTP/1.1", b"\tX-A: b", HOST), 400,
        rows=(10,)),
    bad("obs_fold_with_space", get(b"X-A: a", b" b"), 400, rows=(10,)),
    bad("obs_fold_with_tab", get(b"X-A: a", b"\tb"), 400, rows=(10,)),
    bad("obs_fold_of_host", head(b"GET / HTTP/1.1", b"Host:", b" example.com"), 400, rows=(10,)),
    bad("empty_field_name", get(b": value"), 400, rows=(11,)),
    bad("field_line_without_colon", get(b"NoColonHere"), 400, rows=(11,)),
    bad("space_inside_a_field_name", get(b"X A: b"), 400, rows=(11,)),
    bad("non_token_bytes_in_a_name", get(b"X(A): b"), 400, rows=(11,)),
    bad("at_sign_in_a_name", get(b"X@A: b"), 400, rows=(11,)),
    bad("nul_in_a_name", get(b"X\x00A: b"), 400, rows=(11,)),
    bad("8bit_byte_in_a_name", get(b"X\xe9: b"), 400, rows=(11,)),
    bad("quote_in_a_name", get(b'X"A: b'), 400, rows=(11,)),
]

# -- rows 13-14: head limits and Host -------------------------------------------------------

HEAD_LIMITS = [
    bad("more_fields_than_the_limit", get(*fields(100)), 431, rows=(13,)),
    bad("more_fields_than_a_configured_limit", get(*fields(5)), 431,
        limits={"limit_request_fields": 5}, rows=(13,)),
    bad("field_value_over_the_size_limit", get(b"X-Big: " + BIG), 431, rows=(13,)),
    bad("field_name_over_the_size_limit", get(b"X-" + BIG + b": v"), 431, rows=(13,)),
    bad("field_over_a_configured_size_limit", get(b"X-Big: " + b"v" * 200), 431,
        limits={"limit_request_field_size": 100}, rows=(13,)),
    bad("head_over_the_limit", get(*fields(9, 8000)), 431, rows=(13,)),
    bad("head_over_the_limit_never_ending", b"GET / HTTP/1.1\r\n" + fields(9, 8000)[0] * 9,
        431, rows=(13,)),
    bad("head_over_a_configured_limit", get(*fields(30, 50)), 431,
        limits={"limit_request_head": 1024}, rows=(13,)),
    bad("host_missing_in_http11", head(b"GET / HTTP/1.1", b"Accept: */*"), 400, rows=(14,)),
    bad("host_twice_same_value", get(HOST), 400, rows=(14,)),
    bad("host_twice_different_values", get(b"Host: evil.example"), 400, rows=(14,)),
    bad("host_with_a_space", head(b"GET / HTTP/1.1", b"Host: exa mple.com"), 400, rows=(14,)),
    bad("host_with_userinfo", head(b"GET / HTTP/1.1", b"Host: user@example.com"), 400,
        rows=(14,)),
    bad("host_with_a_path", head(b"GET / HTTP/1.1", b"Host: example.com/path"), 400, rows=(14,)),
    bad("host_with_a_non_numeric_port", head(b"GET / HTTP/1.1", b"Host: example.com:http"),
        400, rows=(14,)),
    bad("host_with_8bit_bytes", head(b"GET / HTTP/1.1", b"Host: caf\xe9.example"), 400,
        rows=(14,)),
    bad("host_twice_in_http10", head(b"GET / HTTP/1.0", HOST, HOST), 400, rows=(14,)),
]

# -- rows 15-22: framing --------------------------------------------------------------------


def with_length(value: bytes, body: bytes = b"hello") -> bytes:
    return head(b"POST /submit HTTP/1.1", HOST, b"Content-Length: " + value) + body


def with_coding(*values: bytes, version: bytes = b"1.1", body: bytes = HELLO) -> bytes:
    lines = [b"Transfer-Encoding: " + v for v in values]
    return head(b"POST /upload HTTP/" + version, HOST, *lines) + body


FRAMING = [
    bad("content_length_plus_sign", with_length(b"+5"), 400, rows=(15,)),
    bad("content_length_negative", with_length(b"-1"), 400, rows=(15,)),
    bad("content_length_hex", with_length(b"0x5"), 400, rows=(15,)),
    bad("content_length_underscore", with_length(b"1_0", b"h" * 10), 400, rows=(15,)),
    bad("content_length_empty", with_length(b""), 400, rows=(15,)),
    bad("content_length_arabic_indic_digit", with_length("\u0665".encode()), 400, rows=(15,)),
    bad("content_length_superscript_digit", with_length(b"\xb2", b"hi"), 400, rows=(15,)),
    bad("content_length_fullwidth_digit", with_length("\uff15".encode()), 400, rows=(15,)),
    bad("content_length_20_digits", with_length(b"1" + b"0" * 19), 400, rows=(15,)),
    bad("content_length_19_digits", with_length(b"1" + b"0" * 18), 400, rows=(15,)),
    bad("content_length_space_inside", with_length(b"1 0", b"h" * 10), 400, rows=(15,)),
    bad("content_length_decimal", with_length(b"5.0"), 400, rows=(15,)),
    bad("content_lengths_differ",
        head(b"POST /submit HTTP/1.1", HOST, b"Content-Length: 5", b"Content-Length: 6")
        + b"hello!", 400, rows=(16,)),
    bad("content_length_list_differs", with_length(b"5, 6", b"hello!"), 400, rows=(16,)),
    bad("content_length_over_the_body_limit", with_length(b"11", b""), 413,
        limits={"limit_request_body": 10}, rows=(17,)),
    bad("content_length_over_the_body_limit_with_body", with_length(b"11", b"h" * 11), 413,
        limits={"limit_request_body": 10}, rows=(17,)),
    bad("chunked_body_crossing_the_body_limit", chunked_post(chunks(b"0123456", b"789ab")),
        413, limits={"limit_request_body": 10}, head_ok=True, rows=(17,)),
    cut("body_shorter_than_content_length_then_eof", with_length(b"10"), pending=1,
        rows=(18,)),
    cut("empty_body_with_content_length_then_eof", with_length(b"10", b""), pending=1,
        rows=(18,)),
    cut("chunked_body_cut_in_data_then_eof", chunked_post(b"5\r\nhel"), pending=1, rows=(18,)),
    cut("chunked_body_cut_before_last_chunk_then_eof", chunked_post(b"5\r\nhello\r\n"),
        pending=1, rows=(18,)),
    cut("chunked_body_cut_in_trailers_then_eof", chunked_post(b"5\r\nhello\r\n0\r\nX-T: 1\r\n"),
        pending=1, rows=(18, 26)),
    cut("head_cut_then_eof", b"GET / HTTP/1.1\r\nHost: exa", pending=0, rows=(18,)),
    cut("second_request_cut_then_eof", get() + b"POST / HTTP/1.1\r\n", GET, pending=0,
        rows=(18, 27)),
    bad("content_length_and_transfer_encoding",
        head(b"POST /upload HTTP/1.1", HOST, b"Content-Length: 5", b"Transfer-Encoding: chunked")
        + HELLO, 400, rows=(19,)),
    bad("transfer_encoding_and_content_length",
        head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding: chunked", b"Content-Length: 5")
        + HELLO, 400, rows=(19,)),
    bad("content_length_zero_and_chunked",
        head(b"POST /upload HTTP/1.1", HOST, b"Content-Length: 0", b"Transfer-Encoding: chunked")
        + HELLO, 400, rows=(19,)),
    bad("transfer_encoding_gzip_only", with_coding(b"gzip", body=b"hello"), 400, rows=(20,)),
    bad("transfer_encoding_identity", with_coding(b"identity", body=b"hello"), 400, rows=(20,)),
    bad("transfer_encoding_chunked_then_gzip", with_coding(b"chunked, gzip"), 400, rows=(20,)),
    bad("transfer_encoding_chunked_twice_in_a_list", with_coding(b"chunked, chunked"), 400,
        rows=(20,)),
    bad("transfer_encoding_chunked_twice_in_two_fields", with_coding(b"chunked", b"chunked"),
        400, rows=(20,)),
    bad("transfer_encoding_empty", with_coding(b"", body=b"hello"), 400, rows=(20,)),
    bad("transfer_encoding_gzip_then_chunked_not_implemented", with_coding(b"gzip, chunked"),
        501, rows=(20,)),
    bad("transfer_encoding_unknown_then_chunked_not_implemented",
        with_coding(b"x-custom", b"chunked"), 501, rows=(20,)),
    bad("transfer_encoding_in_http10", with_coding(b"chunked", version=b"1.0"), 400,
        rows=(21,)),
    bad("transfer_encoding_in_http10_keep_alive",
        head(b"POST / HTTP/1.0", b"Connection: keep-alive", b"Transfer-Encoding: chunked")
        + HELLO, 400, rows=(21,)),
    bad("transfer_encoding_and_content_length_in_http10",
        head(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked", b"Content-Length: 5") + HELLO,
        400, rows=(19, 21)),
    bad("disguised_te_space_before_colon",
        head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding : chunked",
             b"Content-Length: 5") + HELLO, 400, rows=(10, 22)),
    bad("disguised_te_vertical_tab", with_coding(b"chunked\x0b"), 400, rows=(22,)),
    bad("disguised_te_vertical_tab_with_content_length",
        head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding: chunked\x0b",
             b"Content-Length: 5") + HELLO, 400, rows=(22,)),
    bad("disguised_te_leading_tab_with_content_length",
        head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding:\tchunked",
             b"Content-Length: 5") + HELLO, 400, rows=(19, 22)),
    bad("disguised_te_form_feed", with_coding(b"\x0cchunked"), 400, rows=(22,)),
    bad("disguised_te_nul", with_coding(b"chunked\x00"), 400, rows=(22,)),
    bad("disguised_te_quoted", with_coding(b'"chunked"'), 400, rows=(22,)),
    bad("disguised_te_suffix", with_coding(b"chunkedx"), 400, rows=(22,)),
    bad("disguised_te_prefix", with_coding(b"xchunked"), 400, rows=(22,)),
    bad("disguised_te_obs_fold",
        head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding:", b" chunked",
             b"Content-Length: 5") + HELLO, 400, rows=(10, 22)),
    bad("disguised_te_8bit_lookalike",
        head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding: chunk\xebd",
             b"Content-Length: 5") + HELLO, 400, rows=(22,)),
]

# -- rows 23-26: chunked bodies -------------------------------------------------------------


def chunk_error(id: str, encoded: bytes, *rows: int, status: Any = 400, **kw: Any) -> Case:
    return bad(id, chunked_post(encoded), status, head_ok=True, rows=rows, **kw)


CHUNKED = [
    chunk_error("chunk_size_0x_prefix", b"0x5\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_plus_sign", b"+5\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_minus_sign", b"-5\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_underscore", b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_space_inside", b"1 0\r\n0123456789abcdef\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_leading_space", b" 5\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_leading_tab", b"\t5\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_trailing_space", b"5 \r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_empty", b"\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_not_hex", b"g\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_overflows_64_bits", b"10000000000000000\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_huge", b"f" * 40 + b"\r\nhello\r\n0\r\n\r\n", 23),
    # Found by the fuzzer: 16 hex digits over 2**63 overflowed the compiled build's counters
    # (an OverflowError, not a ParseError, escaped).
    chunk_error("chunk_size_over_63_bits", b"aaaaaaaaaaaaaaa3\r\naaa\r\n0\r\n\r\n", 23),
    chunk_error("chunk_size_16_hex_digits", b"1000000000000000\r\nhello\r\n0\r\n\r\n", 23),
    chunk_error("last_chunk_size_plus_zero", b"5\r\nhello\r\n+0\r\n\r\n", 23),
    chunk_error("chunk_data_followed_by_other_bytes", b"5\r\nhelloXX0\r\n\r\n", 24),
    chunk_error("chunk_data_longer_than_its_size", b"5\r\nhello world\r\n0\r\n\r\n", 24),
    chunk_error("chunk_data_followed_by_bare_lf", b"5\r\nhello\n0\r\n\r\n", 24),
    chunk_error("chunk_data_followed_by_bare_cr", b"5\r\nhello\r0\r\n\r\n", 24),
    chunk_error("chunk_data_followed_by_lf_cr", b"5\r\nhello\n\r0\r\n\r\n", 24),
    chunk_error("chunk_size_line_bare_lf", b"5\nhello\r\n0\r\n\r\n", 24),
    chunk_error("chunk_size_line_bare_cr", b"5\rhello\r\n0\r\n\r\n", 24),
    chunk_error("chunk_extension_bare_cr", b"5;a=b\rc\r\nhello\r\n0\r\n\r\n", 24),
    chunk_error("chunk_extension_bare_lf", b"5;a\nhello\r\n0\r\n\r\n", 24),
    chunk_error("last_chunk_bare_lf", b"5\r\nhello\r\n0\n\r\n", 24),
    chunk_error("final_empty_line_bare_lf", b"5\r\nhello\r\n0\r\n\n", 24),
    chunk_error("final_empty_line_missing", b"5\r\nhello\r\n0\r\nGET / HTTP/1.1\r\n\r\n", 24,
                26),
    chunk_error("chunk_extension_empty_name", b"5;\r\nhello\r\n0\r\n\r\n", 24),
    chunk_error("chunk_extension_name_then_garbage", b"5;a b\r\nhello\r\n0\r\n\r\n", 24),
    chunk_error("chunk_extension_control_byte", b"5;a=\x01\r\nhello\r\n0\r\n\r\n", 24),
    chunk_error("chunk_extension_unterminated_quote", b'5;a="b\r\nhello\r\n0\r\n\r\n', 24),
    chunk_error("chunk_extension_missing_value", b"5;a=\r\nhello\r\n0\r\n\r\n", 24),
    chunk_error("chunk_extensions_over_16k_in_one_line",
                b"1;x=" + b"e" * 17000 + b"\r\na\r\n0\r\n\r\n", 25, status=(400, 413)),
    chunk_error("chunk_extensions_over_16k_in_total",
                b"".join(b"1;x=" + b"e" * 1000 + b"\r\na\r\n" for _ in range(20)) + b"0\r\n\r\n",
                25, status=(400, 413)),
    chunk_error("trailer_without_colon", b"5\r\nhello\r\n0\r\nBadTrailer\r\n\r\n", 26),
    chunk_error("trailer_space_before_colon", b"5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n", 26),
    chunk_error("trailer_bare_lf", b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 26),
    chunk_error("trailer_bare_cr", b"5\r\nhello\r\n0\r\nX-T: 1\r\r\n\r\n", 26),
    chunk_error("trailer_obs_fold", b"5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n", 26),
    chunk_error("trailer_nul_in_value", b"5\r\nhello\r\n0\r\nX-T: a\x00b\r\n\r\n", 26),
    chunk_error("trailer_field_over_the_size_limit",
                b"5\r\nhello\r\n0\r\nX-T: " + BIG + b"\r\n\r\n", 26, status=431),
    chunk_error("trailers_more_than_the_field_limit",
                b"5\r\nhello\r\n0\r\n" + b"".join(f + CRLF for f in fields(101)) + CRLF, 26,
                status=431),
    chunk_error("trailers_over_the_head_limit_never_ending",
                b"5\r\nhello\r\n0\r\n" + fields(9, 8000)[0] * 9, 26, status=431),
]

# -- row 27: a valid request, then an invalid pipelined one ---------------------------------

PIPELINED = [
    bad("pipelined_valid_then_bad_method", get() + head(b"G=T / HTTP/1.1", HOST), 400, GET,
        rows=(27, 1)),
    bad("pipelined_valid_then_bare_lf", get() + b"GET / HTTP/1.1\nHost: a\n\n", 400, GET,
        rows=(27, 8)),
    bad("pipelined_post_then_bad_content_length", post(b"abc") + with_length(b"+5"), 400,
        POST(b"abc"), rows=(27, 15)),
    bad("pipelined_valid_then_missing_host", get() + head(b"GET / HTTP/1.1"), 400, GET,
        rows=(27, 14)),
    bad("pipelined_chunked_then_http2_version", chunked_post(HELLO) + head(b"GET / HTTP/2.0"),
        505, UPLOAD(b"hello"), rows=(27, 2)),
    bad("pipelined_valid_then_te_and_cl",
        get() + head(b"POST / HTTP/1.1", HOST, b"Transfer-Encoding: chunked",
                     b"Content-Length: 5") + HELLO, 400, GET, rows=(27, 19)),
    bad("pipelined_valid_then_bad_chunk", get() + chunked_post(b"+5\r\nhello\r\n0\r\n\r\n"), 400,
        GET, head_ok=True, rows=(27, 23)),
]

# -- one named regression case per parser-level CVE class in peers --------------------------

CVE_REGRESSIONS = [
    # h11 CVE-2025-43859: any two bytes after chunk data were taken as the CRLF.
    chunk_error("cve_2025_43859_h11_chunk_data_terminator_not_crlf",
                b"5\r\nhelloXX0\r\n\r\n", 24),
    bad("cve_2025_43859_h11_smuggled_request_after_bad_terminator",
        chunked_post(b"5\r\nhello__3\r\nabc\r\n0\r\n\r\n") + get(target=b"/smuggled"), 400,
        head_ok=True, rows=(24, 27)),
    # gunicorn CVE-2024-1135: conflicting Transfer-Encoding fields let a request be smuggled.
    bad("cve_2024_1135_gunicorn_conflicting_te_and_cl",
        head(b"POST /upload HTTP/1.1", HOST, b"Content-Length: 4", b"Transfer-Encoding: chunked",
             b"Transfer-Encoding: identity") + b"5\r\nhello\r\n0\r\n\r\n", 400, rows=(19, 20)),
    bad("cve_2024_1135_gunicorn_te_chunked_then_other_coding",
        head(b"POST /upload HTTP/1.1", HOST, b"Transfer-Encoding: chunked",
             b"Transfer-Encoding: gzip") + HELLO, 400, rows=(20,)),
    # waitress CVE-2022-24761: int()-style leniency in chunk sizes ("+", "0x", whitespace).
    chunk_error("cve_2022_24761_waitress_chunk_size_plus", b"+3\r\nabc\r\n0\r\n\r\n", 23),
    chunk_error("cve_2022_24761_waitress_chunk_size_0x", b"0x3\r\nabc\r\n0\r\n\r\n", 23),
    chunk_error("cve_2022_24761_waitress_chunk_size_whitespace", b" 3 \r\nabc\r\n0\r\n\r\n", 23),
    bad("cve_2022_24761_waitress_content_length_plus", with_length(b"+5"), 400, rows=(15,)),
]

CASES: list[Case] = (
    VALID + REQUEST_LINE + TARGETS + FIELD_SYNTAX + HEAD_LIMITS + FRAMING + CHUNKED + PIPELINED
    + CVE_REGRESSIONS
)
# fmt: on
BY_ID = {case.id: case for case in CASES}
assert len(BY_ID) == len(CASES), "case ids must be unique"


# -- feeding modes ------------------------------------------------------------------------


def whole(raw: bytes) -> list[bytes]:
    return [raw]


def byte_by_byte(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def random_split(raw: bytes, seed: int, tag: str) -> list[bytes]:
    """Cut ``raw`` at random points; ``tag`` + ``seed`` make the cuts reproducible."""
    rng = random.Random(f"{tag}:{seed}")
    if len(raw) < 2:
        return [raw]
    cuts = rng.sample(range(1, len(raw)), rng.randint(1, min(len(raw) - 1, 40)))
    return split_at(raw, cuts)


def split_at(raw: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``raw`` cut at each offset in ``cuts`` (0 and len(raw) give empty pieces)."""
    points = sorted(cuts)
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]


# -- the replay driver ----------------------------------------------------------------------

SNAPSHOT_FIELDS = (
    "method",
    "target",
    "http_version",
    "headers",
    "keep_alive",
    "expect_continue",
    "content_length",
    "chunked",
    "raw_path",
    "query_string",
)


@dataclass
class Message:
    head: dict[str, Any]
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False


@dataclass
class Outcome:
    messages: list[Message] = field(default_factory=list)
    error: int | None = None

    def verdict(self) -> tuple[Any, ...]:
        """What must not depend on how the bytes were split (an unfinished body may)."""
        seen = tuple(
            (tuple(m.head.items()), bytes(m.body) if m.complete else None, m.complete)
            for m in self.messages
        )
        return seen, self.error


def replay(parser_mod: ModuleType, case: Case, pieces: Iterable[bytes]) -> Outcome:
    parser = parser_mod.RequestParser(**case.limits)
    outcome = Outcome()
    try:
        for piece in pieces:
            parser.feed(piece)
            drain(parser_mod, parser, outcome)
        if case.eof:
            parser.feed_eof()
            drain(parser_mod, parser, outcome)
    except parser_mod.ParseError as exc:
        outcome.error = exc.status
        assert_dead(parser_mod, parser, exc.status)
    return outcome


def drain(parser_mod: ModuleType, parser: Any, outcome: Outcome) -> None:
    for event in events(parser):
        current = outcome.messages[-1] if outcome.messages else None
        open_message = current is not None and not current.complete
        if isinstance(event, parser_mod.Request):
            assert not open_message, "Request before the previous EndOfMessage"
            snapshot = {name: getattr(event, name) for name in SNAPSHOT_FIELDS}
            snapshot["headers"] = tuple(tuple(pair) for pair in event.headers)
            outcome.messages.append(Message(snapshot))
        elif isinstance(event, parser_mod.Data):
            assert current is not None and open_message, "Data outside a message"
            assert event.data, "empty Data event"
            current.body += event.data
        elif isinstance(event, parser_mod.EndOfMessage):
            assert current is not None and open_message, "EndOfMessage outside a message"
            current.complete = True
            assert parser.next_event() is None, "an event before start_next_request()"
            parser.start_next_request()
        else:
            raise AssertionError(f"unknown event {event!r}")


def events(parser: Any) -> Iterator[Any]:
    while (event := parser.next_event()) is not None:
        yield event


def assert_dead(parser_mod: ModuleType, parser: Any, status: int) -> None:
    """After a ParseError every next_event() raises it again: nothing more is parsed."""
    try:
        parser.next_event()
    except parser_mod.ParseError as again:
        assert again.status == status, f"second ParseError {again.status} != {status}"
    else:
        raise AssertionError("next_event() after a ParseError did not raise again")


# -- comparing an outcome with its case -----------------------------------------------------


def problems(case: Case, outcome: Outcome) -> list[str]:
    found: list[str] = []
    if outcome.error not in case.errors:
        found.append(f"error {outcome.error}, expected one of {case.errors}")
    done = [m for m in outcome.messages if m.complete]
    unfinished = len(outcome.messages) - len(done)
    if any(not m.complete for m in outcome.messages[:-1]):
        found.append("a message other than the last was left unfinished")
    if unfinished != case.pending:
        found.append(f"{unfinished} unfinished Request(s) emitted, expected {case.pending}")
    if len(done) != len(case.requests):
        found.append(f"{len(done)} complete requests, expected {len(case.requests)}")
    for index, (message, expected) in enumerate(zip(done, case.requests, strict=False)):
        found += [f"request {index}: {p}" for p in request_problems(message, expected)]
    return found


def request_problems(message: Message, expected: Req) -> list[str]:
    got = message.head
    wanted: dict[str, Any] = {
        "method": expected.method,
        "target": expected.target,
        "http_version": expected.version,
        "keep_alive": expected.keep_alive,
        "raw_path": expected.raw_path,
        "query_string": expected.query_string,
        "expect_continue": expected.expect_continue,
        "chunked": expected.chunked,
        "content_length": expected.content_length,
    }
    found = [
        f"{name} {got[name]!r} != {value!r}"
        for name, value in wanted.items()
        if value is not None and value != "unchecked" and got[name] != value
    ]
    if expected.content_length is None and got["content_length"] is not None:
        found.append(f"content_length {got['content_length']!r} != None")
    if bytes(message.body) != expected.body:
        found.append(f"body {bytes(message.body)[:80]!r} != {expected.body[:80]!r}")
    for name in dict.fromkeys(n for n, _ in expected.headers):
        values = [v for n, v in got["headers"] if n == name]
        wanted_values = [v for n, v in expected.headers if n == name]
        if values != wanted_values:
            found.append(f"header {name!r}: {values!r} != {wanted_values!r}")
    return found
