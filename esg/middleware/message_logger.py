"""Log every ASGI message going in and out of the app, at TRACE level (``--log-level trace``).

Payloads are abbreviated to their size (``<12 bytes>``, ``<5 chars>``) so that a trace of a
large upload stays readable and bodies don't leak into logs.  Each scope gets a number, so the
lines of concurrent requests can be told apart.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from esg._types import ASGIApp, Message, Receive, Scope, Send
from esg.escaping import escape_for_log

TRACE_LOG_LEVEL = 5
PAYLOAD_KEYS = ("body", "bytes", "text")

if logging.getLevelName(TRACE_LOG_LEVEL) != "TRACE":
    logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")


def abbreviate(message: Scope | Message) -> dict[str, Any]:
    """A copy of ``message`` with its payload replaced by a size placeholder."""
    shown = dict(message)
    for key in PAYLOAD_KEYS:
        value = shown.get(key)
        if isinstance(value, (bytes, bytearray, memoryview)):
            shown[key] = f"<{len(value)} bytes>"
        elif isinstance(value, str):
            shown[key] = f"<{len(value)} chars>"
    return shown


class MessageLoggerMiddleware:
    """Wraps ``app``; logs scope, each received and sent message, and how the call ended."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger("esg.error")
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = self._prefix(scope, next(self._ids))

        async def logged_receive() -> Message:
            message = await receive()
            self._trace("%s Receive %s", prefix, abbreviate(message))
            return message

        async def logged_send(message: Message) -> None:
            self._trace("%s Send %s", prefix, abbreviate(message))
            await send(message)

        self._trace("%s Started scope=%s", prefix, abbreviate(scope))
        try:
            await self.app(scope, logged_receive, logged_send)
        except BaseException as exc:
            self._trace("%s Raised exception %r", prefix, exc)
            raise
        self._trace("%s Completed", prefix)

    @staticmethod
    def _prefix(scope: Scope, number: int) -> str:
        client = scope.get("client")
        # Behind a trusted proxy the host comes from X-Forwarded-For: escape it for the log.
        peer = escape_for_log(f"{client[0]}:{client[1]} - ") if client else ""
        return f"{peer}ASGI [{number}]"

    def _trace(self, text: str, *args: object) -> None:
        if self.logger.isEnabledFor(TRACE_LOG_LEVEL):
            self.logger.log(TRACE_LOG_LEVEL, text, *args)
