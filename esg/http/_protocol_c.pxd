# Augments protocol.py when Cython compiles it into esg.http._protocol_c (Cython finds an
# augmenting .pxd by the compiled module's name): the connection's state becomes typed C
# fields.  The cycle (another module) reads some of them, so all are public.  Plain Python
# ignores this file.

from esg._metrics_c cimport Metrics
# Under another name: protocol.py binds WriteFlow itself (the class of its build), which
# Cython refuses for a cimported name.
from esg._write_flow_c cimport WriteFlow as CWriteFlow
# The cycle of this build, for the C reads of its fields where a check runs on every request.
from esg.http._cycle_c cimport RequestCycle as CRequestCycle
# The parsed request: every scope is built from its fields, and _next_request's eager check
# reads its Content-Length.
from esg.http._parser_c cimport Request as CRequest

cimport cython

cdef int _THEN_CLOSE, _THEN_ABORT
cdef frozenset _SAFE_METHODS


cdef class HttpProtocol:
    cdef public object config
    cdef public object app
    cdef public object loop
    cdef public object server_state
    cdef public dict app_state
    cdef public frozenset default_names
    cdef public bint access_log
    cdef public bint trace_log
    cdef public str root_path
    cdef public bint ws_enabled
    cdef public object limit_concurrency
    cdef public double timeout_keep_alive
    cdef public double timeout_header
    cdef public double timeout_body
    cdef public object parser
    cdef public object transport
    cdef public object cycle
    cdef public dict asgi_info
    cdef public dict extensions
    cdef public str scheme
    cdef public object server_address
    cdef public object client_address
    cdef public str client_label
    cdef public bint behind_proxy
    cdef public object base_context
    cdef public long long answered
    cdef public bint closing
    cdef public bint draining
    cdef public long long drain_budget
    cdef public object on_retired
    cdef public object out
    cdef public Py_ssize_t out_size
    cdef public Py_ssize_t out_complete
    cdef public bint read_paused
    cdef public object body_waiter
    cdef public double head_deadline
    cdef public double keepalive_deadline
    cdef public double body_deadline
    cdef public CWriteFlow write_flow
    cdef public Metrics metrics
    cdef public bint starting
    cdef public bint start_pending
    cdef public list held
    cdef public object parked
    cdef public object reading
    cdef public bint eager

    # Called only from inside the class: direct C calls instead of Python method lookups.
    # (Methods handed to call_soon stay Python methods.)
    @cython.locals(request=CRequest, buffered=Py_ssize_t)
    cdef _next_request(self)
    cdef _start_cycle(self, request)
    cdef _launch(self, cycle)
    cdef _start_eagerly(self, cycle)
    cdef _start_ahead(self)
    @cython.locals(cycle=CRequestCycle)
    cdef _watch_head(self)
    cdef _parse_next(self)
    cdef _new_cycle(self, request, bint ahead)
    cdef _schedule(self, cycle)
    cdef _run_first_step(self, cycle)
    cdef dict _build_scope(self, CRequest request)
    cdef _drain_body(self, bint within_app=*)
    cdef _pause_reading(self)
    cdef _resume_reading(self)
    cdef _body_error(self, cycle, exc)
    cdef _wake_body_waiter(self)
    cdef _log_access(self, cycle)
    cdef _retired(self)
    cdef _answered(self, cycle)
    cdef _next_in_line(self, done)
    cdef _drop_held(self)


cdef class HeldResponse:
    cdef public HttpProtocol protocol
    cdef public object cycle
    cdef public object loop
    cdef public frozenset default_names
    cdef public list parts
    cdef public Py_ssize_t size
    cdef public bint done
    cdef public int ending
    cdef public object waiter
