"""Resolve ``"package.module:attribute.sub"`` import strings to objects.

Every failure the user can fix raises ``ImportFromStringError`` with a one-line message that
names what was missing; the original exception stays chained for ``--log-level debug``.
Exceptions raised by the application's own code while its module runs (a SyntaxError, a bug)
are not ours to rephrase and propagate unchanged.
"""

from __future__ import annotations

import importlib
from typing import Any


class ImportFromStringError(Exception):
    """An import string that does not lead to an object."""


def import_from_string(import_str: Any) -> Any:
    """The object named by ``import_str``; anything that is not a string is returned as is."""
    if not isinstance(import_str, str):
        return import_str
    module_name, _, attribute_path = import_str.partition(":")
    if not module_name or not attribute_path:
        raise ImportFromStringError(
            f'Import string "{import_str}" must be in format "<module>:<attribute>".'
        )
    if module_name.startswith("."):
        raise ImportFromStringError(
            f'Import string "{import_str}" uses a relative module; give the full module path.'
        )
    module = _import_module(module_name)
    return _get_attribute(module, module_name, attribute_path)


def _import_module(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_the_module_itself(module_name, exc.name):
            raise ImportFromStringError(f'Could not import module "{module_name}": {exc}') from exc
        raise _dependency_error(module_name, exc) from exc
    except ImportError as exc:
        # e.g. "cannot import name 'x' from 'y'" raised by a line inside the app module.
        raise _dependency_error(module_name, exc) from exc


def _is_the_module_itself(module_name: str, missing: str | None) -> bool:
    """True when the missing module is ``module_name`` or one of its parent packages."""
    if missing is None:
        return True
    return module_name == missing or module_name.startswith(missing + ".")


def _dependency_error(module_name: str, exc: ImportError) -> ImportFromStringError:
    return ImportFromStringError(
        f'Module "{module_name}" was found, but an import inside it failed: {exc}'
    )


def _get_attribute(module: Any, module_name: str, attribute_path: str) -> Any:
    instance = module
    try:
        for name in attribute_path.split("."):
            instance = getattr(instance, name)
    except AttributeError as exc:
        raise ImportFromStringError(
            f'Attribute "{attribute_path}" not found in module "{module_name}".'
        ) from exc
    return instance
