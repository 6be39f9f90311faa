"""Splits a complete request head into request line and fields, validating every byte.

This is the pure-Python scanner, built on regular expressions.  ``_headscan_c.pyx`` is its
hand-written compiled twin: one C pass over the bytes with lookup tables, because the head scan
is where a regex-based parser spends most of its time.  Both must give the same answers (the
parser corpus and the compiled/pure agreement tests run against both); the order of checks is
part of that contract, because a head can break several rules at once:

1. a bare CR or LF anywhere → 400;
2. a request line longer than ``limit_line`` → 414;
3. a malformed request line → 400; HTTP/0.x → 400; a version other than 1.0/1.1 → 505;
4. any malformed field line → 400 (the whole block is checked before counting);
5. more than ``limit_fields`` fields → 431; then a field whose name + value exceed
   ``limit_field_size`` → 431.

Field names are returned lowercased, values with surrounding whitespace removed.  The last
result says whether any field name starts with ``x-forwarded-``, so a connection from a trusted
proxy only looks for forwarded fields in requests that carry some.
"""

from __future__ import annotations

import re

from esg.http.errors import ParseError

__all__ = ["FIELD_BLOCK", "FIELD_PARTS", "TOKEN", "scan_head"]

_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_VCHAR_OBS = rb"\x21-\x7e\x80-\xff"

# The target admits visible ASCII except "#": a fragment is never part of a request target.
_REQUEST_LINE = re.compile(rb"([%s]+) ([\x21\x22\x24-\x7e]+) HTTP/([0-9])\.([0-9])" % _TCHAR)
_LOOSE_VERSION = re.compile(rb"[^ ]+ [^ ]+ HTTP/[0-9]\.[0-9]")
_FIELD = rb"[%s]+:[ \t]*(?:[%s]+(?:[ \t]+[%s]+)*)?[ \t]*\r\n" % (_TCHAR, _VCHAR_OBS, _VCHAR_OBS)
FIELD_BLOCK = re.compile(rb"(?:%s)*" % _FIELD)
_FIELD_LINE = re.compile(_FIELD[: -len(rb"\r\n")])  # one field line without its CRLF
FIELD_PARTS = re.compile(
    rb"([%s]+):[ \t]*((?:[%s]+(?:[ \t]+[%s]+)*)?)[ \t]*\r\n" % (_TCHAR, _VCHAR_OBS, _VCHAR_OBS)
)
TOKEN = re.compile(rb"[%s]+" % _TCHAR)

Fields = list[tuple[bytes, bytes]]


def scan_head(
    buf: bytearray,
    end: int,
    limit_line: int,
    limit_fields: int,
    limit_field_size: int,
) -> tuple[bytes, bytes, int, Fields, bool]:
    """Scan ``buf[:end + 2]`` (request line and fields, each ending in CRLF).

    Returns ``(method, target, minor_version, fields, forwarded)``; raises ParseError.
    """
    head = bytes(buf[: end + 2])
    line_ends = head.count(b"\r\n")
    if head.count(b"\n") != line_ends or head.count(b"\r") != line_ends:
        raise ParseError(400, "Bare CR or LF in the request head", "bad_line_ending")
    line_end = head.find(b"\r\n")
    line = head[:line_end]
    if len(line) > limit_line:
        raise ParseError(414, "Request line too long", "request_line_too_long")
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise _request_line_error(line)
    method, target, major, minor = match.groups()
    if major == b"0":
        raise ParseError(400, "HTTP/0.x requests are not accepted", "bad_request_line")
    if major != b"1" or minor not in (b"0", b"1"):
        raise ParseError(505, "HTTP version not supported", "version_not_supported")
    fields: Fields = []
    forwarded = False
    block = head[line_end + 2 :]
    if block:
        if FIELD_BLOCK.fullmatch(block) is None:
            raise _field_error(block)
        pairs = FIELD_PARTS.findall(block)
        if len(pairs) > limit_fields:
            raise ParseError(431, "Too many header fields", "header_too_large")
        for name, value in pairs:
            if len(name) + len(value) > limit_field_size:
                raise ParseError(431, "Header field too large", "header_too_large")
            lowered = name.lower()
            if lowered.startswith(b"x-forwarded-"):
                forwarded = True
            fields.append((lowered, value))
    return method, target, 1 if minor == b"1" else 0, fields, forwarded


def _request_line_error(line: bytes) -> ParseError:
    if _LOOSE_VERSION.fullmatch(line) is not None and line.count(b" ") == 2:
        return ParseError(400, "Invalid method or request target", "bad_request_line")
    return ParseError(400, "Invalid request line", "bad_request_line")


def _field_error(block: bytes) -> ParseError:
    """The error for the first malformed line of ``block`` (each line ends in CRLF)."""
    for index, line in enumerate(block.split(b"\r\n")[:-1]):
        if _FIELD_LINE.fullmatch(line) is not None:
            continue
        if line[:1] in (b" ", b"\t"):
            if index == 0:
                return ParseError(400, "Whitespace before the first header field", "bad_header")
            return ParseError(400, "Obsolete line folding is not allowed", "bad_header")
        name, colon, _ = line.partition(b":")
        if not colon:
            return ParseError(400, "Header line without a colon", "bad_header")
        if TOKEN.fullmatch(name) is None:
            return ParseError(400, "Invalid header field name", "bad_header")
        break
    return ParseError(400, "Invalid character in a header field value", "bad_header")
