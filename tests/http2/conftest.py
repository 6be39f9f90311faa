"""Fixtures shared by the HTTP/2 tests in this folder."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def codec(build: Any) -> ModuleType:
    """``esg.http2.hpack`` of the build under test (``c`` or ``py``)."""
    return build.module("esg.http2.hpack")


@pytest.fixture
def h2mod(build: Any) -> ModuleType:
    """``esg.http2.connection`` of the build under test (``c`` or ``py``)."""
    return build.module("esg.http2.connection")
