"""The pure and compiled twins can't drift apart unnoticed.

A hot-path module is one ``.py`` source; Cython compiles it with the augmenting ``.pxd`` of the
same name (``_protocol_c.pxd``), whose ``cdef class`` blocks fix each class's attributes as C
fields.  An attribute the ``.pxd`` doesn't declare fails only in the compiled build, so every
augmented class lists exactly those fields in ``__slots__`` and then fails in the pure build
too; these tests hold the two lists together (by reading the ``.pxd`` text, so they run
without a compiled build as well).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from esg import _compiled
from tests.utils import REPO_DIR

PACKAGE_DIR = REPO_DIR / "esg"
AUGMENTING = sorted(PACKAGE_DIR.rglob("_*_c.pxd"))

_CLASS = re.compile(r"cdef class (\w+)")
_FIELD = re.compile(r"cdef\s+(?:public\s+|readonly\s+)?(?:[\w.]+\s+)+?(\w+(?:\s*,\s*\w+)*)\s*$")


def pxd_fields(text: str) -> dict[str, list[str]]:
    """``{class name: its C fields in declaration order}`` from a ``.pxd``'s ``cdef class``es.

    A field is a ``cdef [public|readonly] TYPE name[, name...]`` line inside a class block;
    method declarations (which have parentheses) and decorators are skipped.
    """
    classes: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        code = line.split("#", 1)[0].rstrip()
        if not code:
            continue
        started = _CLASS.match(code)
        if started:
            current = classes[started[1]] = []
            continue
        if not code[0].isspace():
            current = None  # a module-level declaration ends the class block
            continue
        if current is None or "(" in code or ")" in code:
            continue
        field = _FIELD.fullmatch(code.strip())
        if field:
            current.extend(name.strip() for name in field[1].split(","))
    return classes


def pure_module_name(pxd: Path) -> str:
    """``esg/http/_protocol_c.pxd`` -> ``esg.http.protocol`` (the source it augments)."""
    relative = pxd.relative_to(REPO_DIR).with_suffix("")
    *package, leaf = relative.parts
    return ".".join([*package, leaf[1 : -len("_c")]])


def test_every_augmenting_pxd_is_found() -> None:
    names = {pure_module_name(pxd) for pxd in AUGMENTING}
    assert names == {
        "esg.http.parser",
        "esg.http.serializer",
        "esg.http.cycle",
        "esg.http.protocol",
        "esg.websocket.frames",
        "esg.metrics",
        "esg.write_flow",
        "esg.http2.hpack",
        "esg.http2.connection",
        "esg.http2.protocol",
    }


def test_the_pxd_reader_understands_every_declaration_form() -> None:
    text = (
        "cimport cython\n"
        "cdef int _A, _B\n"
        "cdef class One:\n"
        "    cdef public object a  # a comment\n"
        "    cdef readonly long long b\n"
        "    cdef int c, d\n"
        "    cdef Py_ssize_t e\n"
        "    cdef esg._metrics_c.Metrics f\n"
        "    @cython.locals(\n"
        "        x=cython.int,\n"
        "    )\n"
        "    cdef object method(self, int x)\n"
        "    cpdef other(self)\n"
        "\n"
        "cdef object _helper(int x)\n"
        "cdef class Two:\n"
        "    cdef bytes data\n"
    )
    assert pxd_fields(text) == {"One": ["a", "b", "c", "d", "e", "f"], "Two": ["data"]}


@pytest.mark.parametrize("pxd", AUGMENTING, ids=lambda path: path.name)
def test_slots_are_exactly_the_pxd_fields(pxd: Path) -> None:
    module = importlib.import_module(pure_module_name(pxd))
    declared = pxd_fields(pxd.read_text())
    assert declared, f"{pxd.name} declares no cdef class"
    for name, fields in declared.items():
        cls = getattr(module, name)
        slots = cls.__dict__.get("__slots__")
        assert slots is not None, f"{module.__name__}.{name} has no __slots__ of its own"
        assert len(set(fields)) == len(fields), f"{pxd.name}: {name} declares a field twice"
        assert sorted(slots) == sorted(fields), (
            f"{module.__name__}.{name}.__slots__ and {pxd.name} differ: "
            f"only in __slots__ {sorted(set(slots) - set(fields))}, "
            f"only in the .pxd {sorted(set(fields) - set(slots))}"
        )


@pytest.mark.parametrize("pxd", AUGMENTING, ids=lambda path: path.name)
def test_both_builds_hold_only_their_declared_attributes(pxd: Path, build: Any) -> None:
    # No instance __dict__ in either build: an undeclared attribute fails in both alike.
    module = build.module(pure_module_name(pxd))
    for name in pxd_fields(pxd.read_text()):
        assert getattr(module, name).__dictoffset__ == 0, f"{module.__name__}.{name}"


@pytest.mark.parametrize("pxd", AUGMENTING, ids=lambda path: path.name)
def test_the_source_names_its_pxd_and_twin(pxd: Path) -> None:
    module_name = pure_module_name(pxd)
    source = (REPO_DIR / Path(*module_name.split("."))).with_suffix(".py")
    docstring = ast.get_docstring(ast.parse(source.read_text())) or ""
    header = docstring.split("\n\n")[1] if "\n\n" in docstring else ""
    expected = f"Compiled twin ``{_compiled.compiled_name(module_name)}``, typed by ``{pxd.name}``."
    assert header == expected, f"{source.name}'s docstring header: {header!r}"


def test_hand_written_twins_share_the_naming_of_the_generated_ones() -> None:
    # _<name>_c.pyx beside <name>.py, as _<name>_c (compiled from <name>.py) is beside it, so
    # that load("esg.x.name") finds either kind of twin the same way.
    for pyx in sorted(PACKAGE_DIR.rglob("*.pyx")):
        assert pyx.name.startswith("_") and pyx.stem.endswith("_c"), pyx.name
        assert (pyx.parent / f"{pyx.stem[1 : -len('_c')]}.py").is_file(), f"{pyx.name} has no twin"
        module = ".".join(pyx.relative_to(REPO_DIR).with_suffix("").parts)
        assert module in _compiled.COMPILED_MODULES


def test_a_module_knows_which_twin_it_is() -> None:
    assert _compiled.is_compiled("esg.http._protocol_c")
    assert _compiled.is_compiled("esg._metrics_c")
    assert not _compiled.is_compiled("esg.http.protocol")
    assert not _compiled.is_compiled("esg.http._c")
    assert not _compiled.is_compiled("esg._compiled")
    for name in _compiled.COMPILED_MODULES:
        assert _compiled.is_compiled(name), name


def test_no_module_keeps_its_own_compiled_probe() -> None:
    # esg._compiled.is_compiled(__name__) is the one way a module learns its build.
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.name != "_compiled.py":  # which names it, to say why it isn't used
            assert "cython.compiled" not in path.read_text(), path.relative_to(REPO_DIR)
