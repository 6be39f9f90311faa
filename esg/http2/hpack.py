# cython: annotation_typing=False
"""HPACK, the header compression of HTTP/2 (RFC 7541): a sans-IO decoder and encoder.

Compiled twin ``esg.http2._hpack_c``, typed by ``_hpack_c.pxd``.

A ``Decoder`` turns one complete header block (a HEADERS frame's fragment and its
CONTINUATION fragments, joined) into a list of ``(name, value)`` byte pairs, the form ASGI uses;
an ``Encoder`` turns a response's header list into a block.  Each keeps one side of a
connection's compression context, its dynamic table.  Nothing here touches a socket, and the
same file is compiled by Cython too.

Rules of the decoder, in one place:

* Anything malformed raises ``HPACKError`` (COMPRESSION_ERROR, a connection error): an index of
  0 or past the end of the tables; an integer or string cut off by the end of the block; an
  integer above ``MAX_INTEGER`` or longer than 5 continuation bytes; a Huffman string holding
  EOS, padded with more than 7 bits or with a zero bit; a dynamic table size update above the
  ``max_table_size`` we announced, or after the first field of a block; a block that doesn't
  open with the size update RFC 7541 section 4.2 demands after that limit was lowered below
  the table's size.  The decoder then refuses every later block: the context is gone.
* The decoded header list is limited to ``max_header_list_size`` bytes, counted as
  SETTINGS_MAX_HEADER_LIST_SIZE counts them (name + value + 32 per field, RFC 9113 section
  6.5.2).  Past it the decoder stops collecting fields and drops those it had, but goes on to
  the end of the block, keeping the dynamic table in step with the peer (RFC 9113 section 4.3),
  and then raises ``HeaderListTooLarge``, which refuses the stream, not the connection.  So a
  block of one-byte references to a large table entry (an "HPACK bomb") costs time linear in
  its own length and never more memory than the limit.
* Names and values are returned as decoded: checking them (lowercase names, pseudo-header
  rules, forbidden characters) is HTTP/2's job (RFC 9113 section 8.2), not HPACK's.  Whether a
  field came never-indexed isn't reported: that flag binds intermediaries that re-encode the
  field (RFC 7541 section 6.2.3), and esg is an origin server.
* A block is decoded whole, once its END_HEADERS fragment arrived: the HTTP/2 layer bounds
  what it buffers, and the decoder spends time linear in the block and never allocates more
  than the block's size (a string can't be longer than the bytes left) plus the list limit.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from esg.http2.errors import HeaderListTooLarge, HPACKError
from esg.http2.huffman import (
    ACCEPTING,
    CODES,
    EMITS,
    FAILED,
    NEXT_STATE,
    ROOT,
    SYMBOL_SHIFT,
    decoder_tables,
)

__all__ = [
    "DEFAULT_MAX_HEADER_LIST_SIZE",
    "DEFAULT_TABLE_SIZE",
    "MAX_INTEGER",
    "STATIC_TABLE",
    "Decoder",
    "Encoder",
    "HPACKError",
    "HeaderListTooLarge",
    "huffman_decode",
    "huffman_encode",
]

# SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 9113 section 6.5.2).
DEFAULT_TABLE_SIZE = 4096
DEFAULT_MAX_HEADER_LIST_SIZE = 65536
# The largest integer a peer may send (an index, a string length, a table size): far above any
# legitimate value, and small enough to stay a C integer and to bound every allocation.
MAX_INTEGER = (1 << 32) - 1
# What each table entry costs beyond its name and value (RFC 7541 section 4.1).
ENTRY_OVERHEAD = 32

# RFC 7541 Appendix A: index i is STATIC_TABLE[i - 1].
# fmt: off
STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = (
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
)
# fmt: on
# Module-private aliases of the constants: the compiled build holds these as C values.
_STATIC = STATIC_TABLE
_STATIC_LENGTH = 61
_MAX_INTEGER = MAX_INTEGER
_ENTRY_OVERHEAD = ENTRY_OVERHEAD

# The Huffman tables (esg/http2/huffman.py explains the state machine).  The compiled build
# reads them through typed memoryviews; the pure one indexes the array and bytes directly.
_HUFFMAN_TRANSITIONS, _HUFFMAN_ACCEPTING = decoder_tables()
_HUFFMAN_CODE = array("I", [code for code, _ in CODES[:256]])
_HUFFMAN_LENGTH = bytes([length for _, length in CODES[:256]])
# Bit fields of a transition, as C-typed module constants in the compiled build.
_NEXT_STATE = NEXT_STATE
_EMITS = EMITS
_SYMBOL_SHIFT = SYMBOL_SHIFT
_ACCEPTING = ACCEPTING
_ROOT = ROOT
_FAILED = FAILED


def _huffman_decode(block: bytes, start: int, stop: int) -> bytes:
    """Decode the Huffman string ``block[start:stop]`` (RFC 7541 section 5.2)."""
    # Every symbol takes at least 5 bits: the output is at most 8/5 of the input.
    out = bytearray((stop - start) * 8 // 5)
    count = 0
    state = _ROOT
    for pos in range(start, stop):
        byte = block[pos]
        transition = _HUFFMAN_TRANSITIONS[state << 4 | byte >> 4]
        if transition & _EMITS:
            out[count] = transition >> _SYMBOL_SHIFT
            count += 1
        transition = _HUFFMAN_TRANSITIONS[(transition & _NEXT_STATE) << 4 | (byte & 0x0F)]
        if transition & _EMITS:
            out[count] = transition >> _SYMBOL_SHIFT
            count += 1
        state = transition & _NEXT_STATE
    if _HUFFMAN_ACCEPTING[state] != _ACCEPTING:
        if state == _FAILED:
            raise HPACKError("a Huffman string holds the EOS symbol")
        raise HPACKError("a Huffman string's padding is not 0 to 7 one-bits")
    del out[count:]
    return bytes(out)


def huffman_decode(data: bytes) -> bytes:
    """Decode a whole Huffman-coded string; ``HPACKError`` if it is invalid."""
    return _huffman_decode(data, 0, len(data))


def huffman_encoded_length(data: bytes) -> int:
    """How many bytes ``huffman_encode(data)`` returns."""
    bits = 0
    for byte in data:
        bits += _HUFFMAN_LENGTH[byte]
    return (bits + 7) >> 3


def huffman_encode(data: bytes) -> bytes:
    """Huffman-code ``data`` (RFC 7541 section 5.2), padded with the high bits of EOS."""
    out = bytearray()
    pending = 0  # the bits not written yet, right-aligned; never more than 7 between symbols
    bits = 0
    for byte in data:
        pending = (pending << _HUFFMAN_LENGTH[byte]) | _HUFFMAN_CODE[byte]
        bits += _HUFFMAN_LENGTH[byte]
        while bits >= 8:
            bits -= 8
            out.append((pending >> bits) & 0xFF)
        pending &= (1 << bits) - 1
    if bits:
        out.append(((pending << (8 - bits)) | (0xFF >> bits)) & 0xFF)
    return bytes(out)


def _encode_string(data: bytes) -> bytes:
    """A string literal (RFC 7541 section 5.2): Huffman-coded only when that is shorter."""
    out = bytearray()
    huffman_length = huffman_encoded_length(data)
    if huffman_length < len(data):
        _put_integer(out, huffman_length, 7, 0x80)
        out += huffman_encode(data)
    else:
        _put_integer(out, len(data), 7, 0)
        out += data
    return bytes(out)


def _put_integer(out: bytearray, value: int, prefix_bits: int, flags: int) -> None:
    """Append ``value`` with an N-bit prefix (RFC 7541 section 5.1); ``flags`` fill the rest
    of the first byte."""
    prefix_max = (1 << prefix_bits) - 1
    if value < prefix_max:
        out.append(flags | value)
        return
    out.append(flags | prefix_max)
    value -= prefix_max
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _entry_size(field: tuple[bytes, bytes]) -> int:
    return len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD


class Decoder:
    """The decoding half of a connection's HPACK context; see the module docstring.

    ``max_table_size`` is the SETTINGS_HEADER_TABLE_SIZE in force.  On an HTTP/2 connection
    that is the default 4096 until the peer acknowledges this side's SETTINGS (its encoder may
    use a 4096-byte table until then), so construct with the default and call
    ``set_max_table_size()`` on the SETTINGS ACK.
    """

    # Exactly the C fields of _hpack_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "max_header_list_size",
        "_entries",
        "_size",
        "_max_size",
        "_limit",
        "_update_bound",
        "_pos",
        "_failed",
    )

    def __init__(
        self,
        max_table_size: int = DEFAULT_TABLE_SIZE,
        max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE,
    ) -> None:
        # Public: the connection may change it between blocks (a new SETTINGS of its own).
        self.max_header_list_size = max_header_list_size
        self._entries: list[tuple[bytes, bytes]] = []  # the dynamic table, oldest first
        self._size = 0  # of the dynamic table, counted as RFC 7541 section 4.1 says
        # The table's maximum size, as the peer's encoder last set it (RFC 7541 section 4.2);
        # an encoder starts from the setting's value.
        self._max_size = max_table_size
        self._limit = max_table_size  # SETTINGS_HEADER_TABLE_SIZE: _max_size may not exceed it
        # When the limit was lowered below _max_size: the next block must open with a size
        # update no larger than this (-1: none is owed).
        self._update_bound = -1
        self._pos = 0  # where the helpers of decode() are in the block
        self._failed = False

    @property
    def table_size(self) -> int:
        """The dynamic table's size: names, values and 32 bytes per entry."""
        return self._size

    @property
    def max_table_size(self) -> int:
        """The dynamic table's maximum size as the peer's encoder last set it."""
        return self._max_size

    def dynamic_table(self) -> list[tuple[bytes, bytes]]:
        """The dynamic table's entries, newest (index 62) first."""
        return self._entries[::-1]

    def set_max_table_size(self, limit: int) -> None:
        """Our new SETTINGS_HEADER_TABLE_SIZE, once the peer acknowledged it.

        The peer's encoder must confirm a smaller limit (the smallest, if it changed several
        times) with a size update at the start of its next block; a larger one it may use or
        not (RFC 7541 section 4.2).
        """
        if limit < 0 or limit > MAX_INTEGER:
            raise ValueError(f"a table size of {limit} bytes")
        self._limit = limit
        if limit < self._max_size and (self._update_bound < 0 or limit < self._update_bound):
            self._update_bound = limit

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The header list of one complete header block.

        Raises ``HPACKError`` (connection error) or ``HeaderListTooLarge`` (stream error).
        """
        if self._failed:
            raise HPACKError("the compression context was lost on an earlier header block")
        self._failed = True  # until the block has been decoded to its end
        headers = self._decode_block(block)
        self._failed = False
        if headers is None:
            raise HeaderListTooLarge(self.max_header_list_size)
        return headers

    def _decode_block(self, block: bytes) -> list[tuple[bytes, bytes]] | None:
        """``decode()``'s work; None instead of the list when it is too large."""
        headers: list[tuple[bytes, bytes]] | None = []
        end = len(block)
        pos = 0
        list_size = 0
        limit = self.max_header_list_size
        seen_field = False  # size updates may only come before the first field
        while pos < end:
            byte = block[pos]
            pos += 1
            if byte & 0x80:
                # Indexed field (RFC 7541 section 6.1): 1xxxxxxx.
                index = byte & 0x7F
                if index == 0x7F:
                    index = self._integer(block, pos, index)
                    pos = self._pos
                if self._update_bound >= 0:
                    self._owed_update()
                field = self._field(index)
            elif byte & 0xE0 == 0x20:
                # Dynamic table size update (RFC 7541 section 6.3): 001xxxxx, only before the
                # block's first field (section 4.2).
                size = byte & 0x1F
                if size == 0x1F:
                    size = self._integer(block, pos, size)
                    pos = self._pos
                if seen_field:
                    raise HPACKError("a dynamic table size update after a header field")
                if size > self._limit:
                    raise HPACKError(
                        f"a dynamic table size update to {size} bytes, above the {self._limit}"
                        " of SETTINGS_HEADER_TABLE_SIZE"
                    )
                if self._update_bound >= 0 and size <= self._update_bound:
                    self._update_bound = -1
                self._resize(size)
                continue
            else:
                # A literal field (RFC 7541 section 6.2): with incremental indexing 01xxxxxx
                # (6-bit index prefix), without indexing 0000xxxx or never indexed 0001xxxx
                # (4-bit prefix).  Index 0: the name follows as a literal.
                indexing = byte & 0x40
                if indexing:
                    index = byte & 0x3F
                    prefix_max = 0x3F
                else:
                    index = byte & 0x0F
                    prefix_max = 0x0F
                if index == prefix_max:
                    index = self._integer(block, pos, index)
                    pos = self._pos
                if self._update_bound >= 0:
                    self._owed_update()
                self._pos = pos
                name = self._field(index)[0] if index else self._string(block)
                field = (name, self._string(block))
                pos = self._pos
                if indexing:
                    self._insert(field)
            seen_field = True
            if headers is not None:
                list_size += len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
                if list_size > limit:
                    headers = None  # stop collecting; drop what was collected
                else:
                    headers.append(field)
        if self._update_bound >= 0:
            self._owed_update()
        return headers

    def _owed_update(self) -> None:
        raise HPACKError(
            "the header block doesn't open with the dynamic table size update owed since"
            f" SETTINGS_HEADER_TABLE_SIZE was lowered to {self._update_bound}"
        )

    def _integer(self, block: bytes, pos: int, value: int) -> int:
        """An integer whose prefix was all ones (``value``): add the continuation bytes from
        ``pos`` on (RFC 7541 section 5.1) and leave ``_pos`` after them."""
        end = len(block)
        shift = 0
        while True:
            if pos >= end:
                raise HPACKError("an integer is cut off by the end of the header block")
            byte = block[pos]
            pos += 1
            # A 64-bit C integer in the compiled build: shifted as a C int, 7 bits moved up 28
            # would overflow.
            group = byte & 0x7F
            value += group << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 28:
                raise HPACKError("an integer longer than 5 continuation bytes")
        if value > _MAX_INTEGER:
            raise HPACKError(f"an integer above {_MAX_INTEGER}")
        self._pos = pos
        return value

    def _string(self, block: bytes) -> bytes:
        """The string literal at ``_pos`` (RFC 7541 section 5.2); leaves ``_pos`` after it."""
        pos = self._pos
        end = len(block)
        if pos >= end:
            raise HPACKError("a string literal is missing at the end of the header block")
        byte = block[pos]
        pos += 1
        length = byte & 0x7F
        if length == 0x7F:
            length = self._integer(block, pos, length)
            pos = self._pos
        if length > end - pos:
            raise HPACKError("a string literal is cut off by the end of the header block")
        self._pos = pos + length
        if byte & 0x80:
            return _huffman_decode(block, pos, pos + length)
        return block[pos : pos + length]

    def _field(self, index: int) -> tuple[bytes, bytes]:
        """The entry at ``index`` of the static and dynamic tables (RFC 7541 section 2.3.3)."""
        if index <= _STATIC_LENGTH:
            if index == 0:
                raise HPACKError("index 0")
            return _STATIC[index - 1]
        position = len(self._entries) - (index - _STATIC_LENGTH)
        if position < 0:
            raise HPACKError(
                f"index {index} is past the dynamic table's {len(self._entries)} entries"
            )
        return self._entries[position]

    def _insert(self, field: tuple[bytes, bytes]) -> None:
        """Add ``field`` to the dynamic table, evicting the oldest entries to make room; a
        field larger than the whole table empties it (RFC 7541 section 4.4)."""
        size = _entry_size(field)
        if size > self._max_size:
            self._entries.clear()
            self._size = 0
            return
        self._evict(self._max_size - size)
        self._entries.append(field)
        self._size += size

    def _resize(self, max_size: int) -> None:
        self._max_size = max_size
        self._evict(max_size)

    def _evict(self, room: int) -> None:
        """Evict the oldest entries until the table's size is at most ``room``."""
        entries = self._entries
        size = self._size
        evicted = 0
        while size > room:
            size -= _entry_size(entries[evicted])
            evicted += 1
        if evicted:
            del entries[:evicted]
        self._size = size


# Fields an encoder shouldn't put in a table: whether an attacker can probe the table's
# contents (CRIME-style, RFC 7541 section 7.1) matters more than their compression.
_NEVER_INDEXED = frozenset([b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"])
# Fields whose values rarely repeat: indexing them would only evict the ones that do.
_NOT_INDEXED = frozenset(
    [b":path", b"content-length", b"content-range", b"etag", b"last-modified", b"location", b"age"]
)
# The encoder's view of the static table, by name: its first index, and its values' indexes.
# Looked up by name and then value, never by (name, value): the name and value objects an app
# sends repeat and keep their hashes, while a tuple made per field would be hashed each time.
_STATIC_BY_NAME: dict[bytes, tuple[int, dict[bytes, int]]] = {}
for _index, (_name, _value) in enumerate(STATIC_TABLE, 1):
    _STATIC_BY_NAME.setdefault(_name, (_index, {}))[1].setdefault(_value, _index)
del _index, _name, _value
# Encoded string literals kept per encoder: responses repeat their names and values.
_LITERAL_CACHE_SIZE = 256


class Encoder:
    """The encoding half of a connection's HPACK context, for the response headers.

    Fields of the static table are sent as one-byte indexes (``:status: 200``); other fields
    reuse the tables' names and go into the dynamic table, up to ``max_table_size`` bytes (the
    memory this side is willing to spend; the peer's SETTINGS_HEADER_TABLE_SIZE caps it
    further, see ``set_max_table_size()``), except sensitive ones (never indexed) and ones
    whose values rarely repeat.  Strings are Huffman-coded when that is shorter.

    Names must already be lowercase (RFC 9113 section 8.2.1): the encoder sends them as given.
    """

    __slots__ = (
        "_entries",
        "_size",
        "_max_size",
        "_own_limit",
        "_evicted",
        "_values",
        "_names",
        "_update_min",
        "_update_to",
        "_literals",
        "_last_fields",
        "_last_block",
    )

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        if max_table_size < 0:
            raise ValueError(f"a table size of {max_table_size} bytes")
        self._entries: list[tuple[bytes, bytes]] = []  # the dynamic table, oldest first
        self._size = 0
        self._own_limit = max_table_size
        # The peer's decoder starts from the default setting; until its SETTINGS arrive, that is
        # the most this side may use (RFC 9113 section 6.5.2).
        self._max_size = DEFAULT_TABLE_SIZE
        # Entry number n (counted from 0 since the connection began) is at position
        # n - _evicted of _entries.  _values maps a name to its values' latest entry numbers,
        # _names a name to the latest entry with that name.
        self._evicted = 0
        self._values: dict[bytes, dict[bytes, int]] = {}
        self._names: dict[bytes, int] = {}
        # Size updates owed at the start of the next block (-1: none): the smallest maximum size
        # since the last block, then the current one (RFC 7541 section 4.2).
        self._update_min = -1
        self._update_to = -1
        self._literals: dict[bytes, bytes] = {}
        # The last block that changed nothing in the table, and its fields: the same fields
        # encode to the same bytes as long as the table stays as it is (a server's responses
        # often repeat their header block exactly: gRPC's, a health check's, within a second
        # also a whole API's).  Anything that changes the table forgets it.
        self._last_fields: tuple[tuple[bytes, bytes], ...] | None = None
        self._last_block = b""
        self._plan_update(min(max_table_size, DEFAULT_TABLE_SIZE))

    @property
    def table_size(self) -> int:
        """The dynamic table's size: names, values and 32 bytes per entry."""
        return self._size

    def dynamic_table(self) -> list[tuple[bytes, bytes]]:
        """The dynamic table's entries, newest (index 62) first."""
        return self._entries[::-1]

    def set_max_table_size(self, peer_limit: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE (from the SETTINGS this side acknowledges): the
        table may grow up to it, but no further than this side's own ``max_table_size``.  The
        next block opens with the size update(s) that tell the peer's decoder."""
        if peer_limit < 0 or peer_limit > MAX_INTEGER:
            raise ValueError(f"a table size of {peer_limit} bytes")
        self._plan_update(min(peer_limit, self._own_limit))

    def _plan_update(self, max_size: int) -> None:
        if max_size == self._max_size and self._update_to < 0:
            return
        if self._update_min < 0 or max_size < self._update_min:
            self._update_min = max_size
        self._update_to = max_size

    def encode(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """One header block for ``headers``, in their order."""
        fields = tuple(headers)
        repeatable = self._update_to < 0  # (a block with a size update is never repeated)
        if repeatable and fields == self._last_fields:
            return self._last_block
        inserted = self._evicted + len(self._entries)  # entries ever inserted
        out = bytearray()
        if self._update_to >= 0:
            if self._update_min < self._update_to:
                _put_integer(out, self._update_min, 5, 0x20)
                self._resize(self._update_min)
            _put_integer(out, self._update_to, 5, 0x20)
            self._resize(self._update_to)
            self._update_min = self._update_to = -1
        for pair in fields:
            if type(pair) is not tuple:  # e.g. a list pair, which its owner might change
                repeatable = False
            name, value = pair
            if type(name) is not bytes or type(value) is not bytes:
                repeatable = False  # (the pure build takes a bytearray as it comes)
            # The dynamic table first: after a connection's first response, most of a
            # response's fields are there (the static table never is: its fields are sent by
            # their static index and never inserted).
            values = self._values.get(name)
            if values is not None:
                number = values.get(value, -1)
                if number >= 0:
                    index = self._dynamic_index(number)
                    if index < 127:
                        out.append(0x80 | index)
                    else:
                        _put_integer(out, index, 7, 0x80)
                    continue
            static = _STATIC_BY_NAME.get(name)
            if static is not None:
                static_values = static[1]
                index = static_values.get(value, 0)
                if index:  # (at most 61: one byte)
                    out.append(0x80 | index)
                    continue
                index = static[0]
            else:
                index = 0
            if not index:
                number = self._names.get(name, -1)
                if number >= 0:
                    index = self._dynamic_index(number)
            field = (name, value)
            if name in _NEVER_INDEXED:
                _put_integer(out, index, 4, 0x10)
            elif name in _NOT_INDEXED or _entry_size(field) * 2 > self._max_size:
                _put_integer(out, index, 4, 0x00)
            else:
                _put_integer(out, index, 6, 0x40)
                if not index:
                    out += self._literal(name)
                out += self._literal(value)
                self._insert(field)
                continue
            if not index:
                out += self._literal(name)
            out += self._literal(value)
        block = bytes(out)
        if repeatable and self._evicted + len(self._entries) == inserted:  # none inserted
            self._last_fields = fields
            self._last_block = block
        return block

    def _literal(self, data: bytes) -> bytes:
        encoded = self._literals.get(data)
        if encoded is None:
            encoded = _encode_string(data)
            if len(self._literals) >= _LITERAL_CACHE_SIZE:
                self._literals.clear()
            self._literals[data] = encoded
        return encoded

    def _dynamic_index(self, number: int) -> int:
        # The newest entry, number _evicted + len(_entries) - 1, is index 62.
        return _STATIC_LENGTH + self._evicted + len(self._entries) - number

    def _insert(self, field: tuple[bytes, bytes]) -> None:
        self._last_fields = None  # a new block would refer to the new entry
        size = _entry_size(field)
        self._evict(self._max_size - size)
        number = self._evicted + len(self._entries)
        self._entries.append(field)
        self._size += size
        name = field[0]
        values = self._values.get(name)
        if values is None:
            values = self._values[name] = {}
        values[field[1]] = number
        self._names[name] = number

    def _resize(self, max_size: int) -> None:
        self._max_size = max_size
        self._evict(max_size)

    def _evict(self, room: int) -> None:
        """Evict the oldest entries until the table's size is at most ``room``, forgetting
        them in the lookup dicts unless a newer entry took their place there."""
        entries = self._entries
        if self._size > room:
            self._last_fields = None  # blocks made before may refer to what goes now
        while self._size > room:
            field = entries[0]
            number = self._evicted
            del entries[0]
            self._evicted += 1
            self._size -= _entry_size(field)
            name = field[0]
            values = self._values[name]
            if values.get(field[1]) == number:
                del values[field[1]]
                if not values:
                    del self._values[name]
            if self._names.get(name) == number:
                del self._names[name]
