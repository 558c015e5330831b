"""Asking a running cycle to stop at its next safe point.

`spm-sync serve` sets the signal on SIGTERM/SIGINT; the pipeline checks it where stopping
loses nothing: between stages, between pages of a pull (the watermark only advances after a
connection's pull completed, so a stopped pull is simply repeated) and between write batches.
It is never checked between an HTTP write and the audit row that records it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class CycleStopped(Exception):
    """The cycle stopped on request at a safe point; `where` names that point."""

    def __init__(self, where: str) -> None:
        super().__init__(f"stopped on request {where}")
        self.where = where


class StopSignal:
    """A thread-safe flag, set once, checked by the pipeline at its safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        self.reason = reason
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self, where: str) -> None:
        """Raise `CycleStopped` when a stop was requested."""
        if self._event.is_set():
            raise CycleStopped(where)

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


@contextmanager
def stop_on_signals(
    stop: StopSignal,
    on_signal: Callable[[str], None] | None = None,
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> Iterator[None]:
    """While inside, SIGTERM/SIGINT ask the cycle to stop at its next safe point (and call
    `on_signal`); a second signal acts as it normally would (Ctrl-C twice interrupts at once).
    Outside the main thread, where Python cannot install handlers, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {}

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        for number, handler in previous.items():
            signal.signal(number, handler)
        stop.set(f"{name} received")
        if on_signal is not None:
            on_signal(name)

    for number in signals:
        previous[number] = signal.signal(number, handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
