"""Push dispatch: per-QPU loops woken by events, never waiting on a poll.

A QPU's loop wakes on submit, result, cancel, release, driver connect and booking
changes (and at slot boundaries); it asks the queue policy what to run and leases jobs
to drivers only while they have free capacity, so booking priority decides what runs
next. A slow safety sweep (`--dispatch-poll-interval`) catches anything missed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from qpi.server.domain.clock import Clock
from qpi.server.domain.models import Claim
from qpi.server.domain.policy import Dispatch, Hold, QueuePolicy, next_wakeup
from qpi.server.drivers.hub import DriverHub
from qpi.server.drivers.session import Assign
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.lease_service import LeaseService

logger = logging.getLogger(__name__)


class Dispatcher:
    """Runs one dispatch loop per QPU that has connected drivers."""

    def __init__(
        self,
        db: Database,
        events: EventBus,
        jobs: LeaseService,
        hub: DriverHub,
        policy: QueuePolicy,
        clock: Clock,
        idle_threshold: float,
        poll_interval: float,
    ) -> None:
        self._db = db
        self._events = events
        self._jobs = jobs
        self._hub = hub
        self._policy = policy
        self._clock = clock
        self._idle_threshold = idle_threshold
        self._poll_interval = poll_interval
        self._wakeups: dict[str, asyncio.Event] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}
        hub.on_change = self.wake

    def wake(self, qpu_id: str) -> None:
        """Asks a QPU's loop (or every loop for "*") to re-evaluate now."""
        targets = self._hub.qpus_with_sessions() if qpu_id == "*" else {qpu_id}
        for target in targets:
            if target not in self._hub.qpus_with_sessions():
                continue
            event = self._wakeups.setdefault(target, asyncio.Event())
            event.set()
            if target not in self._loops or self._loops[target].done():
                self._loops[target] = asyncio.create_task(self._qpu_loop(target, event))

    async def run(self) -> None:
        """Relays "dispatch" events to the per-QPU loops until cancelled."""
        async with self._events.subscribe() as queue:
            try:
                while True:
                    event = await queue.get()
                    if event.topic == "dispatch":
                        self.wake(str(event.payload))
            finally:
                loops = list(self._loops.values())
                for task in loops:
                    task.cancel()
                # Wait for them, so none is still pending when the event loop closes.
                await asyncio.gather(*loops, return_exceptions=True)

    async def _qpu_loop(self, qpu_id: str, event: asyncio.Event) -> None:
        next_at: datetime | None = None
        while qpu_id in self._hub.qpus_with_sessions():
            timeout = self._poll_interval
            if next_at is not None:
                timeout = min(timeout, max((next_at - self._clock.now()).total_seconds(), 0.0))
            try:
                await asyncio.wait_for(event.wait(), timeout=timeout)
            except TimeoutError:
                pass
            event.clear()
            try:
                next_at = await self._round(qpu_id)
            except Exception:  # keep the QPU's loop alive; the next wake-up retries
                logger.exception("[Dispatcher] round failed for qpu %s", qpu_id)
                next_at = None

    async def _round(self, qpu_id: str) -> datetime | None:
        """Leases jobs while drivers have capacity; returns when to look again."""
        while True:
            sessions = [s for s in self._hub.sessions_for(qpu_id) if s.free_capacity() > 0]
            if not sessions:
                return None
            session = max(sessions, key=lambda s: s.free_capacity())
            # Snapshot, decision and claim in one database hop (one thread switch per job).
            step = await self._db.run(
                self._decide_and_claim, qpu_id, session.driver_id, session.session_id
            )
            if step.claim is None:
                if step.retry:
                    continue  # someone else (another replica) took it; decide again
                return step.next_at
            claim = step.claim
            if session.closed:
                await self._db.run(
                    self._jobs.release, claim.job_id, claim.attempt, session.driver_id
                )
                continue
            session.leases.add((claim.job_id, claim.attempt))
            session.send(Assign(claim.job_id, claim.attempt, claim.payload))
            logger.debug(
                "[Dispatcher] job %s attempt %d -> driver %s",
                claim.job_id,
                claim.attempt,
                session.driver_id,
            )

    def _decide_and_claim(self, qpu_id: str, driver_id: str, session_id: str) -> _Step:
        """Runs on the database thread: what the policy picks, leased to that driver."""
        with self._jobs.dispatch_round():
            return self._decide_and_claim_in_round(qpu_id, driver_id, session_id)

    def _decide_and_claim_in_round(self, qpu_id: str, driver_id: str, session_id: str) -> _Step:
        snapshot, enabled = self._jobs.snapshot(qpu_id)
        if not enabled:
            return _Step(None, None, retry=False)
        decision = self._policy.decide(snapshot, self._idle_threshold)
        boundary = next_wakeup(snapshot)
        if isinstance(decision, Hold):
            until = min(decision.until, boundary) if boundary else decision.until
            return _Step(None, until, retry=False)
        if not isinstance(decision, Dispatch):
            return _Step(None, boundary, retry=False)
        claim = self._jobs.claim(decision.job_id, driver_id, session_id)
        return _Step(claim, None, retry=claim is None)


@dataclass(frozen=True)
class _Step:
    """One dispatch step: the lease taken, else when to look again (or retry at once)."""

    claim: Claim | None
    next_at: datetime | None
    retry: bool
