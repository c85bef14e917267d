"""The job timeout counts running time only (SIGSTOP must not time a job out)."""

from __future__ import annotations

import asyncio
import time

from qpi.driver.timing import LAG_ALLOWANCE, RunningTimeout


async def test_fires_after_the_running_time() -> None:
    fired = asyncio.Event()
    started = time.monotonic()
    RunningTimeout(0.3, fired.set, tick=0.05).start()
    await asyncio.wait_for(fired.wait(), 10)
    assert time.monotonic() - started >= 0.3


async def test_a_stopped_process_does_not_use_up_the_time() -> None:
    fired = asyncio.Event()
    timeout = RunningTimeout(2.0, fired.set, tick=0.05).start()
    await asyncio.sleep(0.1)
    # The event loop cannot run for 3 s, as under SIGSTOP: CLOCK_MONOTONIC moves on.
    time.sleep(3.0)
    await asyncio.sleep(0.2)
    assert not fired.is_set()
    assert timeout.ran < 0.1 + 0.05 + LAG_ALLOWANCE + 0.3
    await asyncio.wait_for(fired.wait(), 10)  # and it still fires in the end


async def test_time_while_the_worker_is_stopped_does_not_count() -> None:
    fired = asyncio.Event()
    paused = True
    timeout = RunningTimeout(0.2, fired.set, paused=lambda: paused, tick=0.05).start()
    await asyncio.sleep(0.5)
    assert not fired.is_set()
    assert timeout.ran == 0.0
    paused = False
    await asyncio.wait_for(fired.wait(), 10)


async def test_cancel_stops_it() -> None:
    fired = asyncio.Event()
    RunningTimeout(0.1, fired.set, tick=0.02).start().cancel()
    await asyncio.sleep(0.3)
    assert not fired.is_set()
