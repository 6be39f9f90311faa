# Augments parser.py when Cython compiles it into esg.http._parser_c (Cython finds an
# augmenting .pxd by the compiled module's name): the parser's state becomes
# typed C fields, so the hot path reads and writes them without Python attribute lookups.
# The .py file stays the one source; plain Python ignores this file.

# Module constants as C ints: the states are compared on every event and every feed().
cdef int _HEAD, _BODY_LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_DATA_END, _TRAILERS, _END, _PAUSED
cdef Py_ssize_t _LARGE_READ


cdef class RequestParser:
    cdef Py_ssize_t _limit_line
    cdef Py_ssize_t _limit_fields
    cdef Py_ssize_t _limit_field_size
    cdef Py_ssize_t _limit_head
    cdef long long _limit_body
    cdef bytearray _buf
    cdef list _pending
    cdef Py_ssize_t _pending_size
    cdef int _state
    cdef Py_ssize_t _scanned
    cdef bint _line_seen
    cdef long long _remaining
    cdef long long _body_size
    cdef Py_ssize_t _extension_bytes
    cdef bint _eof
    cdef object _error


cdef class Request:
    cdef public bytes method
    cdef public bytes target
    cdef public bytes raw_path
    cdef public bytes query_string
    cdef public str http_version
    cdef public list headers
    cdef public bint keep_alive
    cdef public bint expect_continue
    cdef public object content_length
    cdef public bint chunked
    cdef public object upgrade
    cdef public bint forwarded


cdef class Data:
    cdef public bytes data
