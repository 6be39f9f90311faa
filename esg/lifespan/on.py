"""The ASGI lifespan protocol: tell the app when the server starts and stops.

The app runs once, in its own task, with a ``lifespan`` scope; startup and shutdown are two
request/reply exchanges over that one call.  Rules, per the ASGI lifespan spec:

* The app raising (or returning) before it answers ``lifespan.startup`` means it does not speak
  the protocol.  With ``--lifespan auto`` that is fine: log it at info and serve without lifespan
  events.  With ``--lifespan on`` it is a failure: log it and ask the server to exit.
* ``lifespan.startup.failed`` always asks the server to exit (``should_exit``; exit code 3).
* Once startup completed the app clearly supports the protocol, so a later exception is an
  error in either mode.
* ``shutdown()`` never waits on an app task that has already ended.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from esg._types import Message

STARTUP = "startup"
SHUTDOWN = "shutdown"
UNSUPPORTED_MESSAGE = "ASGI 'lifespan' protocol appears unsupported."


class LifespanConfig(Protocol):
    """The settings lifespan reads (``esg.Config`` provides them)."""

    @property
    def loaded_app(self) -> Any: ...

    @property
    def lifespan(self) -> str: ...

    @property
    def asgi_version(self) -> str: ...


class LifespanOn:
    """Runs the app's lifespan protocol; the server calls ``startup()`` and ``shutdown()``."""

    def __init__(self, config: LifespanConfig) -> None:
        self.config = config
        self.logger = logging.getLogger("esg.error")
        self.state: dict[str, Any] = {}
        self.should_exit = False
        self.error_occured = False
        self.startup_failed = False
        self.shutdown_failed = False
        self._phase: str | None = None  # the exchange in progress: STARTUP, SHUTDOWN or None
        self._startup_complete = False
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_answered = asyncio.Event()
        self._shutdown_answered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self.logger.info("Waiting for application startup.")
        self._phase = STARTUP
        self._task = asyncio.get_running_loop().create_task(self._run_app())
        await self._inbox.put({"type": "lifespan.startup"})
        await self._startup_answered.wait()
        self._phase = None
        if self.startup_failed or (self.error_occured and self._strict):
            self.logger.error("Application startup failed. Exiting.")
            self.should_exit = True
        elif self._startup_complete:
            self.logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self.error_occured or self.startup_failed or not self._startup_complete:
            return  # the app does not speak lifespan (or never started): send it nothing more
        self.logger.info("Waiting for application shutdown.")
        self._phase = SHUTDOWN
        if self._task is not None and not self._task.done():
            await self._inbox.put({"type": "lifespan.shutdown"})
            await self._shutdown_answered.wait()
        self._phase = None
        if self.shutdown_failed or self.error_occured:
            self.logger.error("Application shutdown failed. Exiting.")
            self.should_exit = True
        else:
            self.logger.info("Application shutdown complete.")

    @property
    def _strict(self) -> bool:
        return self.config.lifespan == "on"

    async def _run_app(self) -> None:
        scope = {
            "type": "lifespan",
            # "2.0" for an app run through the ASGI 2 adapter, like its HTTP and WebSocket
            # scopes: the version is that of the interface the app is called with.
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.config.loaded_app(scope, self._receive, self._send)
        except Exception as exc:
            self._on_app_error(exc)
        else:
            self._on_app_return()
        finally:
            # Whatever happened, nobody may keep waiting for an answer that can't come.
            self._startup_answered.set()
            self._shutdown_answered.set()

    def _on_app_error(self, exc: Exception) -> None:
        if self.startup_failed or self.shutdown_failed:
            return  # the app already reported the failure through the protocol
        self.error_occured = True
        if self._startup_complete or self._strict:
            self.logger.error("Exception in 'lifespan' protocol", exc_info=exc)
        else:
            self.logger.info(UNSUPPORTED_MESSAGE)

    def _on_app_return(self) -> None:
        if self._phase == STARTUP and not self.startup_failed and not self._startup_complete:
            # Returned without answering startup: same verdict as raising.
            self.error_occured = True
            if self._strict:
                self.logger.error("ASGI 'lifespan' app returned before completing startup.")
            else:
                self.logger.info(UNSUPPORTED_MESSAGE)

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._expect_phase(STARTUP, kind)
            self._startup_complete = True
            self._startup_answered.set()
        elif kind == "lifespan.startup.failed":
            self._expect_phase(STARTUP, kind)
            self.startup_failed = True
            self._log_failure_message(message)
            self._startup_answered.set()
        elif kind == "lifespan.shutdown.complete":
            self._expect_phase(SHUTDOWN, kind)
            self._shutdown_answered.set()
        elif kind == "lifespan.shutdown.failed":
            self._expect_phase(SHUTDOWN, kind)
            self.shutdown_failed = True
            self._log_failure_message(message)
            self._shutdown_answered.set()
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message type {kind!r}.")

    def _expect_phase(self, phase: str, kind: str) -> None:
        answered = self._startup_answered if phase == STARTUP else self._shutdown_answered
        if self._phase != phase or answered.is_set():
            raise RuntimeError(f"Unexpected ASGI message {kind!r} sent, outside of {phase}.")

    def _log_failure_message(self, message: Message) -> None:
        text = message.get("message", "")
        if text:
            self.logger.error(str(text))
