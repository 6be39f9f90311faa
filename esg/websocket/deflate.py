"""permessage-deflate (RFC 7692): negotiation, and zlib contexts for each direction.

Pure Python on purpose: zlib does the work, so there is nothing for Cython to speed up.

* ``negotiate()`` reads the client's ``Sec-WebSocket-Extensions`` offers and accepts the first
  acceptable permessage-deflate offer (section 7.1); it never raises.  An offer with an unknown
  or repeated parameter, an invalid value or broken syntax is declined (section 5), and so is
  everything after an unterminated quoted string, which may hide commas.
* ``Inflater`` decompresses the client's messages piece by piece with a bound on the output, so
  the frame reader can enforce its size limit after decompression without ever holding more
  than the limit (CVE-2018-1000518 was an unbounded inflate).
* ``Deflater`` compresses the server's messages.

What esg answers to each offer parameter (section 7.1):

* ``server_no_context_takeover``: accepted and echoed, as the RFC requires.
* ``client_no_context_takeover``: echoed.  The client only offers it when it doesn't need its
  context anyway, and once it is agreed the inflater drops its zlib context between messages
  (~40 KiB per idle connection).
* ``server_max_window_bits=N``: accepted and echoed with N.  zlib refuses a raw-deflate window
  of 8 bits, so N=8 compresses with 9; zlib never emits a match distance above the window size
  minus 262 bytes (250 for 9 bits), so that stream still decodes with a 256-byte window.
* ``client_max_window_bits``: with a value N it is echoed with N, which binds the client to a
  window of at most 2**N and lets the inflater use a smaller one; without a value (the client
  merely supports it) it is not echoed and the client may use the full 32 KiB window.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "DecompressionError",
    "DeflateParams",
    "Deflater",
    "Inflater",
    "MessageTooBig",
    "negotiate",
]

EXTENSION_NAME = b"permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # the empty stored block a sync flush ends with (section 7.2.1)


@dataclass(frozen=True)
class DeflateParams:
    """The agreed parameters of one connection's permessage-deflate."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


# -- negotiation -------------------------------------------------------------------------------

_OWS = rb"[ \t]*"
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_PARAM_SYNTAX = rb"%s;%s%s(?:%s=%s(?:%s|%s))?" % (_OWS, _OWS, _TOKEN, _OWS, _OWS, _TOKEN, _QUOTED)
_PARAM = re.compile(
    rb"%s;%s(%s)(?:%s=%s(%s|%s))?" % (_OWS, _OWS, _TOKEN, _OWS, _OWS, _TOKEN, _QUOTED)
)
_ELEMENT = re.compile(rb"%s(%s)((?:%s)*)%s(?:,|\Z)" % (_OWS, _TOKEN, _PARAM_SYNTAX, _OWS))
_EMPTY_ELEMENT = re.compile(rb"[ \t]*(?:,|\Z)")
# Everything up to the next comma outside a quoted string (a malformed element is skipped).
_SKIP = re.compile(rb'(?:[^",]|"(?:[^"\\]|\\.)*")*', re.DOTALL)
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_WINDOW_BITS = re.compile(rb"[89]|1[0-5]")  # section 7.1.2.1: no leading zeros

Params = list[tuple[bytes, "bytes | None"]]


def negotiate(offers: list[bytes]) -> tuple[DeflateParams, bytes] | None:
    """The first acceptable permessage-deflate offer: its parameters and the response value.

    ``offers`` holds every Sec-WebSocket-Extensions value of the request, in order.  None
    means no offer was acceptable and the connection goes on without compression.
    """
    for value in offers:
        for name, params in _extensions(value):
            if name == EXTENSION_NAME:
                accepted = _accept(params)
                if accepted is not None:
                    return accepted
    return None


def _extensions(value: bytes) -> Iterator[tuple[bytes, Params]]:
    """The well-formed elements of one header value; malformed ones are skipped."""
    pos = 0
    end = len(value)
    while pos < end:
        match = _EMPTY_ELEMENT.match(value, pos)
        if match is not None:
            pos = match.end()
            continue
        match = _ELEMENT.match(value, pos)
        if match is not None:
            yield match.group(1), _params(match.group(2))
            pos = match.end()
            continue
        pos = _SKIP.match(value, pos).end()  # type: ignore[union-attr]  # matches empty
        if pos < end and value[pos] != 0x2C:
            return  # an unterminated quoted string swallows the rest of the value
        pos += 1


def _params(block: bytes) -> Params:
    params: Params = []
    pos = 0
    while pos < len(block):
        match = _PARAM.match(block, pos)
        assert match is not None  # _ELEMENT matched the block as a run of parameters
        value = match.group(2)
        if value is not None and value[:1] == b'"':
            value = _UNESCAPE.sub(rb"\1", value[1:-1])
        params.append((match.group(1), value))
        pos = match.end()
    return params


def _accept(params: Params) -> tuple[DeflateParams, bytes] | None:
    """Accept one permessage-deflate offer, or None to decline it (section 5)."""
    seen: set[bytes] = set()
    server_no_context = client_no_context = False
    server_bits: int | None = None
    client_bits: int | None = None
    for name, value in params:
        if name in seen:
            return None
        seen.add(name)
        if name in (b"server_no_context_takeover", b"client_no_context_takeover"):
            if value is not None:
                return None
            if name == b"server_no_context_takeover":
                server_no_context = True
            else:
                client_no_context = True
        elif name == b"server_max_window_bits":
            if value is None or _WINDOW_BITS.fullmatch(value) is None:
                return None
            server_bits = int(value)
        elif name == b"client_max_window_bits":
            if value is not None:
                if _WINDOW_BITS.fullmatch(value) is None:
                    return None
                client_bits = int(value)
        else:
            return None
    response = [EXTENSION_NAME]
    if server_no_context:
        response.append(b"server_no_context_takeover")
    if client_no_context:
        response.append(b"client_no_context_takeover")
    if server_bits is not None:
        response.append(b"server_max_window_bits=%d" % server_bits)
    if client_bits is not None:
        response.append(b"client_max_window_bits=%d" % client_bits)
    agreed = DeflateParams(
        server_no_context_takeover=server_no_context,
        client_no_context_takeover=client_no_context,
        server_max_window_bits=15 if server_bits is None else server_bits,
        client_max_window_bits=15 if client_bits is None else client_bits,
    )
    return agreed, b"; ".join(response)


# -- compression contexts ----------------------------------------------------------------------


class MessageTooBig(Exception):
    """A compressed message inflates to more than the limit it was given."""


class DecompressionError(Exception):
    """The compressed data is not valid DEFLATE."""


class Inflater:
    """Decompresses the client's messages (section 7.2.2), one piece at a time.

    For each message call ``decompress()`` with every piece of the payload as it arrives, then
    ``finish()`` once.  ``limit`` is what is left of the message's size budget: a call never
    produces more than ``limit + 1`` bytes (zlib's ``max_length``), and raises MessageTooBig
    when the piece would inflate beyond ``limit``.  After an exception the inflater is broken.
    """

    def __init__(self, params: DeflateParams) -> None:
        # A window at least as big as the client's decodes its data.  At least 9 bits: zlib-based
        # clients asked for 8 compress with 9 (zlib refuses 8 for raw deflate), and although
        # zlib keeps its matches within 250 bytes, another encoder with 512 bytes might not.
        self._wbits = -max(params.client_max_window_bits, 9)
        self._reset = params.client_no_context_takeover
        self._zobj: zlib._Decompress | None = None

    def decompress(self, data: bytes, limit: int) -> bytes:
        """Inflate the next piece of the current message: at most ``limit`` bytes come out."""
        zobj = self._zobj
        if zobj is None:
            zobj = self._zobj = zlib.decompressobj(self._wbits)
        elif zobj.eof:
            if data:
                raise DecompressionError("Data after the final DEFLATE block")
            return b""
        try:
            out = zobj.decompress(data, limit + 1)
        except zlib.error as exc:
            raise DecompressionError(str(exc)) from None
        if len(out) > limit:
            raise MessageTooBig(f"Message inflates beyond {limit} bytes")
        if zobj.unused_data:
            raise DecompressionError("Data after the final DEFLATE block")
        return out

    def finish(self, limit: int) -> bytes:
        """End the current message: inflate the tail the sender stripped (section 7.2.2)."""
        zobj = self._zobj
        # After a final block (section 7.2.3.4) the stream is over: there is no tail to add.
        out = b"" if zobj is not None and zobj.eof else self.decompress(_TAIL, limit)
        zobj = self._zobj
        assert zobj is not None
        if self._reset or zobj.eof:
            # A sender that ended its stream with a final block (section 7.2.3.4) starts a new
            # one with the next message; esg keeps no copy of the old window to seed it with.
            self._zobj = None
        return out


class Deflater:
    """Compresses the server's messages (section 7.2.1).

    ``mem_level`` 5 rather than zlib's 8 cuts the compressor to ~150 KiB per connection for a
    small loss of ratio; with ``server_no_context_takeover`` the context exists only while a
    message is being compressed.
    """

    def __init__(self, params: DeflateParams, *, level: int = 6, mem_level: int = 5) -> None:
        self._wbits = -max(params.server_max_window_bits, 9)  # see the module docstring
        self._level = level
        self._mem_level = mem_level
        self._reset = params.server_no_context_takeover
        self._zobj: zlib._Compress | None = None

    def compress(self, payload: bytes) -> bytes:
        """A message's compressed payload: DEFLATE, sync-flushed, the 00 00 ff ff tail removed."""
        zobj = self._zobj
        if zobj is None:
            zobj = zlib.compressobj(self._level, zlib.DEFLATED, self._wbits, self._mem_level)
            if not self._reset:
                self._zobj = zobj
        data = zobj.compress(payload) + zobj.flush(zlib.Z_SYNC_FLUSH)
        if data.endswith(_TAIL):
            data = data[:-4]
        return data
