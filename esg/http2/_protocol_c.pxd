# Augments protocol.py when Cython compiles it into esg.http2._protocol_c: the connection's and
# the streams' state become typed C fields.  Public: tests and the HTTP/1.1 protocol read
# some.  Plain Python ignores this file.

from esg._metrics_c cimport Metrics
# Under another name: protocol.py binds WriteFlow itself (the class of its build).
from esg._write_flow_c cimport WriteFlow as CWriteFlow
# The same for the codec: its methods are then called as C functions.
from esg.http2._connection_c cimport ServerConnection as CServerConnection
from esg.http._protocol_c cimport HttpProtocol as CHttpProtocol
from esg.http._serializer_c cimport ResponseHead as CResponseHead
from esg.http2._connection_c cimport RequestReceived as CRequestReceived


cdef class Http2Stream:
    cdef public Http2Protocol protocol
    cdef public long stream_id
    cdef public object cycle
    cdef public object loop
    cdef public frozenset default_names
    cdef public list body
    cdef public bint body_ended
    cdef public long long received
    cdef public object body_waiter
    cdef public double body_deadline
    cdef public object unsent
    cdef public bint unsent_end
    cdef public object unsent_trailers
    cdef public object window_waiter
    cdef public bint closed
    cdef public bint app_done

    cdef _send(self, bytes body, bint end)
    cdef _wake_reader(self)
    cdef _wake_writer(self)
    cdef _gone(self)
    cdef _finished(self)
    cdef _forget(self)
    cdef _let_go(self)


cdef class Http2Protocol:
    cdef public CHttpProtocol http1
    cdef public object config
    cdef public object app
    cdef public object loop
    cdef public object server_state
    cdef public frozenset default_names
    cdef public list default_fields
    cdef public Metrics metrics
    cdef public bint trace_log
    cdef public bint access_log
    cdef public object limit_concurrency
    cdef public object limit_request_body
    cdef public Py_ssize_t limit_request_fields
    cdef public Py_ssize_t limit_request_field_size
    cdef public double timeout_keep_alive
    cdef public double timeout_header
    cdef public double timeout_body
    cdef public double ping_interval
    cdef public CServerConnection conn
    cdef public object transport
    cdef public dict streams
    cdef public CWriteFlow write_flow
    cdef public bint flush_scheduled
    cdef public bint receiving
    cdef public long long answered
    cdef public double header_deadline
    cdef public double keepalive_deadline
    cdef public double ping_deadline
    cdef public bint ping_outstanding
    cdef public bint shutting_down
    cdef public double shutdown_deadline
    cdef public bint peer_gone_away
    cdef public bint counted

    cpdef list head_fields(self, CResponseHead head)
    cdef _handle(self, event)
    cdef _request(self, CRequestReceived event)
    cdef _run(self, cycle)
    cdef _data(self, event)
    cdef _window_opened(self, long stream_id)
    cdef _flush(self)
    cdef _close_if_done(self)
    cdef _close(self)
    cdef _count_attacks(self)
    cdef _goaway_and_close(self)
    cdef _count_timeout(self, str kind)
