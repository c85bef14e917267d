"""Leadership: the one replica that runs the cluster's background work.

Leadership is the PostgreSQL advisory lock of `store/leader_lock.py`, held on a
connection of its own: whoever holds it runs the duties (stale-lease recovery, telemetry
pruning, the dead-replica sweep, CA replacement). Every replica tries to take it every
`poll_interval` seconds, so when the leader dies (its connection, hence the lock, goes
with it) another replica leads within about one interval. A leader that can no longer
see its lock (its connection died) stops its duties at once. On SQLite the single server
is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from qpi.server.domain.clock import Clock
from qpi.server.store.leader_lock import LeaderLock

logger = logging.getLogger(__name__)


@dataclass
class LeaderDuties:
    """Periodic tasks only the leader runs.

    `loops` are coroutine functions run every given number of seconds after the end of
    their previous run (the first run at once), so a run never overlaps the next.
    """

    loops: list[tuple[str, float, Callable[[], Awaitable[object]]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def begin(self) -> None:
        """Starts every duty."""
        self._tasks = [asyncio.create_task(self._every(n, s, f)) for n, s, f in self.loops]

    async def end(self) -> None:
        """Stops every duty."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    @staticmethod
    async def _every(name: str, seconds: float, duty: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await duty()
            except Exception:  # one failed sweep must not end the duty
                logger.exception("[Leadership] %s failed", name)
            await asyncio.sleep(seconds)


class Leadership:
    """Takes and holds the leadership lock, running the duties while leading."""

    def __init__(
        self,
        lock: LeaderLock,
        duties: LeaderDuties,
        clock: Clock,
        poll_interval: float,
        replica_id: str = "",
    ) -> None:
        self._lock = lock
        self._duties = duties
        self._clock = clock
        self._poll = poll_interval
        self._replica_id = replica_id
        self.since: datetime | None = None
        self.on_change: Callable[[datetime | None], None] = lambda since: None

    @property
    def is_leader(self) -> bool:
        """Whether this replica leads now."""
        return self.since is not None

    async def run(self) -> None:
        """Runs until cancelled; gives leadership up on the way out."""
        try:
            while True:
                try:
                    await self.step()
                except Exception:  # the next round tries again
                    logger.exception("[Leadership] round failed")
                await asyncio.sleep(self._poll)
        finally:
            await self._depose("stopping", expected=True)
            await asyncio.to_thread(self._lock.release)

    async def step(self) -> None:
        """One round: take the free lock, or check that the held one is still held."""
        if not self.is_leader:
            if await asyncio.to_thread(self._lock.try_acquire):
                self.since = self._clock.now()
                logger.info("[Leadership] replica %s is now the leader", self._replica_id)
                self.on_change(self.since)
                self._duties.begin()
        elif not await asyncio.to_thread(self._lock.still_held):
            await self._depose("lost the leadership lock")

    async def _depose(self, why: str, *, expected: bool = False) -> None:
        if not self.is_leader:
            return
        self.since = None
        await self._duties.end()
        self.on_change(None)
        # A replica shutting down gives leadership up as planned; losing the lock is news.
        level = logging.INFO if expected else logging.WARNING
        logger.log(level, "[Leadership] replica %s stopped leading (%s)", self._replica_id, why)
