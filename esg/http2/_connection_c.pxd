# Augments connection.py when Cython compiles it into esg.http2._connection_c (Cython finds an
# augmenting .pxd by the compiled module's name): the connection's and the streams' state
# become typed C fields, frame headers are read with C integer arithmetic, and the handlers
# call each other in C.  connection.py turns annotation typing off, so this file is the only
# place C types come from.  Plain Python ignores it.

cimport cython

# Under other names: connection.py binds Decoder and Encoder itself (the classes of its build).
from esg.http2._hpack_c cimport Decoder as CDecoder, Encoder as CEncoder

cdef int _DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING, _GOAWAY
cdef int _WINDOW_UPDATE, _CONTINUATION
cdef int _END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY_FLAG
cdef int _NO_ERROR, _PROTOCOL_ERROR, _FLOW_CONTROL_ERROR, _STREAM_CLOSED, _FRAME_SIZE_ERROR
cdef int _REFUSED_STREAM, _CANCEL, _COMPRESSION_ERROR, _ENHANCE_YOUR_CALM
cdef int _HEADER_TABLE_SIZE, _ENABLE_PUSH, _MAX_CONCURRENT_STREAMS, _INITIAL_WINDOW_SIZE
cdef int _MAX_FRAME_SIZE, _MAX_HEADER_LIST_SIZE, _ENABLE_CONNECT_PROTOCOL
cdef int _NO_RFC7540_PRIORITIES
cdef bytes _PREFACE
cdef Py_ssize_t _PREFACE_LENGTH
cdef long long _MAX_WINDOW, _MAX_STREAM_ID, _DEFAULT_WINDOW, _MIN_FRAME_SIZE
cdef long long _MAX_FRAME_LIMIT, _HIGH_WATER
cdef Py_ssize_t _RECENTLY_CLOSED, _MAX_CONTINUATIONS
cdef int _AWAIT_PREFACE, _AWAIT_SETTINGS, _OPEN, _CLOSED
cdef int _RESET_BY_US, _RESET_BY_PEER, _ENDED, _IGNORED
cdef bytes _SHUTDOWN_PING
cdef double _CREDIT_PER_REQUEST, _CREDIT_PER_DATA_FRAME
cdef object _pack_u32, _pack_setting, _pack_goaway
cdef bytes _NAME_CHARS
cdef frozenset _CONNECTION_FIELDS


cdef class RequestReceived:
    cdef public long long stream_id
    cdef public bytes method
    cdef public object scheme
    cdef public object path
    cdef public object authority
    cdef public object protocol
    cdef public list headers
    cdef public long long content_length
    cdef public bint end_stream


cdef class RequestHeadersTooLarge:
    cdef public long long stream_id
    cdef public bint end_stream


cdef class DataReceived:
    cdef public long long stream_id
    cdef public bytes data
    cdef public long long flow_controlled_length
    cdef public bint end_stream


cdef class TrailersReceived:
    cdef public long long stream_id
    cdef public list headers


cdef class StreamReset:
    cdef public long long stream_id
    cdef public long long error_code
    cdef public bint remote


cdef class WindowOpened:
    cdef public long long stream_id


cdef class ConnectionTerminated:
    cdef public long long error_code
    cdef public long long last_stream_id
    cdef public str reason


cdef class GoAwayReceived:
    cdef public long long error_code
    cdef public long long last_stream_id
    cdef public bytes additional_data


cdef class SettingsAcknowledged:
    pass


cdef class PingAcked:
    cdef public bytes payload


@cython.locals(byte=cython.uchar)
cdef bint _bad_name(bytes name)

@cython.locals(size=Py_ssize_t, byte=cython.uchar)
cdef bint _bad_value(bytes value)

@cython.locals(size=Py_ssize_t, result=cython.longlong, byte=cython.uchar)
cdef long long _parse_length(bytes value)

@cython.locals(first=cython.uchar)
cdef bint _forbidden(bytes name, bytes value)

@cython.locals(byte=cython.uchar)
cdef bint _has_upper(bytes name)


cdef class _Stream:
    cdef long long stream_id
    cdef bint remote_closed
    cdef bint local_closed
    cdef bint headers_sent
    cdef bint blocked
    cdef long long send_window
    cdef long long recv_window
    cdef long long recv_credit
    cdef long long unacked
    cdef long long content_length
    cdef long long received


cdef class ServerConnection:
    cdef public dict counters
    cdef public long long max_concurrent_streams
    cdef public bint enable_connect_protocol
    cdef long long _initial_window
    cdef long long _max_frame_size
    cdef long long _max_header_list_size
    cdef long long _header_table_size
    cdef long long _connection_window
    cdef long long _block_limit
    cdef long long _reset_limit
    cdef long long _reset_window
    cdef double _flood_burst
    cdef double _flood_rate
    cdef object _clock
    cdef int _state
    cdef bytes _buf
    cdef bytearray _out
    cdef CDecoder _decoder
    cdef CEncoder _encoder
    cdef dict _streams
    cdef dict _closed
    cdef long long _highest_id
    cdef long long _goaway_last
    cdef int _shutdown_phase
    cdef bint _settings_acked
    cdef long long _recv_initial
    cdef long long _peer_initial_window
    cdef long long _peer_max_frame_size
    cdef long long _peer_max_header_list_size
    cdef long long _conn_send_window
    cdef long long _conn_recv_window
    cdef long long _conn_recv_credit
    cdef bint _conn_blocked
    cdef long long _cont_sid
    cdef bint _cont_end_stream
    cdef bint _cont_bad_priority
    cdef list _cont_parts
    cdef long long _cont_size
    cdef int _cont_frames
    cdef long long _opened
    cdef long long _resets
    cdef double _flood_credit
    cdef double _flood_time

    @cython.locals(stream=_Stream, window=cython.longlong)
    cpdef long long send_window(self, long long stream_id) except -1

    @cython.locals(
        events=list, buf=bytes, end=Py_ssize_t, pos=Py_ssize_t, start=Py_ssize_t,
        length=cython.longlong, ftype=cython.int, flags=cython.int, sid=cython.longlong,
        payload=bytes,
    )
    cpdef list receive_data(self, data)

    @cython.locals(
        end=Py_ssize_t, start=Py_ssize_t, pad=Py_ssize_t, bad_priority=cython.bint,
        dependency=cython.longlong, fragment=bytes,
    )
    cdef object _on_headers(self, long long sid, int flags, bytes payload, list events)

    @cython.locals(block=bytes, sid=cython.longlong)
    cdef object _continuation(self, int flags, bytes payload, list events)

    cdef list _decode(self, bytes block)

    @cython.locals(stream=_Stream, kind=cython.int, headers=list, event=object)
    cdef object _header_block(
        self, long long sid, bytes block, bint end_stream, bint bad_priority, list events
    )

    @cython.locals(credit=cython.double)
    cdef object _open(self, _Stream stream)

    @cython.locals(
        count=Py_ssize_t, index=Py_ssize_t, pseudo=Py_ssize_t, field=tuple, name=bytes,
        value=bytes, cookies=Py_ssize_t, content_length=cython.longlong, fields=list,
    )
    cdef object _request(self, _Stream stream, list headers, bint end_stream)

    @cython.locals(headers=list, sid=cython.longlong, field=tuple, name=bytes, value=bytes)
    cdef object _trailers(self, _Stream stream, bytes block, bint end_stream, list events)

    @cython.locals(
        length=Py_ssize_t, start=Py_ssize_t, pad=Py_ssize_t, stream=_Stream, kind=cython.int,
        size=Py_ssize_t, data=bytes, end_stream=cython.bint, received=cython.longlong,
    )
    cdef object _on_data(self, long long sid, int flags, bytes payload, list events)

    @cython.locals(increment=cython.longlong, window=cython.longlong, stream=_Stream)
    cdef object _on_window_update(self, long long sid, bytes payload, list events)

    @cython.locals(
        length=Py_ssize_t, offset=Py_ssize_t, ident=cython.int, value=cython.longlong,
    )
    cdef object _on_settings(self, long long sid, int flags, bytes payload, list events)

    @cython.locals(delta=cython.longlong, window=cython.longlong, stream=_Stream)
    cdef object _change_initial_window(self, long long value, list events)

    @cython.locals(delta=cython.longlong, stream=_Stream)
    cdef object _apply_own_settings(self)

    @cython.locals(stream=_Stream, code=cython.longlong)
    cdef object _on_rst_stream(self, long long sid, bytes payload, list events)

    cdef object _on_ping(self, long long sid, int flags, bytes payload, list events)

    @cython.locals(stream=_Stream, dependency=cython.longlong)
    cdef object _on_priority(self, long long sid, bytes payload, list events)

    @cython.locals(last=cython.longlong, code=cython.longlong)
    cdef object _on_goaway(self, long long sid, bytes payload, list events)

    @cython.locals(credit=cython.double, now=cython.double)
    cdef object _charge(self, str kind)

    cdef object _count_reset(self)

    @cython.locals(stream=_Stream)
    cdef object _stream_error(self, long long sid, long long code, list events)

    cdef object _close(self, _Stream stream, int kind)

    @cython.locals(closed=dict)
    cdef object _remember(self, long long sid, int kind)

    @cython.locals(credit=cython.longlong)
    cdef object _credit_connection(self, long long size)

    @cython.locals(credit=cython.longlong)
    cdef object _credit_stream(self, _Stream stream, long long size)

    @cython.locals(stream=_Stream)
    cpdef acknowledge_received_data(self, long long stream_id, long long size)

    @cython.locals(out=bytearray, data=bytes)
    cpdef bytes data_to_send(self)

    @cython.locals(length=Py_ssize_t, out=bytearray)
    cdef object _write_frame(self, int ftype, int flags, long long sid, bytes payload)

    @cython.locals(settings=list, increment=cython.longlong)
    cdef object _send_preface(self)

    @cython.locals(stream=_Stream)
    cdef _Stream _sendable(self, long long stream_id)

    @cython.locals(stream=_Stream, fields=list, drop=cython.bint, field=tuple, name=bytes,
                   block=bytes)
    cpdef send_headers(self, long long stream_id, headers, bint end_stream=*)

    @cython.locals(limit=Py_ssize_t, flags=cython.int, size=Py_ssize_t, offset=Py_ssize_t,
                   piece=bytes)
    cdef object _write_block(self, long long sid, bytes block, bint end_stream)

    @cython.locals(
        stream=_Stream, size=Py_ssize_t, window=cython.longlong, count=Py_ssize_t,
        finish=cython.bint, limit=Py_ssize_t, frames=Py_ssize_t, offset=Py_ssize_t,
        stop=Py_ssize_t, credit=cython.double,
    )
    cpdef Py_ssize_t send_data(self, long long stream_id, bytes data, bint end_stream=*) except -1

    cdef object _end_local(self, _Stream stream)

    cdef object _final_goaway(self)

    cdef object _terminate(self, long long code, str reason, list events)


@cython.locals(cookies=list, joined=list)
cpdef list _join_cookies(list fields)
