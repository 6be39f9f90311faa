from __future__ import annotations

import asyncio
import logging

import pytest

from esg._types import Message, Receive, Scope, Send
from esg.middleware.message_logger import TRACE_LOG_LEVEL, MessageLoggerMiddleware

SCOPE = {"type": "http", "path": "/", "client": ("127.0.0.1", 1234), "headers": []}


async def receive() -> Message:
    return {"type": "http.request", "body": b"x" * 12, "more_body": False}


async def send(message: Message) -> None:
    pass


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    request = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": request["body"]})


def trace_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == TRACE_LOG_LEVEL]


def test_trace_level_is_named() -> None:
    assert logging.getLevelName(TRACE_LOG_LEVEL) == "TRACE"


def test_messages_are_logged_with_abbreviated_bodies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRACE_LOG_LEVEL, logger="esg.error")
    asyncio.run(MessageLoggerMiddleware(echo_app)(dict(SCOPE), receive, send))
    lines = trace_lines(caplog)
    assert len(lines) == 5
    assert lines[0].startswith("127.0.0.1:1234 - ASGI [1] Started scope=")
    assert "'body': '<12 bytes>'" in lines[1] and "Receive" in lines[1]
    assert "Send" in lines[2] and "'status': 200" in lines[2]
    assert "'body': '<12 bytes>'" in lines[3]
    assert lines[4] == "127.0.0.1:1234 - ASGI [1] Completed"
    assert all("xxxx" not in line for line in lines)


def test_each_call_gets_its_own_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRACE_LOG_LEVEL, logger="esg.error")
    middleware = MessageLoggerMiddleware(echo_app)
    asyncio.run(middleware({"type": "http"}, receive, send))
    asyncio.run(middleware({"type": "http"}, receive, send))
    assert "ASGI [2] Completed" in trace_lines(caplog)


def test_exception_is_logged_and_reraised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("broken app")

    caplog.set_level(TRACE_LOG_LEVEL, logger="esg.error")
    with pytest.raises(ValueError, match="broken app"):
        asyncio.run(MessageLoggerMiddleware(broken)({"type": "http"}, receive, send))
    assert trace_lines(caplog)[-1] == "ASGI [1] Raised exception ValueError('broken app')"


def test_nothing_logged_above_trace(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="esg.error")
    asyncio.run(MessageLoggerMiddleware(echo_app)(dict(SCOPE), receive, send))
    assert trace_lines(caplog) == []
