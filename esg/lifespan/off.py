"""``--lifespan off``: the app is never called with a ``lifespan`` scope."""

from __future__ import annotations

from typing import Any


class LifespanOff:
    """Same interface as ``LifespanOn``; startup and shutdown do nothing."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.state: dict[str, Any] = {}
        self.should_exit = False
        self.error_occured = False
        self.startup_failed = False
        self.shutdown_failed = False

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
