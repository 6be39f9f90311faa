"""Generated requests and HTTP Garden style mutation operators, for differential testing and
fuzzing of the request parser.

Everything here is driven by a ``random.Random``: the differential tests pass a fixed-seed one
(or hypothesis' ``st.randoms()``), the fuzz harness one seeded from its input.  Nothing depends
on esg, so a mutant is never shaped by what esg happens to accept.

* ``generate_requests(rng)`` builds one to three pipelined, valid HTTP/1.1 or HTTP/1.0 requests
  (tokens, targets, OWS, obs-text values, Content-Length or chunked bodies with extensions and
  trailers).
* The operators take ``(raw, rng)`` and return new bytes: ``insert_byte``, ``delete_byte``,
  ``replace_byte``, ``insert_special`` (CR, LF, NUL, SP, HTAB or CRLF at a random position),
  ``duplicate_field`` (a field line repeated, next to itself or elsewhere in the head) and
  ``resplit_chunks`` (a chunked body decoded and encoded again with other chunk boundaries,
  size spellings, extensions and trailers).  ``mutate`` applies a few of them.

Positions are biased towards the head and towards bytes next to CR, LF, ":", SP and HTAB, where
parsers differ; a uniform position would mostly land in bodies.
"""

from __future__ import annotations

import random
from collections.abc import Callable

CRLF = b"\r\n"
TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PCHAR = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/"
HOST_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789.-"
FIELD_VCHAR = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"PROPFIND")
FIELD_NAMES = (b"Accept", b"User-Agent", b"X-Request-Id", b"Cookie", b"Content-Type", b"X-A")
SPECIAL_BYTES = (b"\r", b"\n", b"\x00", b" ", b"\t", b"\r\n")
# Bytes next to which an inserted or changed byte is most likely to move a boundary.
STRUCTURAL = frozenset(b"\r\n: \t;=,")


# -- generated valid requests ---------------------------------------------------------------


def _word(rng: random.Random, alphabet: bytes, low: int, high: int) -> bytes:
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _ows(rng: random.Random) -> bytes:
    return _word(rng, b" \t", 0, 2) if rng.random() < 0.3 else b""


def _target(rng: random.Random, method: bytes) -> bytes:
    roll = rng.random()
    if method == b"OPTIONS" and roll < 0.3:
        return b"*"
    path = b"/" + _word(rng, PCHAR, 0, 20)
    if rng.random() < 0.3:
        path += b"?" + _word(rng, PCHAR + b"?", 0, 15)
    if roll > 0.9:
        return b"http://" + _word(rng, HOST_CHARS, 1, 10) + path
    return path


def _value(rng: random.Random) -> bytes:
    words = [_word(rng, FIELD_VCHAR if rng.random() < 0.2 else TCHAR, 1, 10)]
    for _ in range(rng.randint(0, 2)):
        words.append(_word(rng, b" \t", 1, 2) + _word(rng, TCHAR, 1, 8))
    return b"".join(words) if rng.random() < 0.95 else b""


def _field(rng: random.Random) -> bytes:
    name = rng.choice(FIELD_NAMES) if rng.random() < 0.5 else _word(rng, TCHAR, 1, 12)
    if name.lower() in (b"host", b"content-length", b"transfer-encoding", b"expect", b"upgrade"):
        name = b"X-" + name
    return name + b":" + _ows(rng) + _value(rng) + _ows(rng)


def encode_chunked(rng: random.Random, body: bytes, trailers: list[bytes] | None = None) -> bytes:
    """``body`` as chunked data: random boundaries, size spellings and valid extensions."""
    pieces = []
    rest = body
    while rest:
        size = rng.randint(1, max(1, min(len(rest), rng.choice((1, 3, 16, 200)))))
        pieces.append(rest[:size])
        rest = rest[size:]
    out = bytearray()
    for piece in pieces:
        out += _size_line(rng, len(piece)) + piece + CRLF
    out += _size_line(rng, 0)
    if trailers is None:
        trailers = [_field(rng) for _ in range(rng.choice((0, 0, 0, 1, 2)))]
    for trailer in trailers:
        out += trailer + CRLF
    return bytes(out + CRLF)


def _size_line(rng: random.Random, size: int) -> bytes:
    digits = b"%x" % size
    roll = rng.random()
    if roll < 0.1:
        digits = digits.upper()
    elif roll < 0.2:
        digits = b"0" * rng.randint(1, 3) + digits
    extensions = b""
    while rng.random() < 0.15:
        extensions += _extension(rng)
    return digits + extensions + CRLF


def _extension(rng: random.Random) -> bytes:
    """One chunk extension; sometimes with BWS (RFC 9112 7.1.1) around ";" and "="."""
    spaced = rng.random() < 0.2

    def bws() -> bytes:
        return _word(rng, b" \t", 1, 2) if spaced else b""

    extension = bws() + b";" + bws() + _word(rng, TCHAR, 1, 6)
    roll = rng.random()
    if roll < 0.4:
        extension += bws() + b"=" + bws() + _word(rng, TCHAR, 1, 6)
    elif roll < 0.6:
        quoted = _word(rng, PCHAR + b' \t\\"', 0, 8).replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        extension += bws() + b"=" + bws() + b'"' + quoted + b'"'
    return extension


def generate_request(rng: random.Random) -> bytes:
    """One valid request: HTTP/1.1 (with Host) or HTTP/1.0, maybe with a body."""
    method = rng.choice(METHODS) if rng.random() < 0.8 else _word(rng, TCHAR, 1, 8)
    target = _target(rng, method)
    version = b"1.1" if rng.random() < 0.85 else b"1.0"
    lines = [_field(rng) for _ in range(rng.randint(0, 5))]
    if version == b"1.1" or rng.random() < 0.3:
        host = _word(rng, HOST_CHARS, 1, 12) + (b":%d" % rng.randint(0, 65535) * rng.randint(0, 1))
        lines.insert(rng.randint(0, len(lines)), b"Host:" + _ows(rng) + host + _ows(rng))
    roll = rng.random()
    if roll < 0.15:
        lines.append(b"Connection: " + rng.choice((b"close", b"keep-alive", b"Close, x-y")))
    elif roll < 0.2:
        lines.append(b"Expect: 100-continue")
    body = b""
    encoded = b""
    roll = rng.random()
    if roll < 0.3:
        body = _word(rng, bytes(range(256)), 0, 40)
        lines.append(b"Content-Length:" + _ows(rng) + b"%d" % len(body) + _ows(rng))
        encoded = body
    elif roll < 0.5 and version == b"1.1":
        body = _word(rng, bytes(range(256)), 0, 40)
        lines.append(b"Transfer-Encoding:" + _ows(rng) + rng.choice((b"chunked", b"Chunked")))
        encoded = encode_chunked(rng, body)
    rng.shuffle(lines)
    request_line = method + b" " + target + b" HTTP/" + version
    return request_line + CRLF + b"".join(line + CRLF for line in lines) + CRLF + encoded


def generate_requests(rng: random.Random) -> bytes:
    """One to three pipelined requests (only the last may ask to close the connection)."""
    count = rng.choice((1, 1, 1, 2, 3))
    return b"".join(generate_request(rng) for _ in range(count))


# -- positions ------------------------------------------------------------------------------


def head_end(raw: bytes) -> int:
    """Where the first head ends (its blank line included), or len(raw) without one."""
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 4


def position(raw: bytes, rng: random.Random) -> int:
    """An insertion point in ``raw`` (0 .. len(raw)), biased to the head and to separators."""
    if not raw:
        return 0
    roll = rng.random()
    if roll < 0.5:
        near = [i for i, byte in enumerate(raw[: head_end(raw)]) if byte in STRUCTURAL]
        if near:
            return rng.choice(near) + rng.randint(0, 1)
    if roll < 0.8:
        return rng.randint(0, head_end(raw))
    return rng.randint(0, len(raw))


# -- the operators --------------------------------------------------------------------------


def insert_byte(raw: bytes, rng: random.Random) -> bytes:
    at = position(raw, rng)
    return raw[:at] + bytes([rng.randrange(256)]) + raw[at:]


def delete_byte(raw: bytes, rng: random.Random) -> bytes:
    if not raw:
        return raw
    at = min(position(raw, rng), len(raw) - 1)
    return raw[:at] + raw[at + 1 :]


def replace_byte(raw: bytes, rng: random.Random) -> bytes:
    if not raw:
        return raw
    at = min(position(raw, rng), len(raw) - 1)
    return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]


def insert_special(raw: bytes, rng: random.Random) -> bytes:
    at = position(raw, rng)
    return raw[:at] + rng.choice(SPECIAL_BYTES) + raw[at:]


def duplicate_field(raw: bytes, rng: random.Random) -> bytes:
    """Repeat one field line of the first head, right after itself or elsewhere in the head."""
    end = head_end(raw)
    first = raw.find(CRLF)
    if first < 0 or end - 2 <= first + 2:
        return raw
    lines = raw[first + 2 : end - 2].split(CRLF)[:-1]  # each field line, without its CRLF
    if not lines:
        return raw
    index = rng.randrange(len(lines))
    line = lines[index]
    if rng.random() < 0.3 and b":" in line:  # same name, another value
        name = line.split(b":", 1)[0]
        line = name + b": " + rng.choice((b"0", b"5", b"chunked", b"close", _value(rng)))
    lines.insert(index + 1 if rng.random() < 0.6 else rng.randint(0, len(lines)), line)
    return raw[: first + 2] + b"".join(line + CRLF for line in lines) + CRLF + raw[end:]


def decode_chunked(data: bytes) -> tuple[bytes, list[bytes], int] | None:
    """Strictly decode a chunked body at the start of ``data``: (body, trailer lines, bytes
    used), or None if it isn't a complete, well-formed one.  Used only to re-encode."""
    body = bytearray()
    at = 0
    while True:
        line_end = data.find(CRLF, at)
        if line_end < 0:
            return None
        digits = data[at:line_end].split(b";", 1)[0].rstrip(b" \t")
        if not digits or any(byte not in b"0123456789abcdefABCDEF" for byte in digits):
            return None
        size = int(digits, 16)
        at = line_end + 2
        if size == 0:
            break
        if data[at + size : at + size + 2] != CRLF:
            return None
        body += data[at : at + size]
        at += size + 2
    trailers: list[bytes] = []
    while True:
        line_end = data.find(CRLF, at)
        if line_end < 0:
            return None
        line = data[at:line_end]
        at = line_end + 2
        if not line:
            return bytes(body), trailers, at
        trailers.append(line)


def resplit_chunks(raw: bytes, rng: random.Random) -> bytes:
    """Re-encode the first chunked body in ``raw`` with new chunk boundaries and spellings."""
    start = raw.find(b"\r\n\r\n")
    while start >= 0:
        head = raw[:start].lower()
        if b"chunked" in head:
            decoded = decode_chunked(raw[start + 4 :])
            if decoded is not None:
                body, trailers, used = decoded
                if rng.random() < 0.3:
                    trailers = None  # type: ignore[assignment]  # new random trailers
                encoded = encode_chunked(rng, body, trailers)
                return raw[: start + 4] + encoded + raw[start + 4 + used :]
        start = raw.find(b"\r\n\r\n", start + 4)
    return raw


Operator = Callable[[bytes, random.Random], bytes]
OPERATORS: dict[str, Operator] = {
    "insert_byte": insert_byte,
    "delete_byte": delete_byte,
    "replace_byte": replace_byte,
    "insert_special": insert_special,
    "duplicate_field": duplicate_field,
    "resplit_chunks": resplit_chunks,
}


def mutate(raw: bytes, rng: random.Random, rounds: int | None = None) -> bytes:
    """``raw`` after one to three random operators."""
    for _ in range(rng.randint(1, 3) if rounds is None else rounds):
        raw = rng.choice(list(OPERATORS.values()))(raw, rng)
    return raw
