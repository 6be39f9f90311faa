# Augments hpack.py when Cython compiles it into esg.http2._hpack_c (Cython finds an augmenting
# .pxd by the compiled module's name): the codec's state becomes typed C fields, the Huffman
# tables typed memoryviews, and the byte loops run on C integers with C calls between the
# helpers.  hpack.py turns annotation typing off, so this file is the only place C types come
# from.  Plain Python ignores this file.

cimport cython

cdef const unsigned int[:] _HUFFMAN_TRANSITIONS
cdef const unsigned char[:] _HUFFMAN_ACCEPTING
cdef const unsigned int[:] _HUFFMAN_CODE
cdef const unsigned char[:] _HUFFMAN_LENGTH
cdef unsigned int _NEXT_STATE, _EMITS, _SYMBOL_SHIFT, _ACCEPTING, _ROOT, _FAILED
cdef Py_ssize_t _STATIC_LENGTH
cdef long long _MAX_INTEGER, _ENTRY_OVERHEAD
cdef tuple _STATIC
cdef dict _STATIC_BY_NAME
cdef frozenset _NEVER_INDEXED, _NOT_INDEXED
cdef Py_ssize_t _LITERAL_CACHE_SIZE


@cython.locals(
    out=bytearray, count=Py_ssize_t, state=cython.uint, pos=Py_ssize_t, byte=cython.uchar,
    transition=cython.uint,
)
cdef bytes _huffman_decode(bytes block, Py_ssize_t start, Py_ssize_t stop)

cpdef bytes huffman_decode(bytes data)

@cython.locals(bits=Py_ssize_t, byte=cython.uchar)
cpdef Py_ssize_t huffman_encoded_length(bytes data) except -1

@cython.locals(out=bytearray, pending=cython.ulonglong, bits=cython.int, byte=cython.uchar)
cpdef bytes huffman_encode(bytes data)

@cython.locals(out=bytearray, huffman_length=Py_ssize_t)
cdef bytes _encode_string(bytes data)

@cython.locals(prefix_max=cython.longlong)
cdef object _put_integer(bytearray out, long long value, int prefix_bits, int flags)

cdef Py_ssize_t _entry_size(tuple field) except -1


cdef class Decoder:
    cdef public long long max_header_list_size
    cdef list _entries
    cdef Py_ssize_t _size
    cdef Py_ssize_t _max_size
    cdef Py_ssize_t _limit
    cdef Py_ssize_t _update_bound
    cdef Py_ssize_t _pos
    cdef bint _failed

    @cython.locals(headers=list)
    cpdef list decode(self, bytes block)

    @cython.locals(
        headers=list, end=Py_ssize_t, pos=Py_ssize_t, list_size=cython.longlong,
        limit=cython.longlong, seen_field=cython.bint, byte=cython.uchar, index=cython.longlong,
        size=cython.longlong, indexing=cython.int, prefix_max=cython.int, name=bytes,
        field=tuple,
    )
    cdef list _decode_block(self, bytes block)

    cdef object _owed_update(self)

    @cython.locals(end=Py_ssize_t, shift=cython.int, byte=cython.uchar, group=cython.longlong)
    cdef long long _integer(self, bytes block, Py_ssize_t pos, long long value) except -1

    @cython.locals(pos=Py_ssize_t, end=Py_ssize_t, byte=cython.uchar, length=cython.longlong)
    cdef bytes _string(self, bytes block)

    @cython.locals(position=Py_ssize_t)
    cdef tuple _field(self, long long index)

    @cython.locals(size=Py_ssize_t)
    cdef object _insert(self, tuple field)

    cdef object _resize(self, Py_ssize_t max_size)

    @cython.locals(entries=list, size=Py_ssize_t, evicted=Py_ssize_t)
    cdef object _evict(self, Py_ssize_t room)


cdef class Encoder:
    cdef list _entries
    cdef Py_ssize_t _size
    cdef Py_ssize_t _max_size
    cdef Py_ssize_t _own_limit
    cdef long long _evicted
    cdef dict _values
    cdef dict _names
    cdef Py_ssize_t _update_min
    cdef Py_ssize_t _update_to
    cdef dict _literals
    cdef tuple _last_fields
    cdef bytes _last_block

    cdef object _plan_update(self, Py_ssize_t max_size)

    @cython.locals(
        out=bytearray, field=tuple, index=cython.longlong, number=cython.longlong, name=bytes,
        value=bytes, static=tuple, values=dict, static_values=dict, fields=tuple,
        repeatable=cython.bint, inserted=cython.longlong, block=bytes,
    )
    cpdef bytes encode(self, headers)

    @cython.locals(encoded=bytes)
    cdef bytes _literal(self, bytes data)

    cdef long long _dynamic_index(self, long long number) except -1

    @cython.locals(size=Py_ssize_t, number=cython.longlong, name=bytes, values=dict)
    cdef object _insert(self, tuple field)

    cdef object _resize(self, Py_ssize_t max_size)

    @cython.locals(entries=list, field=tuple, number=cython.longlong, name=bytes, values=dict)
    cdef object _evict(self, Py_ssize_t room)
