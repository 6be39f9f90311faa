"""Exceptions shared by both builds of the hot path (so one ``except`` catches either)."""

from __future__ import annotations

__all__ = ["ClientDisconnected", "ParseError"]


class ParseError(Exception):
    """The peer broke HTTP/1.1: answer with ``status`` and close the connection.

    ``reason`` is the text of the answer and of the log line; ``kind`` is the label the request
    is counted under in ``esg_rejected_requests_total`` (``esg.metrics.REJECT_LABELS``): for a
    400, what was wrong (``"bad_framing"``, ``"bad_header"`` ...), for any other status the one
    label of that status.  The raise site names it, so rewording a reason never moves a count;
    tests/test_metrics.py checks that every raise site states a kind the metrics know.
    """

    def __init__(self, status: int, reason: str, kind: str) -> None:
        super().__init__(status, reason, kind)
        self.status = status
        self.reason = reason
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class ClientDisconnected(OSError):
    """``send()`` after the client went away (ASGI spec 2.4: an OSError subclass)."""
