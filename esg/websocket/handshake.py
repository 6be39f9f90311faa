"""The opening handshake (RFC 6455 section 4.2), the same for every WebSocket engine.

esg checks the client's upgrade request and negotiates permessage-deflate itself, whichever
engine (esg's own codec, websockets or wsproto) then frames the messages: the ASGI app sees the
same scope, the same accepted extensions and the same refusals from all three.

* ``is_upgrade(request)``: the request asks for a WebSocket (``Upgrade: websocket`` and an
  ``upgrade`` token in ``Connection``).  Anything else is ordinary HTTP.
* ``check_request(request)``: a WebSocket upgrade that breaks the RFC raises ``HandshakeError``
  with the answer to send (400, or 426 with ``Sec-WebSocket-Version: 13``).
* ``response_head(...)``: the ``101 Switching Protocols`` head once the app accepts.
* ``check_extended_connect(headers)``: the same checks for a WebSocket over an HTTP/2 stream
  (RFC 8441: an extended CONNECT, no key, no Upgrade; esg/http2/websocket.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from esg.websocket.deflate import DeflateParams, negotiate

__all__ = [
    "Handshake",
    "HandshakeError",
    "accept_value",
    "check_extended_connect",
    "check_request",
    "checked_subprotocol",
    "is_upgrade",
    "response_head",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
SUPPORTED_VERSION = b"13"


class HandshakeError(Exception):
    """The upgrade request can't be accepted: answer ``status`` and close."""

    def __init__(
        self,
        status: int,
        reason: str,
        kind: str | None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ):
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.kind = kind  # as esg.http.errors.ParseError.kind; None: not counted in the metrics
        self.headers = headers or []


@dataclass
class Handshake:
    """What a valid upgrade request asked for."""

    key: bytes
    subprotocols: list[str] = field(default_factory=list)
    extension_offers: list[bytes] = field(default_factory=list)


def _tokens(values: list[bytes]) -> list[bytes]:
    return [token.strip(b" \t").lower() for value in values for token in value.split(b",")]


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for header, value in headers if header == name]


def is_upgrade(request: Any) -> bool:
    """Does this request ask to switch to the WebSocket protocol?"""
    upgrade = request.upgrade
    if upgrade is None or b"websocket" not in _tokens([upgrade]):
        return False
    return b"upgrade" in _tokens(_values(request.headers, b"connection"))


def check_request(request: Any) -> Handshake:
    """Validate an upgrade request (RFC 6455 section 4.2.1); raises HandshakeError."""
    if request.method != b"GET":
        raise HandshakeError(400, "WebSocket handshake must use GET", "bad_request")
    if request.http_version != "1.1":
        raise HandshakeError(400, "WebSocket handshake needs HTTP/1.1", "bad_request")
    if request.chunked or request.content_length:
        raise HandshakeError(400, "WebSocket handshake must not carry a body", "bad_request")
    headers = request.headers
    _check_version(headers)
    keys = _values(headers, b"sec-websocket-key")
    if len(keys) != 1:
        raise HandshakeError(
            400, "WebSocket handshake needs exactly one Sec-WebSocket-Key", "bad_request"
        )
    key = keys[0].strip(b" \t")
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "Invalid Sec-WebSocket-Key", "bad_request")
    return Handshake(key, _subprotocols(headers), _values(headers, b"sec-websocket-extensions"))


def check_extended_connect(headers: list[tuple[bytes, bytes]]) -> Handshake:
    """Validate the fields of an HTTP/2 extended CONNECT for a WebSocket (RFC 8441 section 5:
    ``sec-websocket-version``, subprotocols and extensions as in RFC 6455, no key)."""
    _check_version(headers)
    return Handshake(b"", _subprotocols(headers), _values(headers, b"sec-websocket-extensions"))


def _check_version(headers: list[tuple[bytes, bytes]]) -> None:
    versions = _values(headers, b"sec-websocket-version")
    if [version.strip(b" \t") for version in versions] != [SUPPORTED_VERSION]:
        # Section 4.4: say which version esg speaks.
        raise HandshakeError(
            426,
            "Unsupported WebSocket version",
            None,  # the metrics have no label for it: not counted
            [(b"sec-websocket-version", SUPPORTED_VERSION)],
        )


def _subprotocols(headers: list[tuple[bytes, bytes]]) -> list[str]:
    subprotocols: list[str] = []
    for value in _values(headers, b"sec-websocket-protocol"):
        for token in value.decode("latin-1").split(","):
            token = token.strip(" \t")
            if not token:
                continue
            if _TOKEN.fullmatch(token) is None:
                raise HandshakeError(400, "Invalid Sec-WebSocket-Protocol", "bad_request")
            subprotocols.append(token)
    return subprotocols


def checked_subprotocol(subprotocol: str) -> bytes:
    """The app's chosen subprotocol as a header value.  RFC 6455 4.3: a token.  Never a CR or
    LF from the app into the head (the class of uvicorn's CVE-2020-7695, response splitting
    through an app-chosen value)."""
    if _TOKEN.fullmatch(subprotocol) is None:
        raise RuntimeError(f"Invalid subprotocol {subprotocol!r}: it must be a token.")
    return subprotocol.encode("ascii")


def accept_value(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a client's key."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def negotiate_deflate(
    handshake: Handshake, enabled: bool
) -> tuple[DeflateParams | None, bytes | None]:
    """The accepted permessage-deflate parameters and response header value, if any."""
    if not enabled or not handshake.extension_offers:
        return None, None
    agreed = negotiate(handshake.extension_offers)
    if agreed is None:
        return None, None
    return agreed


def response_head(
    handshake: Handshake,
    subprotocol: str | None,
    extension: bytes | None,
    header_block: bytes,
    default_lines: bytes,
) -> bytes:
    """``101 Switching Protocols`` with esg's default lines and the app's validated headers."""
    parts = [
        b"HTTP/1.1 101 Switching Protocols\r\n",
        default_lines,
        b"upgrade: websocket\r\nconnection: Upgrade\r\n",
        b"sec-websocket-accept: " + accept_value(handshake.key) + b"\r\n",
    ]
    if subprotocol is not None:
        parts.append(b"sec-websocket-protocol: " + checked_subprotocol(subprotocol) + b"\r\n")
    if extension is not None:
        parts.append(b"sec-websocket-extensions: " + extension + b"\r\n")
    parts.append(header_block)
    parts.append(b"\r\n")
    return b"".join(parts)
