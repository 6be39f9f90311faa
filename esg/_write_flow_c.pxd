# Augments write_flow.py when Cython compiles it into esg._write_flow_c (Cython finds an
# augmenting .pxd by the compiled module's name): the flow's state becomes typed C fields, and
# the compiled connection, which cimports this class, calls its methods in C.  Plain Python
# ignores this file.

cdef class WriteFlow:
    cdef public object loop
    cdef public double timeout
    cdef public bint paused
    cdef public double deadline
    cdef public Py_ssize_t buffered
    cdef public object waiter

    cpdef pause(self)
    cpdef resume(self)
    cpdef release(self)
    cpdef carry_on_from(self, WriteFlow previous)
    cpdef bint stalled(self, transport, double now) except -1
