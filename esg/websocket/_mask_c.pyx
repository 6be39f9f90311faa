# cython: language_level=3
"""The compiled twin of ``esg/websocket/mask.py``: the XOR unmasking of client frames, 8 bytes
per step.

Hand-written Cython because the one-source frames.py can't express raw memory access; the
pure-Python twin is the reference the test suite checks this against.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cimport cython


@cython.boundscheck(False)
@cython.wraparound(False)
def unmask(bytes data not None, Py_ssize_t start, Py_ssize_t length, bytes mask not None):
    """``data[start:start + length]`` XORed with the 4-byte ``mask``."""
    if start < 0 or length < 0 or start > len(data) - length or len(mask) != 4:
        raise ValueError("unmask: bad range or mask")
    out = PyBytes_FromStringAndSize(NULL, length)
    cdef unsigned char *dst = <unsigned char *>PyBytes_AS_STRING(out)
    cdef const unsigned char *src = <const unsigned char *>PyBytes_AS_STRING(data) + start
    cdef const unsigned char *key = <const unsigned char *>PyBytes_AS_STRING(mask)
    cdef unsigned char key8[8]
    cdef uint64_t word, key64
    cdef Py_ssize_t i = 0
    memcpy(key8, key, 4)
    memcpy(key8 + 4, key, 4)
    memcpy(&key64, key8, 8)  # the mask twice, in memory order: no endianness question
    while i + 8 <= length:
        memcpy(&word, src + i, 8)  # memcpy: unaligned loads are fine on every platform
        word ^= key64
        memcpy(dst + i, &word, 8)
        i += 8
    while i < length:
        dst[i] = src[i] ^ key[i & 3]
        i += 1
    return out
