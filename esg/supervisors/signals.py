"""Signals for a supervisor's selector loop.

A Python signal handler runs between two bytecodes of whatever the main thread is doing, so
the handlers here only record the signal; ``signal.set_wakeup_fd`` writes a byte to a
socketpair that the loop's selector watches, and the loop acts on ``take()`` when it wakes.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
from types import FrameType
from typing import Any


class SignalInbox:
    """Records ``signals`` as they arrive and wakes a selector loop."""

    def __init__(self, signals: tuple[int, ...]) -> None:
        self.signals = signals
        self.pending: list[int] = []
        self.read_end, self.write_end = socket.socketpair()
        self.read_end.setblocking(False)
        self.write_end.setblocking(False)
        self._previous_wakeup_fd = -1
        self._previous_handlers: dict[int, Any] = {}

    def install(self, selector: selectors.BaseSelector, data: Any) -> None:
        """Register the wake-up end with ``selector`` (its key carries ``data``), take over the
        signals."""
        selector.register(self.read_end, selectors.EVENT_READ, data)
        self._previous_wakeup_fd = signal.set_wakeup_fd(self.write_end.fileno())
        self._previous_handlers = {
            signum: signal.signal(signum, self._record) for signum in self.signals
        }

    def restore(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}
        signal.set_wakeup_fd(self._previous_wakeup_fd)

    def drain(self) -> None:
        """Empty the wake-up socket (the loop woke up; the signals are in ``pending``)."""
        with contextlib.suppress(OSError):
            while self.read_end.recv(4096):
                pass

    def take(self) -> list[int]:
        """The signals received since the last call, oldest first."""
        taken, self.pending = self.pending, []
        return taken

    def fds(self) -> list[int]:
        """Descriptors a forked worker must close."""
        return [self.read_end.fileno(), self.write_end.fileno()]

    def close(self) -> None:
        self.read_end.close()
        self.write_end.close()

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.pending.append(signum)
