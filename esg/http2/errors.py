"""The errors of esg's HTTP/2 codecs, shared by the compiled and the pure build.

They live outside the compiled modules so that both builds raise the very same classes: a
caller (or a test) catching ``HPACKError`` catches it from either twin.
"""

from __future__ import annotations

__all__ = ["HPACKError", "HeaderListTooLarge"]


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
