"""A module that can't be imported: it needs a dependency that isn't installed."""

from __future__ import annotations

import esg_test_dependency_that_does_not_exist  # type: ignore[import-not-found]  # noqa: F401


async def app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
    pass
