# Augments metrics.py when Cython compiles it into esg._metrics_c (Cython finds an augmenting
# .pxd by the compiled module's name): the counters become typed C fields and the recording
# methods C code.  The connection reads and bumps them from its own module, so all are public.
# Plain Python ignores this file.

cdef class Metrics:
    cdef public list responses
    cdef public long long in_flight
    cdef public long long keepalive_requests
    cdef public long long received_bytes
    cdef public long long sent_bytes
    cdef public long long connections_open
    cdef public long long connections_accepted
    cdef public long long connections_closed
    cdef public long long websockets_open
    cdef public long long websockets_accepted
    cdef public long long websocket_messages_received
    cdef public long long websocket_messages_sent
    cdef public list rejected
    cdef public list timeouts
    cdef public list http2_defences
    cdef public list duration_buckets
    cdef public double duration_sum
    cdef public object slot

    # Called once per response by the compiled connection: a C call, not a Python one.
    cpdef response_done(self, str method, int status, double seconds)
