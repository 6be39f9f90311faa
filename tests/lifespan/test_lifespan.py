from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from esg._types import ASGIApp, Message, Receive, Scope, Send
from esg.lifespan.off import LifespanOff
from esg.lifespan.on import LifespanOn


def make_lifespan(app: ASGIApp, mode: str = "auto") -> LifespanOn:
    return LifespanOn(SimpleNamespace(loaded_app=app, lifespan=mode, asgi_version="3.0"))


def run_startup_and_shutdown(lifespan: LifespanOn) -> None:
    async def main() -> None:
        await lifespan.startup()
        await lifespan.shutdown()

    asyncio.run(main())


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "esg.error" and r.levelno == level]


async def well_behaved_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "lifespan"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.0"}
    seen: list[str] = scope["state"].setdefault("seen", [])
    while True:
        message = await receive()
        seen.append(message["type"])
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http_only_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"


async def returns_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    return None


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_and_shutdown_complete(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="esg.error")
    lifespan = make_lifespan(well_behaved_app, mode)
    run_startup_and_shutdown(lifespan)
    assert not lifespan.should_exit
    assert not lifespan.error_occured and not lifespan.startup_failed
    assert lifespan.state["seen"] == ["lifespan.startup", "lifespan.shutdown"]
    assert messages(caplog, logging.INFO) == [
        "Waiting for application startup.",
        "Application startup complete.",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
    ]


def test_state_mutated_by_app_is_visible() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        scope["state"]["db"] = "connected"
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    lifespan = make_lifespan(app)

    async def main() -> dict[str, Any]:
        await lifespan.startup()
        seen = dict(lifespan.state)
        await lifespan.shutdown()
        return seen

    assert asyncio.run(main()) == {"db": "connected"}


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_asks_server_to_exit(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})

    lifespan = make_lifespan(app, mode)
    run_startup_and_shutdown(lifespan)
    assert lifespan.should_exit and lifespan.startup_failed
    errors = messages(caplog, logging.ERROR)
    assert errors == ["database unreachable", "Application startup failed. Exiting."]


def test_startup_failed_then_raise_is_not_logged_twice(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "boom"})
        raise RuntimeError("boom")

    lifespan = make_lifespan(app)
    run_startup_and_shutdown(lifespan)
    assert lifespan.should_exit
    assert messages(caplog, logging.ERROR) == ["boom", "Application startup failed. Exiting."]


@pytest.mark.parametrize("app", [http_only_app, returns_at_once])
def test_unsupported_app_in_auto_mode_keeps_serving(
    app: ASGIApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="esg.error")
    lifespan = make_lifespan(app, "auto")
    run_startup_and_shutdown(lifespan)
    assert not lifespan.should_exit
    assert lifespan.error_occured
    assert "ASGI 'lifespan' protocol appears unsupported." in messages(caplog, logging.INFO)
    assert "Waiting for application shutdown." not in messages(caplog, logging.INFO)
    assert messages(caplog, logging.ERROR) == []


def test_unsupported_app_in_on_mode_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    lifespan = make_lifespan(http_only_app, "on")
    run_startup_and_shutdown(lifespan)
    assert lifespan.should_exit
    tracebacks = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert len(tracebacks) == 1 and isinstance(tracebacks[0].exc_info[1], AssertionError)  # type: ignore[index]


def test_app_returning_without_reply_in_on_mode_is_a_failure() -> None:
    lifespan = make_lifespan(returns_at_once, "on")
    run_startup_and_shutdown(lifespan)
    assert lifespan.should_exit


def test_shutdown_failed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "could not flush"})

    lifespan = make_lifespan(app)
    run_startup_and_shutdown(lifespan)
    assert lifespan.should_exit and lifespan.shutdown_failed
    assert messages(caplog, logging.ERROR) == [
        "could not flush",
        "Application shutdown failed. Exiting.",
    ]


def test_exception_after_startup_is_an_error_even_in_auto(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise ValueError("cleanup broke")

    lifespan = make_lifespan(app, "auto")
    run_startup_and_shutdown(lifespan)
    assert lifespan.should_exit
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.ERROR)


def test_shutdown_does_not_hang_when_app_already_ended() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})

    lifespan = make_lifespan(app)

    async def main() -> None:
        await lifespan.startup()
        await asyncio.sleep(0)  # let the app task finish
        await asyncio.wait_for(lifespan.shutdown(), timeout=5)

    asyncio.run(main())
    assert not lifespan.should_exit


def test_message_out_of_phase_is_rejected() -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        await send({"type": "lifespan.shutdown.complete"})

    lifespan = make_lifespan(app, "on")
    run_startup_and_shutdown(lifespan)
    assert received == [{"type": "lifespan.startup"}]
    assert lifespan.should_exit and lifespan.error_occured


def test_lifespan_off_does_nothing() -> None:
    called: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)

    lifespan = LifespanOff(SimpleNamespace(loaded_app=app, lifespan="off"))

    async def main() -> None:
        await lifespan.startup()
        await lifespan.shutdown()

    asyncio.run(main())
    assert called == [] and lifespan.state == {} and not lifespan.should_exit


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_returning_after_startup_complete_is_not_a_failure(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The app answered startup and then simply ended its lifespan task: serve normally.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})

    caplog.set_level(logging.INFO, logger="esg.error")
    lifespan = make_lifespan(app, mode)
    run_startup_and_shutdown(lifespan)
    assert not lifespan.should_exit and not lifespan.startup_failed
    assert not lifespan.error_occured
    assert "unsupported" not in caplog.text
