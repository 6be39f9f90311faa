"""Exceptions shared by both builds of the hot path (so one ``except`` catches either)."""

from __future__ import annotations

__all__ = ["ClientDisconnected", "ParseError"]


class ParseError(Exception):
    """The peer broke HTTP/1.1: answer with ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class ClientDisconnected(OSError):
    """``send()`` after the client went away (ASGI spec 2.4: an OSError subclass)."""
