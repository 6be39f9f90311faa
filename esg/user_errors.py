"""A mistake the user can fix (bad import string, missing file, port in use): one line, exit 1.

Settings, logging configuration, socket binding and the supervisors all report such mistakes
the same way: one line on ``esg.error``, then ``SystemExit(1)``.  A traceback would only bury
the message, so it is added only at ``--log-level debug``.
"""

from __future__ import annotations

import logging
from typing import NoReturn

__all__ = ["fail"]

logger = logging.getLogger("esg.error")


def fail(message: str, exc: BaseException | None = None) -> NoReturn:
    """Log one error line (plus the traceback at debug level) and exit with status 1."""
    show_traceback = exc is not None and logger.isEnabledFor(logging.DEBUG)
    logger.error(message, exc_info=exc if show_traceback else None)
    raise SystemExit(1)
