# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The compiled twin of ``esg/http/headscan.py``: one C pass over a request head.

Same contract as the Python scanner (its docstring lists the rules and the order of checks);
the same corpus and the compiled/pure agreement tests run against both.  Where the Python
version runs regular expressions, this one walks the bytes once with 256-entry lookup tables,
lowercases names in C, and hands out shared objects for common methods and field names, so a
typical request costs one bytes object per value and no per-field Python calls.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memchr, memcmp

from esg.http.errors import ParseError

# Character classes (RFC 9110 section 5.6.2 tchar; the target's visible ASCII minus "#";
# a field value's VCHAR / obs-text / SP / HTAB).
cdef unsigned char _TCHAR[256]
cdef unsigned char _TARGET[256]
cdef unsigned char _VALUE[256]
cdef unsigned char _LOWER[256]


cdef void _init_tables():
    cdef int c
    for c in range(256):
        _TCHAR[c] = 0
        _TARGET[c] = 1 if (0x21 <= c <= 0x7E and c != 0x23) else 0
        _VALUE[c] = 1 if (0x21 <= c <= 0x7E or c >= 0x80 or c == 0x20 or c == 0x09) else 0
        _LOWER[c] = c + 32 if 0x41 <= c <= 0x5A else c
    for c in b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        _TCHAR[c] = 1


_init_tables()

# Shared objects for what nearly every request carries: no allocation, and their hashes are
# computed once (the parser looks field names up in a set).
_METHODS = (b"GET", b"PUT", b"POST", b"HEAD", b"PATCH", b"DELETE", b"OPTIONS")
_COMMON_NAMES = (
    b"host", b"accept", b"cookie", b"origin", b"expect", b"upgrade", b"referer",
    b"user-agent", b"connection", b"keep-alive", b"content-type", b"authorization",
    b"cache-control", b"content-length", b"accept-encoding", b"accept-language",
    b"x-forwarded-for", b"transfer-encoding", b"x-forwarded-proto", b"x-forwarded-host",
    b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-protocol",
    b"sec-websocket-extensions", b"if-none-match", b"if-modified-since", b"pragma",
    b"x-real-ip", b"forwarded", b"range", b"te", b"dnt",
)
_MAX_COMMON = 32
# _NAMES_BY_LENGTH[n] holds the common names of length n.
_NAMES_BY_LENGTH = [
    tuple(name for name in _COMMON_NAMES if len(name) == n) for n in range(_MAX_COMMON + 1)
]


cdef inline object _method(const unsigned char* p, Py_ssize_t n):
    cdef bytes known
    for known in _METHODS:
        if PyBytes_GET_SIZE(known) == n and memcmp(PyBytes_AS_STRING(known), p, n) == 0:
            return known
    return PyBytes_FromStringAndSize(<const char*>p, n)


cdef inline object _field_name(const unsigned char* p, Py_ssize_t n):
    cdef bytes known
    cdef const unsigned char* k
    cdef Py_ssize_t i
    if n <= _MAX_COMMON:
        for known in _NAMES_BY_LENGTH[n]:
            k = <const unsigned char*>PyBytes_AS_STRING(known)
            i = 0
            while i < n and _LOWER[p[i]] == k[i]:
                i += 1
            if i == n:
                return known
    cdef bytes name = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* out = <unsigned char*>PyBytes_AS_STRING(name)
    for i in range(n):
        out[i] = _LOWER[p[i]]
    return name


cdef inline bint _starts_forwarded(const unsigned char* p):
    """Does the name at ``p`` (at least 12 bytes) start with x-forwarded-, in any case?"""
    cdef const unsigned char* prefix = b"x-forwarded-"
    cdef int i
    for i in range(12):
        if _LOWER[p[i]] != prefix[i]:
            return False
    return True


cdef object _bare_line_end(const unsigned char* p, Py_ssize_t n):
    """The first bare CR or LF in ``p[:n]`` as an error, or None.  ``p[:n]`` ends in CRLF."""
    cdef const unsigned char* hit
    cdef Py_ssize_t at = 0
    while at < n:
        hit = <const unsigned char*>memchr(p + at, 10, n - at)
        if hit == NULL:
            break
        at = hit - p
        if at == 0 or p[at - 1] != 13:
            return ParseError(400, "Bare CR or LF in the request head", "bad_line_ending")
        at += 1
    at = 0
    while at < n:
        hit = <const unsigned char*>memchr(p + at, 13, n - at)
        if hit == NULL:
            break
        at = hit - p
        if at + 1 >= n or p[at + 1] != 10:
            return ParseError(400, "Bare CR or LF in the request head", "bad_line_ending")
        at += 1
    return None


cdef object _request_line_error(const unsigned char* p, Py_ssize_t n):
    # Mirrors the Python scanner's wording: three space-separated parts ending in a
    # well-formed version mean the method or the target is at fault.
    cdef Py_ssize_t spaces = 0, i
    for i in range(n):
        if p[i] == 32:
            spaces += 1
    if (
        spaces == 2 and n >= 12 and p[0] != 32 and p[n - 10] != 32 and memcmp(p + n - 8, b"HTTP/", 5) == 0
        and 48 <= p[n - 3] <= 57 and p[n - 2] == 46 and 48 <= p[n - 1] <= 57
        and p[n - 9] == 32
    ):
        return ParseError(400, "Invalid method or request target", "bad_request_line")
    return ParseError(400, "Invalid request line", "bad_request_line")


cdef object _field_error(const unsigned char* p, Py_ssize_t line, Py_ssize_t block_start):
    """The error for the malformed field line starting at ``p[line]``."""
    cdef unsigned char first = p[line]
    if first == 32 or first == 9:
        if line == block_start:
            return ParseError(400, "Whitespace before the first header field", "bad_header")
        return ParseError(400, "Obsolete line folding is not allowed", "bad_header")
    cdef Py_ssize_t i = line
    while p[i] != 58 and p[i] != 13:  # ":" or the line's CR
        i += 1
    if p[i] == 13:
        return ParseError(400, "Header line without a colon", "bad_header")
    if i == line:
        return ParseError(400, "Invalid header field name", "bad_header")
    for i in range(line, i):
        if not _TCHAR[p[i]]:
            return ParseError(400, "Invalid header field name", "bad_header")
    return ParseError(400, "Invalid character in a header field value", "bad_header")


def scan_head(
    bytearray buf,
    Py_ssize_t end,
    Py_ssize_t limit_line,
    Py_ssize_t limit_fields,
    Py_ssize_t limit_field_size,
):
    """Scan ``buf[:end + 2]``; returns ``(method, target, minor_version, fields, forwarded)``."""
    cdef Py_ssize_t n = end + 2
    if end < 0 or n > PyByteArray_GET_SIZE(buf):
        raise ValueError("end is outside the buffer")
    cdef const unsigned char* p = <const unsigned char*>PyByteArray_AS_STRING(buf)
    error = _bare_line_end(p, n)
    if error is not None:
        raise error

    # The request line: method SP target SP HTTP/d.d CRLF.
    cdef Py_ssize_t line_end = <const unsigned char*>memchr(p, 13, n) - p
    if line_end > limit_line:
        raise ParseError(414, "Request line too long", "request_line_too_long")
    cdef Py_ssize_t i = 0
    while _TCHAR[p[i]]:
        i += 1
    cdef Py_ssize_t method_end = i
    if method_end == 0 or p[i] != 32:
        raise _request_line_error(p, line_end)
    i += 1
    cdef Py_ssize_t target_start = i
    while _TARGET[p[i]]:
        i += 1
    cdef Py_ssize_t target_end = i
    if (
        target_end == target_start or p[i] != 32 or line_end - i != 9
        or memcmp(p + i + 1, b"HTTP/", 5) != 0
        or not (48 <= p[i + 6] <= 57) or p[i + 7] != 46 or not (48 <= p[i + 8] <= 57)
    ):
        raise _request_line_error(p, line_end)
    cdef unsigned char major = p[i + 6], minor = p[i + 8]
    if major == 48:
        raise ParseError(400, "HTTP/0.x requests are not accepted", "bad_request_line")
    if major != 49 or (minor != 48 and minor != 49):
        raise ParseError(505, "HTTP version not supported", "version_not_supported")

    # The fields: name ":" OWS value OWS CRLF, each byte checked once.
    cdef list fields = []
    cdef Py_ssize_t block_start = line_end + 2, line, name_end, value_start, value_end
    cdef Py_ssize_t count = 0
    cdef int too_large = 0
    cdef bint forwarded = False
    i = block_start
    while i < n:
        line = i
        while _TCHAR[p[i]]:
            i += 1
        name_end = i
        if name_end == line or p[i] != 58:
            raise _field_error(p, line, block_start)
        i += 1
        while p[i] == 32 or p[i] == 9:
            i += 1
        value_start = i
        while _VALUE[p[i]]:
            i += 1
        if p[i] != 13:  # a control character: CR is the only one allowed, and only before LF
            raise _field_error(p, line, block_start)
        value_end = i
        while value_end > value_start and (p[value_end - 1] == 32 or p[value_end - 1] == 9):
            value_end -= 1
        i += 2
        count += 1
        if (name_end - line) + (value_end - value_start) > limit_field_size:
            too_large = 1
        if count <= limit_fields and not too_large:
            if name_end - line >= 12 and _starts_forwarded(p + line):
                forwarded = True
            fields.append((
                _field_name(p + line, name_end - line),
                PyBytes_FromStringAndSize(<const char*>p + value_start, value_end - value_start),
            ))
    if count > limit_fields:
        raise ParseError(431, "Too many header fields", "header_too_large")
    if too_large:
        raise ParseError(431, "Header field too large", "header_too_large")
    return (
        _method(p, method_end),
        PyBytes_FromStringAndSize(<const char*>p + target_start, target_end - target_start),
        minor - 48,
        fields,
        forwarded,
    )
