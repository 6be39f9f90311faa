"""Keep freed memory in the process instead of handing it back to the kernel after each request.

glibc's allocator gives the top of the heap back to the kernel (``brk``) as soon as 128 KiB
there are free, and serves blocks from 128 KiB up with a fresh ``mmap`` each time.  A server
that receives and sends bodies of tens of KiB allocates and frees such blocks on every request,
so each request paid for shrinking the heap and then page-faulting the same memory back in: in
the 64 KiB echo benchmark, page faults and ``brk`` were a fifth of the server's CPU time.

esg raises both thresholds once at startup: up to ``TRIM_THRESHOLD`` of free heap is kept for
reuse, and blocks under ``MMAP_THRESHOLD`` come from the heap.  The cost is bounded: at most
``TRIM_THRESHOLD`` more resident memory after a burst.  Someone who set glibc's own
``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_THRESHOLD_`` variables keeps their values, and
``ESG_MALLOC_TUNING=0`` leaves the allocator alone.  Other C libraries are left alone too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_allocator"]

logger = logging.getLogger("esg.error")

TRIM_THRESHOLD = 8 * 1024 * 1024
MMAP_THRESHOLD = 4 * 1024 * 1024
_M_TRIM_THRESHOLD = -1  # glibc's mallopt() parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_GLIBC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def tune_allocator(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Raise glibc's trim and mmap thresholds; True when they were changed."""
    env = os.environ if environ is None else environ
    if env.get("ESG_MALLOC_TUNING", "1") in ("0", "false", "no", "off"):
        return False
    if any(name in env for name in _GLIBC_VARIABLES):
        return False  # the user tuned the allocator themselves
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt() returns 1 on success.  Setting the trim threshold also turns off glibc's
    # dynamic mmap threshold, which is why both are set together.
    trim_set = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    mmap_set = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if trim_set and mmap_set:
        logger.debug(
            "Allocator: keeps %d bytes of free heap, mmaps from %d", TRIM_THRESHOLD, MMAP_THRESHOLD
        )
    return bool(trim_set and mmap_set)
