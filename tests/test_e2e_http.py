"""End-to-end HTTP/1.x behaviour of a real esg process, checked byte by byte over raw sockets."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from utils import (
    ConnectionClosed,
    RawConnection,
    ServerProcess,
    request_bytes,
    run_server,
    wait_for,
)

from esg import _compiled

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server("apps.basic:app") as process:
        yield process


def exchange(server: ServerProcess, data: bytes) -> RawConnection:
    """Send ``data`` on a new connection; the caller reads the answers."""
    conn = server.raw()
    conn.send(data)
    return conn


def test_get_answers_with_length_date_and_server(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/")) as conn:
        response = conn.read_response()
    assert (response.version, response.status, response.reason) == ("HTTP/1.1", 200, "OK")
    assert response.body == b"hello, world"
    assert response.header("content-length") == "12"
    assert response.header("server") == "esg"
    date = response.header("date")
    assert date is not None
    assert email.utils.parsedate_to_datetime(date).tzname() == "UTC"


def test_head_has_length_but_no_body_and_keeps_connection(server: ServerProcess) -> None:
    with exchange(server, request_bytes("HEAD", "/")) as conn:
        head = conn.read_response(head_request=True)
        conn.send(request_bytes("GET", "/"))
        # Had HEAD carried body bytes, they would be read here as a broken status line.
        after = conn.read_response()
    assert head.status == 200
    assert head.header("content-length") == "12"
    assert after.status == 200
    assert after.body == b"hello, world"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(server: ServerProcess, code: int) -> None:
    with exchange(server, request_bytes("GET", f"/status?code={code}") * 2) as conn:
        first = conn.read_response()
        second = conn.read_response()
    assert first.status == second.status == code
    assert "transfer-encoding" not in first.header_names()


def test_post_with_content_length_is_echoed(server: ServerProcess) -> None:
    body = bytes(range(256)) * 40
    with exchange(server, request_bytes("POST", "/echo", body=body)) as conn:
        response = conn.read_response()
    assert response.status == 200
    assert response.body == body
    assert response.header("x-received-length") == str(len(body))


def test_chunked_request_body_is_reassembled(server: ServerProcess) -> None:
    pieces = [b"first;", b"x" * 5000, b"", b"last"]
    encoded = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    data = request_bytes("POST", "/echo", {"Transfer-Encoding": "chunked"}) + encoded
    with exchange(server, data) as conn:
        response = conn.read_response()
    assert response.status == 200
    assert response.body == b"".join(pieces)


def test_streamed_response_uses_chunked_encoding(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/stream?n=4")) as conn:
        response = conn.read_response()
    assert response.header("transfer-encoding") == "chunked"
    assert "content-length" not in response.header_names()
    assert response.chunks == [b"piece-%d\n" % i for i in range(4)]


def test_streamed_pieces_arrive_before_the_response_ends(
    server: ServerProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with exchange(server, request_bytes("GET", f"/stream?n=3&gate={gate}")) as conn:
        head = conn.read_head()
        first = conn.read_until(b"piece-0\n")  # the app is still waiting for the gate here
        gate.touch()
        rest = conn.read_until(b"0\r\n\r\n")
    assert head.status == 200
    assert first.endswith(b"8\r\npiece-0\n")
    assert b"piece-1\n" in rest and b"piece-2\n" in rest


def test_pipelined_requests_are_answered_in_order(server: ServerProcess) -> None:
    data = (
        request_bytes("POST", "/echo", body=b"one")
        + request_bytes("GET", "/scope?second")
        + request_bytes("POST", "/echo", body=b"three")
    )
    with exchange(server, data) as conn:
        responses = [conn.read_response() for _ in range(3)]
    assert responses[0].body == b"one"
    assert json.loads(responses[1].body)["query_string"] == "second"
    assert responses[2].body == b"three"


def test_pipelined_gets_run_concurrently_and_are_answered_in_order(
    server: ServerProcess, tmp_path: Path
) -> None:
    # Raw pipelined bytes over loopback: the second app starts while the first is held (so
    # they overlap), the second finishes first, and still the answers come in request order.
    gates = [tmp_path / f"gate{n}" for n in range(2)]
    started = [tmp_path / f"started{n}" for n in range(2)]
    data = b"".join(
        request_bytes("GET", f"/gated?gate={gate}&started={mark}")
        for gate, mark in zip(gates, started, strict=True)
    )
    data += request_bytes("GET", "/scope?third") + request_bytes("POST", "/echo", body=b"four")
    with exchange(server, data) as conn:
        assert wait_for(lambda: all(mark.exists() for mark in started))
        gates[1].touch()
        gates[0].touch()
        responses = [conn.read_response() for _ in range(4)]
    assert [r.body for r in responses[:2]] == [b"gate opened", b"gate opened"]
    assert json.loads(responses[2].body)["query_string"] == "third"
    assert responses[3].body == b"four"


def test_expect_continue_is_sent_only_once_the_app_reads(
    server: ServerProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    head = request_bytes(
        "POST", f"/gated-continue?gate={gate}", {"Expect": "100-continue", "Content-Length": "5"}
    )
    with exchange(server, head) as conn:
        # The app hasn't called receive() yet: nothing may arrive.
        assert not conn.is_closed(timeout=0.3)
        assert conn.buffer == b""
        gate.touch()
        interim = conn.read_until(b"\r\n\r\n")
        conn.send(b"hello")
        response = conn.read_response()
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert response.status == 200
    assert response.body == b"got hello"


def test_expect_continue_is_not_sent_when_the_app_never_reads(server: ServerProcess) -> None:
    head = request_bytes(
        "POST", "/refuse-upload", {"Expect": "100-continue", "Content-Length": "100000"}
    )
    with exchange(server, head) as conn:
        response = conn.read_response()
    assert response.status == 413
    assert response.body == b"too large for me"


def test_final_response_without_100_does_not_swallow_next_request(server: ServerProcess) -> None:
    head = request_bytes(
        "POST", "/refuse-upload", {"Expect": "100-continue", "Content-Length": "10"}
    )
    with exchange(server, head) as conn:
        refused = conn.read_response()
        if (refused.header("connection") or "").lower() == "close":
            assert conn.is_closed()  # announced and done: the client must reconnect
            return
        # Kept alive: the body was never sent, so the next bytes are a new request.
        conn.send(request_bytes("GET", "/"))
        response = conn.read_response()
    assert refused.status == 413
    assert (response.status, response.body) == (200, b"hello, world")


def test_expect_continue_ignored_for_http10(server: ServerProcess) -> None:
    request = request_bytes(
        "POST", "/echo", {"Expect": "100-continue"}, body=b"abc", version="HTTP/1.0"
    )
    with exchange(server, request) as conn:
        response = conn.read_response()
    assert response.status == 200
    assert response.body == b"abc"


def test_unread_body_is_skipped_before_the_next_request(server: ServerProcess) -> None:
    data = request_bytes("POST", "/refuse-upload", body=b"GET / HTTP/1.1\r\n" * 300)
    with exchange(server, data + request_bytes("GET", "/")) as conn:
        first = conn.read_response()
        second = conn.read_response()
    assert first.status == 413
    assert (second.status, second.body) == (200, b"hello, world")


def test_connection_close_request(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/", {"Connection": "close"})) as conn:
        response = conn.read_response()
        closed = conn.is_closed()
    assert (response.header("connection") or "").lower() == "close"
    assert closed


def test_head_of_a_stream_sends_no_body(server: ServerProcess) -> None:
    data = request_bytes("HEAD", "/stream?n=3") + request_bytes("GET", "/")
    with exchange(server, data) as conn:
        head = conn.read_response(head_request=True)
        after = conn.read_response()
    assert head.status == 200
    assert (after.status, after.body) == (200, b"hello, world")


def test_absolute_form_target(server: ServerProcess) -> None:
    data = b"GET http://127.0.0.1/scope?abs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with exchange(server, data) as conn:
        scope = json.loads(conn.read_response().body)
    assert (scope["path"], scope["query_string"]) == ("/scope", "abs")


def test_chunked_body_with_trailer(server: ServerProcess) -> None:
    data = request_bytes("POST", "/echo", {"Transfer-Encoding": "chunked"})
    with exchange(server, data + b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n") as conn:
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"abc")


def test_http10_response_has_length_and_closes(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/", version="HTTP/1.0")) as conn:
        response = conn.read_response()
        closed = conn.is_closed()
    assert response.version == "HTTP/1.1"
    assert response.body == b"hello, world"
    assert response.header("content-length") == "12"
    assert closed


def test_http10_stream_is_close_delimited(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/stream?n=3", version="HTTP/1.0")) as conn:
        response = conn.read_response()
    assert "transfer-encoding" not in response.header_names()
    assert "content-length" not in response.header_names()
    assert response.body == b"piece-0\npiece-1\npiece-2\n"


def test_http10_keep_alive_only_when_asked(server: ServerProcess) -> None:
    request = request_bytes("GET", "/scope", {"Connection": "keep-alive"}, version="HTTP/1.0")
    with exchange(server, request) as conn:
        first = conn.read_response()
        conn.send(request)
        second = conn.read_response()
    assert (first.header("connection") or "").lower() == "keep-alive"
    assert json.loads(first.body)["http_version"] == "1.0"
    assert second.status == 200


MALFORMED = {
    "garbage line": b"GARBAGE\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n",
    "bad content-length": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
    "length and chunked": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "missing host": b"GET / HTTP/1.1\r\n\r\n",
    "nul in target": b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
    "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ],
    ids=["long request line", "long header"],
)
def test_oversized_heads_are_refused(server: ServerProcess, data: bytes, status: int) -> None:
    with exchange(server, data) as conn:
        response = conn.read_response()
        closed = conn.is_closed()
    assert response.status == status
    assert closed


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_gets_400_and_close(server: ServerProcess, data: bytes) -> None:
    with exchange(server, data) as conn:
        response = conn.read_response()
        closed = conn.is_closed()
    assert response.status == 400
    assert (response.header("connection") or "").lower() == "close"
    assert closed


def test_valid_request_then_malformed_one(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/") + b"BROKEN\r\n\r\n") as conn:
        first = conn.read_response()
        second = conn.read_response()
        closed = conn.is_closed()
    assert (first.status, first.body) == (200, b"hello, world")
    assert second.status == 400
    assert closed


@pytest.mark.parametrize("path", ["/error", "/no-response"])
def test_app_failure_before_response_is_500(server: ServerProcess, path: str) -> None:
    with exchange(server, request_bytes("GET", path)) as conn:
        response = conn.read_response()
        closed = conn.is_closed()
    assert response.status == 500
    assert response.body == b"Internal Server Error"
    assert closed


def test_app_failure_mid_body_closes_without_last_chunk(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/error-after-start")) as conn:
        head = conn.read_head()
        rest = conn.read_to_close()
    assert head.status == 200
    assert b"partial" in rest
    assert not rest.endswith(b"0\r\n\r\n")


def test_invalid_response_header_sends_nothing(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/bad-header")) as conn:
        received = conn.read_to_close()
    assert received == b""


@pytest.mark.parametrize("code", [99, 103, 600, 700, 1000])
def test_invalid_status_is_answered_with_500_and_one_error_line(
    server: ServerProcess, code: int
) -> None:
    # Not a final status (200-599): never "HTTP/1.1 700" on the wire, nor a 1xx that leaves the
    # client waiting for a response that never comes.
    start = len(server.stderr())
    with exchange(server, request_bytes("GET", f"/status?code={code}")) as conn:
        response = conn.read_response()
        closed = conn.is_closed()
    assert (response.status, response.body) == (500, b"Internal Server Error")
    assert closed
    line = (
        f"Invalid HTTP status code {code} in 'http.response.start': a response needs an int "
        "from 200 to 599. Answered 500."
    )
    assert wait_for(lambda: line in server.stderr()[start:])
    logged = server.stderr()[start:]
    assert [row for row in logged.splitlines() if row.startswith("ERROR")] == [f"ERROR:    {line}"]
    assert "Traceback" not in logged


@pytest.mark.parametrize("path", ["/short", "/long"])
def test_content_length_mismatch_closes_connection(server: ServerProcess, path: str) -> None:
    with exchange(server, request_bytes("GET", path)) as conn:
        with pytest.raises(ConnectionClosed):
            conn.read_response()
        assert conn.is_closed()


def test_server_survives_broken_requests(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/")) as conn:
        assert conn.read_response().status == 200


def test_app_runs_in_a_task_and_context_does_not_leak(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/context")) as conn:
        first = json.loads(conn.read_response().body)
        conn.send(request_bytes("GET", "/context"))
        second = json.loads(conn.read_response().body)
    assert first == {"seen": None, "has_task": True}
    assert second == {"seen": None, "has_task": True}


def test_pipelined_requests_get_their_own_task_and_context(server: ServerProcess) -> None:
    both = request_bytes("GET", "/context") + request_bytes("GET", "/context")
    with exchange(server, both) as conn:
        first = json.loads(conn.read_response().body)
        second = json.loads(conn.read_response().body)
    assert first == second == {"seen": None, "has_task": True}


def test_scope_carries_lifespan_state_and_addresses(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/scope?a=1")) as conn:
        scope = json.loads(conn.read_response().body)
    assert scope["state"] == {"greeting": "set at startup"}
    assert scope["scheme"] == "http"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["root_path"] == ""
    assert (scope["path"], scope["query_string"]) == ("/scope", "a=1")
    assert scope["asgi"]["version"] == "3.0"


def test_server_runs_the_build_this_test_run_asked_for(server: ServerProcess) -> None:
    # ESG_NO_EXTENSIONS reaches the subprocess: the suite's pure run really is pure.
    with exchange(server, request_bytes("GET", "/scope")) as conn:
        scope = json.loads(conn.read_response().body)
    assert scope["compiled"] == _compiled.extensions_active()


def test_percent_encoded_path_is_decoded(server: ServerProcess) -> None:
    with exchange(server, request_bytes("GET", "/sc%6Fpe")) as conn:
        scope = json.loads(conn.read_response().body)
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/sc%6Fpe"
