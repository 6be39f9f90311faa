# Augments serializer.py when Cython compiles it into esg.http._serializer_c (Cython finds an
# augmenting .pxd by the compiled module's name).  A ResponseHead is made for every response:
# as a C class it costs about a tenth of what a Python class's instance does.  Plain Python
# ignores this file.

cdef class ResponseHead:
    cdef public long status
    cdef public bytes block
    cdef public list fields
    cdef public object content_length
    cdef public bint chunked
    cdef public bint close
    cdef public bint has_server
    cdef public bint has_date
    cdef public object overridden

cdef _note_special(ResponseHead head, bytes name, bytes value)
