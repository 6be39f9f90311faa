"""Builds esg's compiled hot path.

Each hot-path module is ordinary typed Python (``esg/http/parser.py`` ...).  Cython compiles
the same file into a twin extension named ``_<module>_c`` that sits beside it, so both builds
can be imported in one process and tested against each other.  ``ESG_NO_EXTENSIONS=1`` skips
the build entirely (PyPy, platforms without a compiler).
"""

from __future__ import annotations

import os
import platform

from setuptools import setup

HOT_PATH = [
    "esg/http/parser.py",
    "esg/http/serializer.py",
    "esg/http/cycle.py",
    "esg/http/protocol.py",
    "esg/websocket/frames.py",
    "esg/metrics.py",
]
# Hand-written Cython where one typed-Python source can't be fast enough; each has a
# pure-Python twin that the same tests run against (named in the .pyx's docstring).
HAND_WRITTEN = [
    "esg/http/_headscan_c.pyx",
    "esg/websocket/_mask.pyx",
]


def _wants_extensions() -> bool:
    if os.environ.get("ESG_NO_EXTENSIONS", "") not in ("", "0"):
        return False
    return platform.python_implementation() == "CPython"


def _extensions() -> list[object]:
    if not _wants_extensions():
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    modules = []
    for path in HOT_PATH:
        package, _, filename = path[: -len(".py")].rpartition("/")
        name = f"{package.replace('/', '.')}._{filename}_c"
        modules.append(Extension(name, [path], extra_compile_args=["-O3"]))
    for path in HAND_WRITTEN:
        name = path[: -len(".pyx")].replace("/", ".")
        modules.append(Extension(name, [path], extra_compile_args=["-O3"]))
    return cythonize(
        modules,
        language_level=3,
        compiler_directives={
            # Bounds checks and negative indexing stay on: both builds must behave identically.
            "embedsignature": True,
        },
        quiet=True,
    )


setup(ext_modules=_extensions())
