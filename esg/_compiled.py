"""The one switch between esg's compiled and pure-Python hot path.

Every hot-path module exists as plain typed Python (``esg/http/parser.py``) and, when esg was
built with Cython, as a compiled twin beside it (``esg/http/_parser_c``).  Setting
``ESG_NO_EXTENSIONS=1`` makes every caller get the Python version; otherwise the compiled twin
is used when it was built.  A compiled module asks for compiled neighbours and a pure module
for pure ones, so each build is self-consistent even when both are loaded in one process (the
test suite does that to check one against the other).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

NO_EXTENSIONS = os.environ.get("ESG_NO_EXTENSIONS", "") not in ("", "0")


def compiled_name(name: str) -> str:
    """``esg.http.parser`` -> ``esg.http._parser_c``."""
    package, _, leaf = name.rpartition(".")
    return f"{package}._{leaf}_c"


def load_compiled(name: str) -> ModuleType | None:
    """The compiled twin of module ``name``, or None when it wasn't built."""
    try:
        return importlib.import_module(compiled_name(name))
    except ImportError:
        return None


def load(name: str, compiled: bool | None = None) -> ModuleType:
    """The build of hot-path module ``name`` to use.

    ``compiled`` says which build the caller belongs to; None means "the configured default".
    """
    want_compiled = (not NO_EXTENSIONS) if compiled is None else compiled
    if want_compiled:
        module = load_compiled(name)
        if module is not None:
            return module
    return importlib.import_module(name)


def extensions_active() -> bool:
    """True when callers get the compiled hot path."""
    return not NO_EXTENSIONS and load_compiled("esg.http.protocol") is not None
