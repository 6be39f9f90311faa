"""The XOR unmasking of client frames (RFC 6455 5.3), in pure Python.

``_mask_c.pyx`` is its hand-written compiled twin (8 bytes per step in C), because the
one-source frames.py can't express raw memory access.  The compiled frame reader uses that
twin and the pure one this module (``load("esg.websocket.mask", ...)`` in frames.py); the
test suite checks the two against each other.
"""

from __future__ import annotations

__all__ = ["unmask"]


def unmask(data: bytes, start: int, length: int, mask: bytes) -> bytes:
    """``data[start:start + length]`` XORed with the 4-byte ``mask``, as one big-integer XOR.

    The frame reader only asks for ranges inside ``data``; unlike the compiled twin, this one
    doesn't check.
    """
    chunk = data[start : start + length]
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(chunk, "little") ^ int.from_bytes(key, "little")).to_bytes(
        length, "little"
    )
