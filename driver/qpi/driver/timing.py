"""A job timeout that counts only the time the driver could actually run.

asyncio schedules timers on CLOCK_MONOTONIC. On Linux that clock stops while the whole
machine is suspended (CLOCK_BOOTTIME is the one that keeps counting), but it keeps running
while a *process* is stopped (SIGSTOP, a debugger, a frozen cgroup or container): after
SIGCONT every `call_later` deadline that fell inside the stop fires at once, and a job
would be failed as "timed out" for time in which neither the daemon nor its executor ran.
No clock excludes that, so the timeout is counted in short ticks: a gap between two ticks
much longer than a tick means the process was not running and counts as one tick, and a
tick during which the executor's worker is itself stopped does not count at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

TICK = 0.5
LAG_ALLOWANCE = 1.0
"""How late a tick may be and still count in full (a busy event loop is not a stop)."""


class RunningTimeout:
    """Calls `callback` once `seconds` of running time have passed.

    Args:
        seconds: Running time allowed.
        callback: Called once on the event loop when the time is used up.
        paused: Tells whether the work is stopped right now (e.g. the worker process).
        tick: Counting resolution in seconds.
    """

    def __init__(
        self,
        seconds: float,
        callback: Callable[[], None],
        *,
        paused: Callable[[], bool] = lambda: False,
        tick: float = TICK,
    ) -> None:
        self._seconds = seconds
        self._callback = callback
        self._paused = paused
        self._tick = tick
        self._ran = 0.0
        self._last = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None

    @property
    def ran(self) -> float:
        """Running time counted so far."""
        return self._ran

    def start(self) -> RunningTimeout:
        """Starts counting on the running event loop."""
        self._last = time.monotonic()
        self._schedule()
        return self

    def cancel(self) -> None:
        """Stops counting; the callback will not be called."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        delay = min(self._tick, max(self._seconds - self._ran, 0.0))
        self._handle = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        now = time.monotonic()
        gap, self._last = now - self._last, now
        if not self._paused():
            self._ran += min(gap, self._tick + LAG_ALLOWANCE)
        if self._ran >= self._seconds:
            self._handle = None
            self._callback()
            return
        self._schedule()
