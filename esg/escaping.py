"""Text from the network made safe to write into a log line.

Request targets, methods, header values and (behind a proxy) client addresses are the client's
bytes.  Written raw, an escape sequence in them would drive the reader's terminal and a CR or LF
would forge a log line of its own, so every place that logs such text passes it through here:
the formatters (esg.logging), the access-log templates (esg.access_format), and the modules that
log a client's text themselves (the connection, the WebSocket session, the reloader's file
names).  Only non-printable characters change, so escaping twice changes nothing more.
"""

from __future__ import annotations

__all__ = ["escape_field", "escape_for_log", "escape_lines"]


def escape_for_log(text: str) -> str:
    """``text`` with every non-printable character written as ``\\xNN`` (or ``\\uNNNN``).

    Only non-printables change, so escaping twice gives the same result as escaping once.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape_char(char) for char in text)


def escape_lines(text: str) -> str:
    """``text`` with each line escaped by ``escape_for_log``; only the newlines (LF) stay."""
    if text.isprintable():
        return text
    return "\n".join(escape_for_log(line) for line in text.split("\n"))


def escape_field(value: str) -> str:
    """A client-supplied value for a text access line: ``escape_for_log``, and ``"`` as ``\\"``
    so that a value can't end a quoted field early and forge the ones after it."""
    if '"' in value:
        value = value.replace('"', '\\"')
    return escape_for_log(value)


def _escape_char(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
