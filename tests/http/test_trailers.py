"""Trailers on HTTP/1.1, both ways, on a fake transport (both builds).

Responses: the ``http.response.trailers`` extension is offered in every HTTP/1.x scope.  The
fields reach the client as the chunked body's trailer section when its request's ``TE`` lists
``trailers``; otherwise (or when the app set a Content-Length, or on HTTP/1.0) they are dropped
and the body ends as it would have without them.  Requests: a chunked body's trailer fields are
checked and dropped (ASGI has no message for them); the body's last message comes after them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fake_transport as fake
import pytest

run = fake.run

TE = b"TE: trailers\r\n"
GRPC_TRAILERS = [(b"grpc-status", b"0"), (b"grpc-message", b"fine")]


def head(target: str = "/", extra: bytes = b"", version: str = "1.1") -> bytes:
    return f"GET {target} HTTP/{version}\r\nHost: t\r\n".encode() + extra + b"\r\n"


def trailing_app(
    pieces: list[bytes],
    trailers: list[list[tuple[bytes, bytes]]] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Any:
    """Sends ``pieces`` as body messages (the last one ends the body), then trailers."""
    messages = [GRPC_TRAILERS] if trailers is None else trailers

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.trailers" in scope["extensions"]
        start = {"type": "http.response.start", "status": 200, "trailers": True}
        await send({**start, "headers": headers or []})
        for index, piece in enumerate(pieces):
            more = index < len(pieces) - 1
            await send({"type": "http.response.body", "body": piece, "more_body": more})
            await asyncio.sleep(0)
        for index, fields in enumerate(messages):
            more = index < len(messages) - 1
            await send({"type": "http.response.trailers", "headers": fields, "more_trailers": more})

    return app


async def answer(build: Any, app: Any, data: bytes, closes: bool = False) -> bytes:
    conn = fake.connect(build, app)
    conn.feed(data)
    if closes:
        await conn.closed()
    else:
        await conn.until(lambda: conn.written.endswith(b"\r\n\r\n") and b"0\r\n" in conn.written)
        await conn.settle()
    return conn.written


def split(written: bytes) -> tuple[bytes, bytes]:
    head_part, _, body = written.partition(b"\r\n\r\n")
    return head_part.lower(), body


# -- the helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (b"trailers", True),
        (b"TRAILERS", True),
        (b"gzip, trailers", True),
        (b"trailers;q=1", False),  # "trailers" takes no parameters (RFC 9110 10.1.4)
        (b" deflate ,  trailers ", True),
        (b"gzip", False),
        (b"", False),
    ],
)
def test_accepts_trailers(build: Any, value: bytes, accepted: bool) -> None:
    accepts_trailers = build.module("esg.http.serializer").accepts_trailers
    assert accepts_trailers([(b"host", b"x"), (b"te", value)]) is accepted
    assert accepts_trailers([(b"x-te", b"trailers")]) is False


def test_trailer_section_leaves_framing_fields_out(build: Any) -> None:
    trailer_section = build.module("esg.http.serializer").trailer_section
    fields = [
        (b"grpc-status", b"0"),
        (b"Content-Length", b"5"),
        (b"transfer-encoding", b"chunked"),
        (b"connection", b"close"),
        (b"X-Sum", b"abc"),
    ]
    assert trailer_section(fields) == b"0\r\ngrpc-status: 0\r\nX-Sum: abc\r\n\r\n"
    assert trailer_section([]) == b"0\r\n\r\n"


def test_trailer_section_refuses_what_a_header_may_not_hold(build: Any) -> None:
    serializer = build.module("esg.http.serializer")
    trailer_section = serializer.trailer_section
    with pytest.raises(serializer.InvalidResponse):
        trailer_section([(b"x-bad", b"a\r\nb")])
    with pytest.raises(serializer.InvalidResponse):
        trailer_section([(b"bad name", b"1")])


# -- responses -------------------------------------------------------------------------------


def test_scope_offers_trailers_on_http11_and_http10(build: Any) -> None:
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await fake.respond(send, b"ok")

    async def scenario() -> None:
        for version in ("1.1", "1.0"):
            conn = fake.connect(build, app)
            conn.feed(head(version=version))
            await conn.response()

    run(scenario())
    assert [scope["extensions"]["http.response.trailers"] for scope in scopes] == [{}, {}]


def test_streamed_response_sends_trailers_when_te_says_so(build: Any) -> None:
    app = trailing_app([b"first,", b"second"])
    written = run(answer(build, app, head(extra=TE)))
    head_part, body = split(written)
    assert b"transfer-encoding: chunked" in head_part
    assert body == (
        b"6\r\nfirst,\r\n6\r\nsecond\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"
    )


def test_single_body_message_is_chunked_to_carry_the_trailers(build: Any) -> None:
    app = trailing_app([b"whole"])
    written = run(answer(build, app, head(extra=b"TE: gzip, trailers\r\n")))
    head_part, body = split(written)
    assert b"transfer-encoding: chunked" in head_part
    assert b"content-length" not in head_part
    assert body == b"5\r\nwhole\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n"


def test_trailers_gathered_over_several_messages(build: Any) -> None:
    app = trailing_app([b"x"], [[(b"x-a", b"1")], [], [(b"x-b", b"2"), (b"content-length", b"9")]])
    written = run(answer(build, app, head(extra=TE)))
    assert split(written)[1] == b"1\r\nx\r\n0\r\nx-a: 1\r\nx-b: 2\r\n\r\n"


def test_pipelined_requests_get_their_trailers_in_order(build: Any) -> None:
    # The app suspends between pieces, so the requests behind the first start ahead of their
    # turn and their answers (trailer sections included) are held until it comes.
    async def scenario() -> bytes:
        conn = fake.connect(build, trailing_app([b"a", b"b"]))
        conn.feed(head("/1", extra=TE) + head("/2") + head("/3", extra=TE))
        await conn.until(lambda: conn.written.count(b"HTTP/1.1 200") == 3, "three answers")
        await conn.settle()
        return conn.written

    written = run(scenario())
    answers = written.split(b"HTTP/1.1 200 OK\r\n")[1:]
    bodies = [answer.partition(b"\r\n\r\n")[2] for answer in answers]
    section = b"1\r\na\r\n1\r\nb\r\n"
    assert bodies == [
        section + b"0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n",
        section + b"0\r\n\r\n",
        section + b"0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n",
    ]


def test_trailers_dropped_without_te(build: Any) -> None:
    async def scenario() -> list[fake.Response]:
        conn = fake.connect(build, trailing_app([b"whole"]))
        conn.feed(head() + head("/again"))  # pipelined: the second waits for the trailers
        return await conn.responses(2)

    responses = run(scenario())
    for response in responses:
        assert response.header(b"content-length") == b"5"  # no chunking needed after all
        assert response.body == b"whole"
        assert response.header(b"connection") is None  # kept alive


def test_streamed_trailers_dropped_without_te(build: Any) -> None:
    async def scenario() -> bytes:
        conn = fake.connect(build, trailing_app([b"first,", b"second"]))
        conn.feed(head(extra=b"TE: gzip\r\n"))
        response = await conn.response()
        assert response.body == b"first,second"
        await conn.settle()
        return conn.written

    written = run(scenario())
    assert written.endswith(b"6\r\nsecond\r\n0\r\n\r\n")
    assert b"grpc-status" not in written


def test_trailers_dropped_when_the_app_set_content_length(build: Any) -> None:
    app = trailing_app([b"ab", b"cde"], headers=[(b"content-length", b"5")])

    async def scenario() -> bytes:
        conn = fake.connect(build, app)
        conn.feed(head(extra=TE) + head("/next", extra=TE))
        responses = await conn.responses(2)
        assert [r.body for r in responses] == [b"abcde", b"abcde"]
        return conn.written

    written = run(scenario())
    assert b"grpc-status" not in written


def test_trailers_dropped_on_http10(build: Any) -> None:
    async def scenario() -> bytes:
        conn = fake.connect(build, trailing_app([b"ab", b"cd"]))
        conn.feed(head(extra=TE, version="1.0"))
        await conn.closed()  # an HTTP/1.0 stream ends with the connection
        return conn.written

    written = run(scenario())
    assert split(written)[1] == b"abcd"


def test_head_request_with_trailers_sends_no_body_and_no_trailers(build: Any) -> None:
    async def scenario() -> fake.Response:
        conn = fake.connect(build, trailing_app([b"abc"]))
        conn.feed(b"HEAD / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n" + head("/after"))
        responses = await conn.responses(2, head=True)
        return responses[0]

    response = run(scenario())
    assert response.status == 200


def test_response_without_its_promised_trailers_closes_the_connection(build: Any) -> None:
    app = trailing_app([b"body"], trailers=[])
    written = run(answer(build, app, head(extra=TE), closes=True))
    assert split(written)[1] == b"4\r\nbody\r\n"  # never a last chunk: the client sees it cut


def test_invalid_trailer_closes_without_sending_it(build: Any) -> None:
    errors: list[BaseException] = []
    inner = trailing_app([b"body"], trailers=[[(b"x-bad", b"a\r\nInjected: 1")]])
    invalid = build.module("esg.http.serializer").InvalidResponse

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await inner(scope, receive, send)
        except invalid as exc:
            errors.append(exc)

    written = run(answer(build, app, head(extra=TE), closes=True))
    assert b"Injected" not in written
    assert len(errors) == 1


def test_trailers_message_without_announcing_them_is_an_error(build: Any) -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await fake.respond(send, b"ok")
        try:
            await send({"type": "http.response.trailers", "headers": GRPC_TRAILERS})
        except RuntimeError as exc:
            errors.append(exc)

    async def scenario() -> None:
        conn = fake.connect(build, app)
        conn.feed(head(extra=TE))
        await conn.response()
        await conn.settle()

    run(scenario())
    assert len(errors) == 1


# -- request trailers ------------------------------------------------------------------------


def test_request_trailers_end_the_body(build: Any) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await fake.respond(send, b"got it")

    data = (
        b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 99\r\nX-Other: a\r\n\r\n"
    )

    async def scenario() -> fake.Response:
        conn = fake.connect(build, app)
        for index in range(len(data)):  # byte by byte: the end comes only after the trailers
            conn.feed(data[index : index + 1])
            await asyncio.sleep(0)
        return await conn.response()

    response = run(scenario())
    assert response.body == b"got it"
    assert b"".join(message["body"] for message in received) == b"hello world"
    assert received[-1]["more_body"] is False
    assert all(message["type"] == "http.request" for message in received)
