"""Shared fixtures.

``isolated_esg_loggers`` gives a test esg's loggers as if nothing had configured them (no
handlers, level NOTSET, propagating, so caplog sees their records) and puts them back after;
the files that configure logging use it for every test
(``pytestmark = pytest.mark.usefixtures("isolated_esg_loggers")``).

``build`` parametrizes a test over esg's two builds of the hot path: ``c`` (the Cython twin,
``esg.http._parser_c`` ...) and ``py`` (the plain modules).  With ``ESG_NO_EXTENSIONS=1`` only
the ``py`` build runs.  When ``ESG_REQUIRE_EXTENSIONS=1`` (set by ``make test``) a missing
compiled twin is an error rather than a skip, so a broken build can't pass silently.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType

import pytest

from esg import _compiled
from esg.log_config import LOGGER_NAMES

BUILDS = ["py"] if _compiled.NO_EXTENSIONS else ["c", "py"]


class Build:
    """One build of the hot path: ``build.module("esg.http.parser")``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.compiled = name == "c"

    def module(self, dotted: str) -> ModuleType:
        if not self.compiled:
            return importlib.import_module(dotted)
        module = _compiled.load_compiled(dotted)
        if module is None:
            if os.environ.get("ESG_REQUIRE_EXTENSIONS", "") not in ("", "0"):
                pytest.fail(f"compiled twin of {dotted} is missing (run `make build`)")
            pytest.skip(f"compiled twin of {dotted} not built")
        return module


@pytest.fixture(params=BUILDS)
def build(request: pytest.FixtureRequest) -> Build:
    return Build(request.param)


@pytest.fixture
def isolated_esg_loggers() -> Iterator[None]:
    """Start from untouched esg loggers and put them back: other tests rely on caplog."""
    saved = {}
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate, logger.disabled = True, False
    root_level = logging.getLogger().level  # a --log-config may set the root logger's level
    yield
    logging.getLogger().setLevel(root_level)
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
