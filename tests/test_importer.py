from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from esg.importer import ImportFromStringError, import_from_string

_counter = itertools.count()


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Writes a module with a unique name under tmp_path and returns that name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str) -> str:
        name = f"esg_importer_case_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)


def error_for(import_str: str) -> ImportFromStringError:
    with pytest.raises(ImportFromStringError) as info:
        import_from_string(import_str)
    return info.value


def test_imports_nested_attribute(make_module: Callable[[str], str]) -> None:
    module = make_module(
        """
        class Holder:
            class Inner:
                app = "the app"
        """
    )
    assert import_from_string(f"{module}:Holder.Inner.app") == "the app"


def test_non_string_is_returned_unchanged() -> None:
    def app() -> None: ...

    assert import_from_string(app) is app


@pytest.mark.parametrize("bad", ["example", "example:", ":app", ""])
def test_malformed_string(bad: str) -> None:
    message = str(error_for(bad))
    assert message == f'Import string "{bad}" must be in format "<module>:<attribute>".'


def test_relative_module_is_refused() -> None:
    assert "relative" in str(error_for(".example:app"))


def test_missing_module_names_it() -> None:
    error = error_for("esg_no_such_module_xyz:app")
    assert str(error) == (
        'Could not import module "esg_no_such_module_xyz": '
        "No module named 'esg_no_such_module_xyz'"
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_missing_parent_package_counts_as_the_module_itself() -> None:
    message = str(error_for("esg_no_such_pkg_xyz.sub:app"))
    assert message.startswith('Could not import module "esg_no_such_pkg_xyz.sub"')


def test_missing_dependency_inside_the_app_is_reported_as_such(
    make_module: Callable[[str], str],
) -> None:
    module = make_module("import esg_missing_dependency_xyz\napp = 1\n")
    error = error_for(f"{module}:app")
    assert str(error) == (
        f'Module "{module}" was found, but an import inside it failed: '
        "No module named 'esg_missing_dependency_xyz'"
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_bad_from_import_inside_the_app(make_module: Callable[[str], str]) -> None:
    module = make_module("from os import esg_not_in_os\n")
    message = str(error_for(f"{module}:app"))
    assert f'Module "{module}" was found, but an import inside it failed' in message
    assert "esg_not_in_os" in message


def test_missing_attribute(make_module: Callable[[str], str]) -> None:
    module = make_module("app = 1\n")
    assert str(error_for(f"{module}:application")) == (
        f'Attribute "application" not found in module "{module}".'
    )


def test_missing_nested_attribute_names_the_whole_path(make_module: Callable[[str], str]) -> None:
    module = make_module("class app:\n    pass\n")
    assert str(error_for(f"{module}:app.router")) == (
        f'Attribute "app.router" not found in module "{module}".'
    )


def test_errors_raised_by_the_app_code_propagate(make_module: Callable[[str], str]) -> None:
    module = make_module("raise RuntimeError('app is broken')\n")
    with pytest.raises(RuntimeError, match="app is broken"):
        import_from_string(f"{module}:app")
