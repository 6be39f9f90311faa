"""Every esg module imports first, on its own, in a fresh interpreter, in both builds.

In the test process most modules are already imported by the time a test imports another, so
an import cycle that only breaks when one particular module comes first (``import
esg.http.cycle`` before anything else, as an embedding program or a worker might) goes unseen.
Each module here gets a new interpreter of its own.  The interpreters run a few at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from esg import _compiled
from tests.utils import REPO_DIR, subprocess_env

PACKAGE_DIR = REPO_DIR / "esg"
# Imports of optional dependencies that a module may need (the [standard] extra, gunicorn).
OPTIONAL = ("gunicorn", "uvloop", "watchfiles", "websockets", "wsproto", "yaml", "dotenv")


def esg_modules() -> list[str]:
    """Every module of the esg package, from its files (so none is missed by being unused)."""
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(REPO_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def import_alone(module: str, env: dict[str, str]) -> str | None:
    """None if ``module`` imports in a new interpreter, else why not."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode == 0:
        return None
    last = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
    missing = last[0].startswith("ModuleNotFoundError")
    if missing and any(f"'{name}" in last[0] for name in OPTIONAL):
        return None  # an optional dependency that isn't installed here
    return f"import {module}: {done.stderr.strip()}"


def test_the_module_list_is_complete() -> None:
    modules = esg_modules()
    assert "esg" in modules and "esg.http.protocol" in modules and "esg.websocket.mask" in modules


def test_every_module_imports_first_in_a_fresh_interpreter(build: Any) -> None:
    modules = esg_modules()
    if build.compiled:
        build.module("esg.http.protocol")  # not built: a failure under ESG_REQUIRE_EXTENSIONS=1
        modules += [m for m in _compiled.COMPILED_MODULES if _compiled.load_compiled_module(m)]
    env = subprocess_env({"ESG_NO_EXTENSIONS": "0" if build.compiled else "1"})
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failures = [f for f in pool.map(lambda m: import_alone(m, env), modules) if f]
    assert not failures, "\n\n".join(failures)
