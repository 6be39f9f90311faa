"""`esg --version` and the debug startup line say which build is running.

A user who installed from an sdist on a machine without a C compiler gets the pure-Python
fallback; these lines are how they (and a bug report) can tell.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys

import pytest

import esg
from esg import _compiled
from tests.utils import REPO_DIR, esg_command, run_server, subprocess_env, wait_for

VERSION_LINE = re.compile(r"esg (\S+) \(([^)]*)\) on (\S+) (\S+), (\S+)")


def version_line(env: dict[str, str]) -> str:
    done = subprocess.run(
        esg_command("--version"),
        env=subprocess_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def compiled_was_built() -> bool:
    return all(_compiled.load_compiled_module(name) for name in _compiled.COMPILED_MODULES)


def test_version_names_the_interpreter_and_the_platform() -> None:
    line = version_line({})
    match = VERSION_LINE.fullmatch(line)
    assert match is not None, line
    assert match[1] == esg.__version__
    assert match[3] == platform.python_implementation()
    assert match[4] == platform.python_version()
    assert match[5] == platform.system()


def test_version_says_compiled_when_the_compiled_core_runs() -> None:
    if not compiled_was_built():
        pytest.skip("the compiled build isn't built here")
    env = {"ESG_NO_EXTENSIONS": "0"}
    assert "(compiled)" in version_line(env)


def test_version_says_pure_python_when_asked_for_it() -> None:
    line = version_line({"ESG_NO_EXTENSIONS": "1"})
    if compiled_was_built():
        assert "(pure Python, ESG_NO_EXTENSIONS=1)" in line
    else:
        assert "(pure Python)" in line


def test_build_kind_when_nothing_was_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compiled, "NO_EXTENSIONS", False)
    monkeypatch.setattr(_compiled, "load_compiled_module", lambda name: None)
    assert _compiled.build_kind() == "pure Python"


def test_build_kind_names_what_a_partial_build_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compiled, "NO_EXTENSIONS", False)
    present = set(_compiled.COMPILED_MODULES) - {"esg.websocket._mask_c"}
    monkeypatch.setattr(
        _compiled, "load_compiled_module", lambda name: object() if name in present else None
    )
    assert _compiled.build_kind() == "partly compiled, missing esg.websocket._mask_c"


def test_the_list_of_compiled_modules_is_what_setup_py_builds() -> None:
    # setup.py names each extension after its source; build_kind() must expect exactly those.
    setup_source = (REPO_DIR / "setup.py").read_text()
    hot_path = re.search(r"HOT_PATH = \[(.*?)\]", setup_source, re.S)
    hand_written = re.search(r"HAND_WRITTEN = \[(.*?)\]", setup_source, re.S)
    assert hot_path is not None and hand_written is not None
    built = set()
    for path in re.findall(r'"([^"]+)\.py"', hot_path[1]):
        package, _, module = path.rpartition("/")
        built.add(f"{package.replace('/', '.')}._{module}_c")
    for path in re.findall(r'"([^"]+)\.pyx"', hand_written[1]):
        built.add(path.replace("/", "."))
    assert built == set(_compiled.COMPILED_MODULES)


def test_debug_startup_line_names_the_build() -> None:
    with run_server("apps.basic:app", "--log-level", "debug") as server:
        # The socket listens before the server logs its start: wait for the line.
        wait_for(lambda: "Running esg " in server.stderr())
        log = server.stderr()
    expected = "compiled" if _compiled.extensions_active() else "pure Python"
    lines = [line for line in log.splitlines() if "Running esg " in line]
    assert len(lines) == 1, log
    assert f"Running esg {esg.__version__} ({expected}" in lines[0]


def test_describing_a_pure_run_imports_no_compiled_module() -> None:
    # The scope of the test apps (and the gunicorn worker's tests) tell the builds apart by
    # what is imported; saying which build runs must not load the other one.
    code = (
        "import sys, esg._compiled as c; c.describe('x'); "
        "print(sorted(m for m in sys.modules if m in c.COMPILED_MODULES))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env({"ESG_NO_EXTENSIONS": "1"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
