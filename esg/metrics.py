"""Server statistics in the Prometheus text format (``--metrics``).

Compiled twin ``esg._metrics_c``, typed by ``_metrics_c.pxd``.

Each process counts in a ``Metrics`` object: plain numbers and lists that the connection code
bumps directly (no locks, no label lookups on the hot path).  ``snapshot()`` lays every value
out in one flat array of doubles whose layout (``LAYOUT``) is fixed, so that

* with ``--workers``, each worker copies its snapshot into a shared memory slot once a second
  (and once more as it exits); the supervisor adds the slots up, keeps the counters of workers
  that are gone (their gauges don't carry over) and serves the total;
* ``render()`` turns any such array into the exposition text, whoever produced it.

The metrics listener is separate from the application's port and off by default.
"""

from __future__ import annotations

import array
import asyncio
import bisect
import mmap
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER")
METHOD_INDEX = {name: index for index, name in enumerate(METHODS)}
_OTHER_METHOD = METHOD_INDEX["OTHER"]
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# Upper bounds of the request-duration histogram, in seconds (+Inf is implied).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Requests esg answered itself without passing them to the app, by kind: a 400 by what was
# wrong with it, the others by the status esg sent.  The code that refuses a request names the
# kind where it refuses (esg.http.errors.ParseError.kind, the connection's own 408 and 503), so
# the wording of a reason never decides where a request is counted.
PARSE_ERROR_KINDS = (
    "bad_request_line",
    "bad_header",
    "bad_framing",  # Content-Length / Transfer-Encoding: the request-smuggling family
    "bad_chunked_body",
    "bad_line_ending",
    "bad_request",  # any other 400 (the WebSocket handshake's)
)
# The kind of every refusal that is not a 400, by the status it answers.
REJECT_REASONS = {
    408: "header_timeout",
    413: "body_too_large",
    414: "request_line_too_long",
    417: "expectation_failed",
    431: "header_too_large",
    501: "not_implemented",
    503: "limit_concurrency",
    505: "version_not_supported",
}
REJECT_LABELS = (*PARSE_ERROR_KINDS, *REJECT_REASONS.values())
REJECT_INDEX = {kind: index for index, kind in enumerate(REJECT_LABELS)}
TIMEOUT_KINDS = ("header", "body", "write", "keep_alive", "websocket_ping")
# What the HTTP/2 codec refused or ended a connection for, by its own counter names (a subset of
# esg.http2.connection.COUNTERS; tests/test_metrics.py checks).  Counted when the connection
# ends.  The floods and the reset budget end the connection with GOAWAY ENHANCE_YOUR_CALM;
# the others refuse one stream.
HTTP2_DEFENCES = (
    "reset_flood",  # Rapid Reset (CVE-2023-44487) and MadeYouReset share one budget
    "continuation_flood",  # a header block too large or split in too many CONTINUATIONs
    "header_lists_too_large",  # an HPACK bomb or just large headers: 431 on that stream
    "settings_flood",
    "ping_flood",
    "priority_flood",
    "window_update_flood",
    "empty_data_flood",
    "unknown_frame_flood",
    "stream_id_exhaustion",  # graceful GOAWAY: the client ran out of stream ids
    "refused_streams",  # beyond SETTINGS_MAX_CONCURRENT_STREAMS: REFUSED_STREAM
    "malformed_requests",  # RFC 9113 section 8.1.1: stream error PROTOCOL_ERROR
    "stream_errors",  # every RST_STREAM esg sent for a client's stream error
)
RESTART_CAUSES = ("died", "unresponsive", "request_limit", "sighup")

# name, type, help, label name and values (or None), gauge?  The order is the layout.
_FAMILIES: list[tuple[str, str, str, str | None, Sequence[str]]] = [
    ("esg_requests_total", "counter", "Responses by method and status class.", "method", ()),
    ("esg_requests_in_flight", "gauge", "Requests being served.", None, ()),
    ("esg_keepalive_requests_total", "counter", "Requests on a reused connection.", None, ()),
    ("esg_received_bytes_total", "counter", "Bytes received from clients.", None, ()),
    ("esg_sent_bytes_total", "counter", "Bytes written to clients.", None, ()),
    ("esg_connections_open", "gauge", "Open client connections.", None, ()),
    ("esg_connections_accepted_total", "counter", "Connections accepted.", None, ()),
    ("esg_connections_closed_total", "counter", "Connections closed.", None, ()),
    ("esg_websocket_connections_open", "gauge", "Open WebSocket connections.", None, ()),
    ("esg_websocket_connections_total", "counter", "WebSocket connections accepted.", None, ()),
    (
        "esg_websocket_messages_received_total",
        "counter",
        "WebSocket messages received.",
        None,
        (),
    ),
    ("esg_websocket_messages_sent_total", "counter", "WebSocket messages sent.", None, ()),
    (
        "esg_rejected_requests_total",
        "counter",
        "Requests answered by esg itself, by reason.",
        "reason",
        REJECT_LABELS,
    ),
    (
        "esg_timeouts_total",
        "counter",
        "Connections cut by a timeout, by kind.",
        "kind",
        TIMEOUT_KINDS,
    ),
    (
        "esg_http2_defences_total",
        "counter",
        "HTTP/2 streams and connections refused by esg's defences, by reason.",
        "reason",
        HTTP2_DEFENCES,
    ),
]
_REQUEST_SLOTS = len(METHODS) * len(STATUS_CLASSES)
_HISTOGRAM_SLOTS = len(DURATION_BUCKETS) + 1 + 1  # buckets, +Inf, sum (count = sum of buckets)


def _slot_count(name: str, labels: Sequence[str]) -> int:
    if name == "esg_requests_total":
        return _REQUEST_SLOTS
    return len(labels) or 1


# Offsets of each family in a snapshot, and which slots are gauges (not kept for dead workers).
LAYOUT: dict[str, int] = {}
_GAUGE_SLOTS: list[int] = []
_offset = 0
for _name, _kind, _help, _label, _values in _FAMILIES:
    LAYOUT[_name] = _offset
    _count = _slot_count(_name, _values)
    if _kind == "gauge":
        _GAUGE_SLOTS.extend(range(_offset, _offset + _count))
    _offset += _count
LAYOUT["esg_request_duration_seconds"] = _offset
_offset += _HISTOGRAM_SLOTS
SNAPSHOT_SIZE = _offset
SNAPSHOT_BYTES = SNAPSHOT_SIZE * 8


class Metrics:
    """One process's counters; the connection code updates the attributes directly."""

    # Exactly the C fields of _metrics_c.pxd (tests/test_twins.py checks): an attribute the
    # compiled build can't hold then fails in the pure build too.
    __slots__ = (
        "responses",
        "in_flight",
        "keepalive_requests",
        "received_bytes",
        "sent_bytes",
        "connections_open",
        "connections_accepted",
        "connections_closed",
        "websockets_open",
        "websockets_accepted",
        "websocket_messages_received",
        "websocket_messages_sent",
        "rejected",
        "timeouts",
        "http2_defences",
        "duration_buckets",
        "duration_sum",
        "slot",
    )

    def __init__(self) -> None:
        self.responses = [0] * _REQUEST_SLOTS  # METHOD_INDEX * 5 + status // 100 - 1
        self.in_flight = 0
        self.keepalive_requests = 0
        self.received_bytes = 0
        self.sent_bytes = 0
        self.connections_open = 0
        self.connections_accepted = 0
        self.connections_closed = 0
        self.websockets_open = 0
        self.websockets_accepted = 0
        self.websocket_messages_received = 0
        self.websocket_messages_sent = 0
        self.rejected = [0] * len(REJECT_LABELS)
        self.timeouts = [0] * len(TIMEOUT_KINDS)
        self.http2_defences = [0] * len(HTTP2_DEFENCES)
        self.duration_buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.slot: mmap.mmap | None = None  # shared memory the supervisor reads (--workers)

    # -- recording (called by the protocol) ------------------------------------------------

    # A type comment, not annotations: Cython would read annotations as a signature that clashes
    # with the cpdef declaration in _metrics_c.pxd (which makes this a C call from the
    # compiled connection).
    def response_done(self, method, status, seconds):  # type: (str, int, float) -> None
        status_class = status // 100
        if status_class < 1 or status_class > 5:  # never for a response esg sent
            status_class = 5
        self.responses[METHOD_INDEX.get(method, _OTHER_METHOD) * 5 + status_class - 1] += 1
        self.duration_buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def rejected_with(self, kind: str | None) -> None:
        """Count a refused request under ``kind``; None (an answer without a label of its own,
        such as the WebSocket handshake's 426) is not counted."""
        index = None if kind is None else REJECT_INDEX.get(kind)
        if index is not None:
            self.rejected[index] += 1

    def timed_out(self, kind: str) -> None:
        self.timeouts[TIMEOUT_KINDS.index(kind)] += 1

    def http2_defended(self, counters: dict[str, int]) -> None:
        """Add an ended HTTP/2 connection's codec counters (``ServerConnection.counters``)."""
        totals = self.http2_defences
        for index, reason in enumerate(HTTP2_DEFENCES):
            totals[index] += counters.get(reason, 0)

    # -- publishing ------------------------------------------------------------------------

    def snapshot(self) -> array.array[float]:
        values: list[float] = []
        values += self.responses
        values += [
            self.in_flight,
            self.keepalive_requests,
            self.received_bytes,
            self.sent_bytes,
            self.connections_open,
            self.connections_accepted,
            self.connections_closed,
            self.websockets_open,
            self.websockets_accepted,
            self.websocket_messages_received,
            self.websocket_messages_sent,
        ]
        values += self.rejected
        values += self.timeouts
        values += self.http2_defences
        values += self.duration_buckets
        values.append(self.duration_sum)
        return array.array("d", values)

    def publish(self) -> None:
        """Copy the snapshot into the shared slot, if this process has one."""
        if self.slot is not None:
            self.slot[:SNAPSHOT_BYTES] = self.snapshot().tobytes()


def new_slot() -> mmap.mmap:
    """Shared memory for one worker's snapshot (anonymous and shared: survives the fork)."""
    return mmap.mmap(-1, SNAPSHOT_BYTES)


def read_slot(slot: mmap.mmap) -> array.array[float]:
    values = array.array("d")
    values.frombytes(slot[:SNAPSHOT_BYTES])
    return values


def add(total: array.array[float], values: Iterable[float]) -> None:
    for index, value in enumerate(values):
        total[index] += value


def without_gauges(values: array.array[float]) -> array.array[float]:
    """The counters of a process that is gone; its gauges (open connections ...) are 0 now."""
    kept = array.array("d", values)
    for index in _GAUGE_SLOTS:
        kept[index] = 0.0
    return kept


def empty() -> array.array[float]:
    return array.array("d", bytes(SNAPSHOT_BYTES))


# -- the exposition text -------------------------------------------------------------------


def render(values: Sequence[float], extra: Iterable[str] = ()) -> bytes:
    """The Prometheus text format (version 0.0.4) for a snapshot, plus ``extra`` lines."""
    lines: list[str] = []
    for name, kind, help_text, label, label_values in _FAMILIES:
        offset = LAYOUT[name]
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        if name == "esg_requests_total":
            for m_index, method in enumerate(METHODS):
                for s_index, status_class in enumerate(STATUS_CLASSES):
                    value = values[offset + m_index * 5 + s_index]
                    if value:
                        lines.append(
                            f'{name}{{method="{method}",status="{status_class}"}} {_number(value)}'
                        )
        elif label is None:
            lines.append(f"{name} {_number(values[offset])}")
        else:
            for index, label_value in enumerate(label_values):
                lines.append(f'{name}{{{label}="{label_value}"}} {_number(values[offset + index])}')
    lines += _render_histogram(values)
    lines += extra
    return ("\n".join(lines) + "\n").encode()


def _render_histogram(values: Sequence[float]) -> list[str]:
    name = "esg_request_duration_seconds"
    offset = LAYOUT[name]
    lines = [
        f"# HELP {name} Time from the request head to the end of the response.",
        f"# TYPE {name} histogram",
    ]
    cumulative = 0.0
    for index, bound in enumerate(DURATION_BUCKETS):
        cumulative += values[offset + index]
        lines.append(f'{name}_bucket{{le="{bound}"}} {_number(cumulative)}')
    cumulative += values[offset + len(DURATION_BUCKETS)]
    lines.append(f'{name}_bucket{{le="+Inf"}} {_number(cumulative)}')
    lines.append(f"{name}_sum {values[offset + len(DURATION_BUCKETS) + 1]!r}")
    lines.append(f"{name}_count {_number(cumulative)}")
    return lines


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


# -- the listener's answers ----------------------------------------------------------------

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
MAX_REQUEST_HEAD = 8192


def answer(head: bytes, body: bytes) -> bytes:
    """The whole response to a request ``head`` on the metrics listener (then close)."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return _response(b"400 Bad Request", b"text/plain", b"Bad request\n")
    method, target = parts[0], parts[1].split(b"?", 1)[0]
    if target != b"/metrics":
        return _response(b"404 Not Found", b"text/plain", b"Not found: try /metrics\n")
    if method not in (b"GET", b"HEAD"):
        return _response(b"405 Method Not Allowed", b"text/plain", b"Use GET\n", b"allow: GET\r\n")
    response = _response(b"200 OK", CONTENT_TYPE, body)
    if method == b"HEAD":
        return response[: response.index(b"\r\n\r\n") + 4]
    return response


def _response(status: bytes, content_type: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type + b"\r\n"
        b"content-length: %d\r\nconnection: close\r\n" % len(body) + extra + b"\r\n" + body
    )


class MetricsProtocol(asyncio.Protocol):
    """One connection to the metrics listener of a single process: read a head, answer, close.

    A client gets ``CLIENT_TIMEOUT`` seconds to send
    its request head; the listener never keeps a connection open.
    """

    def __init__(self, render_body: Callable[[], bytes]) -> None:
        self.render_body = render_body
        self.buffer = b""
        self.transport: Any = None
        self.timer: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(CLIENT_TIMEOUT, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:
            self.transport.write(answer(self.buffer, self.render_body()))
            self.transport.close()
        elif len(self.buffer) > MAX_REQUEST_HEAD:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


CLIENT_TIMEOUT = 5.0


async def serve_metrics(host: str, port: int, render_body: Callable[[], bytes]) -> Any:
    """Start the metrics listener on the running loop; returns the asyncio server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: MetricsProtocol(render_body), host, port)


def bind_metrics_socket(host: str, port: int) -> socket.socket:
    """The supervisor's metrics listener: non-blocking, listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def os_error_reason(exc: OSError) -> str:
    """ "address already in use", not asyncio's long wrapper around it."""
    return (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
