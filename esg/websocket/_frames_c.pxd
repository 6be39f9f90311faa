# Augments frames.py when Cython compiles it into esg.websocket._frames_c (Cython finds an
# augmenting .pxd by the compiled module's name): the reader's state becomes typed C fields and
# its header arithmetic runs on C integers.  frames.py turns annotation typing off, so this file
# is the only place C types come from.  Plain Python ignores it.

cimport cython

cdef int _CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG
cdef int _HEADER, _PAYLOAD
cdef object _CONTINUE


cdef class TextMessage:
    cdef public str data


cdef class BytesMessage:
    cdef public bytes data


cdef class Ping:
    cdef public bytes payload


cdef class Pong:
    cdef public bytes payload


cdef class Close:
    cdef public int code
    cdef public str reason


@cython.locals(n=cython.Py_ssize_t, code=cython.int)
cdef Close _parse_close(bytes payload)

cdef object _control_event(int opcode, bytes payload)


cdef class FrameReader:
    cdef long long _max_size
    cdef long long _wire_limit
    cdef object _inflater
    cdef bytes _buf
    cdef Py_ssize_t _pos
    cdef int _state
    cdef bint _fin
    cdef bytes _mask
    cdef long long _remaining
    cdef long long _offset
    cdef int _message
    cdef bint _compressed
    cdef long long _wire_size
    cdef long long _size
    cdef list _parts
    cdef object _decoder
    cdef object _error

    @cython.locals(
        buf=bytes, pos=cython.Py_ssize_t, avail=cython.Py_ssize_t, b0=cython.int,
        b1=cython.int, opcode=cython.int, length=cython.longlong, head=cython.Py_ssize_t,
        i=cython.Py_ssize_t, mask=bytes, compressed=cython.bint, payload=bytes,
    )
    cdef object _next_frame(self)

    cdef object _check_first_bytes(self, int b0, int b1, int opcode)

    @cython.locals(
        remaining=cython.longlong, avail=cython.longlong, n=cython.Py_ssize_t,
        phase=cython.int, mask=bytes, chunk=bytes,
    )
    cdef object _next_payload(self)

    cdef object _start_message(self, int opcode, bint compressed)
    cdef object _add(self, bytes chunk)
    cdef object _store(self, bytes chunk)
    @cython.locals(limit=cython.longlong)
    cdef bytes _inflate(self, bytes chunk, bint final)
    @cython.locals(pending=bytes, text=str)
    cdef str _decode(self, bytes chunk, bint final)
    @cython.locals(parts=list, last=str)
    cdef object _finish_message(self)


cdef class FrameWriter:
    cdef object _deflater
    cdef Py_ssize_t _min_compress_size

    cdef bytes _message(self, int opcode, object payload)
