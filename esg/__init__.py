"""esg (Enhanced Service Gateway): a speed-oriented ASGI server.

``esg.run(app, **settings)`` serves an app; ``esg.Config`` and ``esg.Server`` are the pieces
it is built from.  They are imported on first use, so ``import esg`` stays cheap for code that
only needs a submodule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"
__all__ = ["Config", "Server", "__version__", "run"]

if TYPE_CHECKING:
    from esg.config import Config
    from esg.main import run
    from esg.server import Server

_LAZY = {"Config": "esg.config", "Server": "esg.server", "run": "esg.main"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'esg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
