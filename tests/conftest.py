"""Shared fixtures.

``build`` parametrizes a test over esg's two builds of the hot path: ``c`` (the Cython twin,
``esg.http._parser_c`` ...) and ``py`` (the plain modules).  With ``ESG_NO_EXTENSIONS=1`` only
the ``py`` build runs.  When ``ESG_REQUIRE_EXTENSIONS=1`` (set by ``make test``) a missing
compiled twin is an error rather than a skip, so a broken build can't pass silently.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from esg import _compiled

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
