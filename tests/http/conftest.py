"""Fixtures shared by the connection-level tests in this folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def error_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Records of ``esg.error`` even if another test configured esg's logging not to propagate."""
    logger = logging.getLogger("esg.error")
    saved = (logger.propagate, logger.disabled)
    logger.addHandler(caplog.handler)
    logger.propagate, logger.disabled = False, False
    caplog.set_level(logging.INFO, logger="esg.error")
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate, logger.disabled = saved
