"""The allocator tuning esg applies at startup (esg/_malloc.py explains why)."""

from __future__ import annotations

import platform

import pytest

from esg._malloc import tune_allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_can_be_turned_off(value: str) -> None:
    assert tune_allocator({"ESG_MALLOC_TUNING": value}) is False


@pytest.mark.parametrize(
    "variable", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"]
)
def test_a_users_own_glibc_settings_win(variable: str) -> None:
    assert tune_allocator({variable: "131072"}) is False


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_applies_on_glibc_by_default() -> None:
    assert tune_allocator({}) is True
