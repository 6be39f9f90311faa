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
import importlib.util
import os
from types import ModuleType

NO_EXTENSIONS = os.environ.get("ESG_NO_EXTENSIONS", "") not in ("", "0")


def compiled_name(name: str) -> str:
    """``esg.http.parser`` -> ``esg.http._parser_c``."""
    package, _, leaf = name.rpartition(".")
    return f"{package}._{leaf}_c"


def is_compiled(module_name: str) -> bool:
    """Whether ``module_name`` is a compiled twin's name (``esg.http._parser_c``).

    A hot-path module is one source built twice, and asks for neighbours of its own build with
    ``load(name, is_compiled(__name__))``: its ``__name__`` is the name setup.py built it under,
    the same naming ``load()`` relies on.  (Cython's ``cython.compiled`` constant says the same,
    but only from inside each module, behind a guarded ``import cython`` for the pure build.)
    """
    leaf = module_name.rpartition(".")[2]
    return len(leaf) > 3 and leaf.startswith("_") and leaf.endswith("_c")


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


# Every compiled module a complete compiled build has (setup.py builds exactly these).
COMPILED_MODULES = (
    "esg.http._parser_c",
    "esg.http._serializer_c",
    "esg.http._cycle_c",
    "esg.http._protocol_c",
    "esg.http._headscan_c",
    "esg.websocket._frames_c",
    "esg.websocket._mask_c",
    "esg._metrics_c",
    "esg._write_flow_c",
    "esg.http2._hpack_c",
    "esg.http2._connection_c",
    "esg.http2._protocol_c",
)


def build_kind() -> str:
    """Which build callers get: "compiled", "pure Python", or why it is pure although built."""
    if NO_EXTENSIONS:
        # Only look for the files: importing them would load a build nobody asked for.
        built = any(importlib.util.find_spec(name) is not None for name in COMPILED_MODULES)
        return "pure Python, ESG_NO_EXTENSIONS=1" if built else "pure Python"
    present = [name for name in COMPILED_MODULES if load_compiled_module(name) is not None]
    if len(present) == len(COMPILED_MODULES):
        return "compiled"
    if not present:
        return "pure Python"
    missing = ", ".join(sorted(set(COMPILED_MODULES) - set(present)))
    return f"partly compiled, missing {missing}"


def describe(version: str) -> str:
    """What is running, e.g. ``esg 0.3.0 (compiled) on CPython 3.12.1, Linux``."""
    import platform

    return (
        f"esg {version} ({build_kind()}) on {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()}"
    )


def load_compiled_module(name: str) -> ModuleType | None:
    """The compiled module ``name`` (e.g. ``esg.websocket._mask_c``), or None if not built."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
