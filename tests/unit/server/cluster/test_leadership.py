"""Leadership: duties run only while the lock is held, and stop when it is lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from qpi.server.cluster.leadership import LeaderDuties, Leadership
from qpi.server.domain.clock import FakeClock


class Lock:
    """A lock another replica may hold (`free` False) or this one may lose (`held` False)."""

    def __init__(self) -> None:
        self.free = False
        self.held = False
        self.released = False

    def try_acquire(self) -> bool:
        self.held = self.free
        return self.held

    def still_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released = True


def make(lock: Lock, log: list[str]) -> Leadership:
    async def sweep() -> None:
        log.append("sweep")
        try:
            await asyncio.sleep(3600)  # a long run: ending the duties must cancel it
        except asyncio.CancelledError:
            log.append("stop")
            raise

    duties = LeaderDuties(loops=[("sweep", 3600.0, sweep)])
    return Leadership(lock, duties, FakeClock(), poll_interval=0.01)


async def test_duties_run_only_once_the_lock_is_taken() -> None:
    lock, log = Lock(), []
    leadership = make(lock, log)
    await leadership.step()
    assert not leadership.is_leader
    assert log == []
    lock.free = True
    await leadership.step()
    await asyncio.sleep(0)  # the sweep loop's first round runs at once
    assert leadership.is_leader
    assert log == ["sweep"]
    await leadership.step()  # still held: nothing starts twice
    await asyncio.sleep(0)
    assert log == ["sweep"]


def _stopped_leading(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if "stopped leading" in r.message]


async def test_a_leader_that_loses_its_lock_stops_its_duties(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    lock, log = Lock(), []
    lock.free = True
    leadership = make(lock, log)
    changes: list[bool] = []
    leadership.on_change = lambda since: changes.append(since is not None)
    await leadership.step()
    lock.held = lock.free = False  # the lock's connection died; another replica took it
    await leadership.step()
    assert not leadership.is_leader
    assert log[-1] == "stop"
    assert changes == [True, False]
    [(level, message)] = _stopped_leading(caplog)
    assert level == logging.WARNING  # unplanned: an operator should hear of it
    assert "lost the leadership lock" in message


async def test_stopping_gives_the_lock_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    lock, log = Lock(), []
    lock.free = True
    leadership = make(lock, log)
    task = asyncio.create_task(leadership.run())
    while not leadership.is_leader:
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert lock.released
    # A planned stop is no warning: every orderly shutdown would otherwise print one.
    [(level, message)] = _stopped_leading(caplog)
    assert level == logging.INFO
    assert "(stopping)" in message
    assert log[-1] == "stop"
    assert not leadership.is_leader
