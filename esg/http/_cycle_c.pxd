# Augments cycle.py when Cython compiles it into esg.http._cycle_c (Cython finds an augmenting
# .pxd by the compiled module's name): the cycle's state becomes typed C fields.  Fields the
# connection reads from its own module are public.  Plain Python ignores this file.

cimport cython

# The response states as C ints: comparisons in send() and run_asgi() stay in C.
cdef int _START, _BODY, _DONE, _TRAILERS

# Under another name: cycle.py binds ResponseHead itself (the class of its build).  Typed, a
# head's fields are read as C fields.
from esg.http._serializer_c cimport ResponseHead as CResponseHead


cdef class RequestCycle:
    cdef public object host
    cdef public dict scope
    cdef public bytes method
    cdef public str http_version
    cdef public bint keep_alive
    cdef public bint expect_continue
    cdef public bint body_done
    cdef public bint disconnected
    cdef public bint response_complete
    cdef public bint broken
    cdef public int state
    cdef public CResponseHead head
    cdef public bint no_body
    cdef public bint chunked
    cdef public long long expected_length
    cdef public long long sent_length
    cdef public object response_headers
    cdef public int status
    cdef public double started_at
    cdef public object disconnect_waiter
    cdef public object task
    cdef public bint head_deferred_once
    cdef public bint structured
    cdef public object trailers

    # Called only from inside the class: direct C calls instead of Python method lookups.
    cdef _app_failed(self, BaseException exc)
    cdef _send_server_error(self)
    @cython.locals(head=CResponseHead)
    cdef _start_response(self, message)
    cdef _reject_status(self, status)
    cdef _refuse(self)
    cdef _send_body(self, body, more_body)
    cdef _write_head_and_body(self, CResponseHead head, bytes body, bint more_body)
    cdef _finish(self)
    cdef _send_piece(self, bytes body, bint more_body)
    cdef _hand_head(self, CResponseHead head, bytes body, bint more_body)
    cdef _body_ended(self)
    cdef _add_trailers(self, message)
