"""The errors of esg's HTTP/2 codecs, shared by the compiled and the pure build.

They live outside the compiled modules so that both builds raise the very same classes: a
caller (or a test) catching ``HPACKError`` catches it from either twin.
"""

from __future__ import annotations

__all__ = ["H2ProtocolError", "HPACKError", "HeaderListTooLarge", "StreamClosedError"]


class HPACKError(Exception):
    """A header block that can't be decoded: the connection error COMPRESSION_ERROR.

    RFC 9113 section 4.3: the compression context is lost with it, so the connection must end
    with GOAWAY(COMPRESSION_ERROR).  The decoder that raised it refuses every later block.
    """


class HeaderListTooLarge(Exception):
    """A header block decoded fine but to more than the decoder's ``max_header_list_size``.

    Not an ``HPACKError``: the whole block was processed, so the dynamic table is what the
    peer's encoder expects and the connection can carry on.  Only that stream is refused
    (RFC 9113 section 8.2: a 431 response, or RST_STREAM).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"the decoded header list is larger than {limit} bytes")
        self.limit = limit


class H2ProtocolError(Exception):
    """The peer broke RFC 9113 in a way that ends the whole connection (a connection error,
    section 5.4.1): GOAWAY carries ``error_code``.

    Raised inside ``esg.http2.connection`` and caught by ``receive_data()``, which turns it into
    the GOAWAY and a ``ConnectionTerminated`` event; a caller never sees it escape.
    """

    def __init__(self, error_code: int, reason: str) -> None:
        super().__init__(error_code, reason)
        self.error_code = error_code
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class StreamClosedError(Exception):
    """A response was sent on a stream that can no longer carry it: the stream was reset (by
    the client or by esg), its response already ended, or the connection is closed.

    The HTTP/2 layer treats it as the client having gone away, for that stream only.
    """

    def __init__(self, stream_id: int) -> None:
        super().__init__(f"stream {stream_id} can't send any more")
        self.stream_id = stream_id
