"""Push dispatch: per-QPU loops woken by events, never waiting on a poll.

A QPU's loop wakes on submit, result, cancel, release, driver connect and booking
changes (and at slot boundaries); it asks the queue policy what to run and leases jobs
to drivers only while they have free capacity, so booking priority decides what runs
next. A slow safety sweep (`--dispatch-poll-interval`) catches anything missed.

A loop whose last round saw no pending job at all skips the wake-ups that cannot give it
one (a result, a driver's capacity): only "dispatch" events announce new work.

Such a QPU also offers its drivers' free execution slots to submissions (:meth:`offer`):
a job submitted while nothing is queued, no booking can give anyone priority and no round
is running is stored already leased to the offered driver, which is what the next round
would have decided, without the round. The store checks in the submit's transaction that
nothing is pending on the QPU and that the owner's balance covers the job; the offered
slot is held back from rounds until the submission settles. Only a replica alone offers:
with others, a job they queued may not have woken this one yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from qpi.server.domain.clock import Clock
from qpi.server.domain.models import Claim, Job, LeaseOffer
from qpi.server.domain.policy import (
    Dispatch,
    Hold,
    QueuePolicy,
    QueueSnapshot,
    active_booking,
    next_wakeup,
)
from qpi.server.drivers.hub import DriverHub
from qpi.server.drivers.session import Assign, DriverSession, Revoke
from qpi.server.services.database import Database
from qpi.server.services.events import BOOKINGS_TOPIC, FREED_TOPIC, EventBus
from qpi.server.services.lease_service import LeaseService

logger = logging.getLogger(__name__)

ROUND_RETRY_FIRST = 0.05
"""Seconds before a failed round (typically a database outage) is retried, doubling up to
`ROUND_RETRY_MAX`: the wake-ups sent while it failed are spent, and the safety poll may
be long, so without a retry the QPU's queue would wait for the next event."""
ROUND_RETRY_MAX = 2.0


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
        alone: Callable[[], bool] = lambda: True,
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
        # Per QPU, until when no booking can give a user priority (None: until bookings
        # change), so rounds skip the prefetch check.
        self._calm_until: dict[str, datetime | None] = {}
        # QPUs whose last round saw no pending job, and no "dispatch" event came since.
        self._empty: set[str] = set()
        self._busy: set[str] = set()  # QPUs whose round is running
        self._alone = alone  # whether no other replica may queue jobs unseen here
        self._offered: dict[int, DriverSession] = {}  # by id() of the offers out
        self._qpu_ids: dict[str, str] = {}  # QPU name -> id, as submissions routed them
        self._releasing: set[asyncio.Task[bool]] = set()
        hub.on_change = self.recheck

    def wake(self, qpu_id: str) -> None:
        """Asks a QPU's loop (or every loop for "*") to re-evaluate now: jobs may be
        pending."""
        if qpu_id == "*":
            self._empty.clear()
        else:
            self._empty.discard(qpu_id)
        self._wake(qpu_id)

    def recheck(self, qpu_id: str) -> None:
        """:meth:`wake` for changes that leave the queue as it was (a result, a driver's
        capacity or connection): skipped while the QPU's queue is known to be empty."""
        if qpu_id not in self._empty:
            self._wake(qpu_id)

    def _wake(self, qpu_id: str) -> None:
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
        topics = (BOOKINGS_TOPIC, "dispatch", FREED_TOPIC)
        async with self._events.subscribe(topics=topics) as queue:
            try:
                while True:
                    event = await queue.get()
                    if event.topic == BOOKINGS_TOPIC:
                        # Before the "dispatch" event that follows it: the next round
                        # judges prefetched jobs against the new bookings.
                        if event.payload == "*":
                            self._calm_until.clear()
                        else:
                            self._calm_until.pop(str(event.payload), None)
                    elif event.topic == "dispatch":
                        self.wake(str(event.payload))
                    elif event.topic == FREED_TOPIC:
                        self.recheck(str(event.payload))
            finally:
                loops = list(self._loops.values())
                for task in loops:
                    task.cancel()
                # Wait for them, so none is still pending when the event loop closes.
                await asyncio.gather(*loops, return_exceptions=True)

    async def _qpu_loop(self, qpu_id: str, event: asyncio.Event) -> None:
        try:
            await self._qpu_rounds(qpu_id, event)
        finally:
            self._empty.discard(qpu_id)

    async def _qpu_rounds(self, qpu_id: str, event: asyncio.Event) -> None:
        next_at: datetime | None = None
        retry_in = 0.0  # after a failed round: no wake-up may come for what it missed
        while qpu_id in self._hub.qpus_with_sessions():
            timeout = self._poll_interval
            if next_at is not None:
                timeout = min(timeout, max((next_at - self._clock.now()).total_seconds(), 0.0))
            if retry_in:
                timeout = min(timeout, retry_in)
            try:
                await asyncio.wait_for(event.wait(), timeout=timeout)
            except TimeoutError:
                pass
            event.clear()
            try:
                next_at = await self._round(qpu_id)
                retry_in = 0.0
            except Exception:  # keep the QPU's loop alive and retry, backing off
                logger.exception("[Dispatcher] round failed for qpu %s", qpu_id)
                self._empty.discard(qpu_id)
                next_at = None
                retry_in = min(max(retry_in * 2, ROUND_RETRY_FIRST), ROUND_RETRY_MAX)

    # -- slots offered to submissions -----------------------------------------------------

    def offer(self, qpu: str) -> LeaseOffer | None:
        """A free execution slot for a job submitted to `qpu` (an id or a name), held until
        :meth:`settle`; None unless the next round would start that job at once: this
        replica is alone, the QPU's queue was empty at its last round and no round runs,
        no booking can give anyone priority now, and one of its drivers has a free slot
        (not a prefetch slot: a prefetched job could have to wait)."""
        qpu_id = qpu if qpu in self._hub.qpus_with_sessions() else self._qpu_ids.get(qpu)
        if qpu_id is None or qpu_id not in self._empty or qpu_id in self._busy:
            return None
        if qpu_id not in self._calm_until or not self._alone():
            return None
        until = self._calm_until[qpu_id]
        if until is not None and self._clock.now() >= until:
            return None
        sessions = [s for s in self._hub.sessions_for(qpu_id) if s.free_slots() > 0]
        if not sessions:
            return None
        session = max(sessions, key=lambda s: s.free_slots())
        session.reserved += 1
        offer = LeaseOffer(qpu_id, session.driver_id, session.session_id, self._jobs.lease_expiry())
        self._offered[id(offer)] = session
        return offer

    def settle(self, offer: LeaseOffer | None, job: Job | None) -> None:
        """Hands a job stored leased on `offer` to its driver; otherwise gives the slot back
        (and wakes the QPU's loop: a round may have found it held)."""
        if job is not None and job.qpu_name:
            if len(self._qpu_ids) >= MAX_KNOWN_NAMES:
                self._qpu_ids.clear()
            self._qpu_ids[job.qpu_name] = job.qpu_id
        if offer is None:
            return
        session = self._offered.pop(id(offer))
        session.reserved -= 1
        if job is None or job.state != "running" or job.lease_driver_id != offer.driver_id:
            self.recheck(offer.qpu_id)
            return
        lease = (job.id, job.attempt)
        if session.closed or session.stopping:
            # Its leases may have been requeued already: return this one as well.
            self._release_later(job, offer.driver_id)
            return
        session.assign(lease, job.user_id)
        session.send(Assign(job.id, job.attempt, json.loads(job.payload_json)))
        logger.debug("[Dispatcher] job %s stored leased -> driver %s", job.id, offer.driver_id)

    def _release_later(self, job: Job, driver_id: str) -> None:
        task = asyncio.create_task(self._db.run(self._jobs.release, job.id, job.attempt, driver_id))
        self._releasing.add(task)
        task.add_done_callback(self._released)

    def _released(self, task: asyncio.Task[bool]) -> None:
        self._releasing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The lease then runs out unrenewed and recovery requeues the job.
            logger.warning("[Dispatcher] could not requeue a lease: %s", task.exception())

    # -- rounds -------------------------------------------------------------------------

    async def _round(self, qpu_id: str) -> datetime | None:
        """Leases jobs while drivers have capacity; returns when to look again."""
        self._busy.add(qpu_id)
        try:
            return await self._leasing_round(qpu_id)
        finally:
            self._busy.discard(qpu_id)

    async def _leasing_round(self, qpu_id: str) -> datetime | None:
        boundary: datetime | None = None
        checked = False
        while True:
            sessions = [s for s in self._hub.sessions_for(qpu_id) if s.free_capacity() > 0]
            if not sessions:
                return await self._check_queued(qpu_id, boundary, checked)
            # Free execution slots first, prefetch slots after.
            session = max(sessions, key=lambda s: (s.free_slots(), s.free_capacity()))
            # Up to the driver's free capacity in one database hop: each lease is still its
            # own policy decision and claim, but they share one thread switch.
            batch = await self._db.run(
                self._claim_up_to,
                qpu_id,
                session.driver_id,
                session.session_id,
                session.free_capacity(),
                session.free_slots(),
            )
            for claim in batch.claims:
                if session.closed:
                    await self._db.run(
                        self._jobs.release, claim.job_id, claim.attempt, session.driver_id
                    )
                    continue
                session.assign((claim.job_id, claim.attempt), claim.user_id)
                session.send(Assign(claim.job_id, claim.attempt, claim.payload))
                logger.debug(
                    "[Dispatcher] job %s attempt %d -> driver %s",
                    claim.job_id,
                    claim.attempt,
                    session.driver_id,
                )
            if batch.empty:
                self._empty.add(qpu_id)
            else:
                self._empty.discard(qpu_id)
            if batch.verdict is not None:
                checked, boundary = True, batch.verdict.boundary
                await self._take_back(qpu_id, batch.verdict)
            if batch.done:
                return batch.next_at

    # -- prefetched leases and bookings ---------------------------------------------------
    # A driver that announced a prefetch holds leases it has not started yet, queued behind
    # the job it runs, and runs them in assignment order (so FIFO holds). Bookings hold
    # because (1) while a booking is active only the booker's jobs are prefetched, and
    # (2) when a booking becomes active (at its start, or when it is created), queued jobs
    # of other users are taken back: released to the queue and cancelled on their driver.

    async def _check_queued(
        self, qpu_id: str, boundary: datetime | None, checked: bool
    ) -> datetime | None:
        """Every driver is full: takes back queued jobs a booking must not wait behind;
        returns when to look again (the next booking boundary while jobs are queued)."""
        if not any(s.queued() for s in self._hub.sessions_for(qpu_id)):
            return None
        if qpu_id in self._calm_until:
            until = self._calm_until[qpu_id]
            if until is None or self._clock.now() < until:
                return until  # no booking is active before then
        if not checked:
            verdict = await self._db.run(self._verdict, qpu_id)
            await self._take_back(qpu_id, verdict)
            boundary = verdict.boundary
        return boundary

    def _verdict(self, qpu_id: str) -> _Verdict:
        """Runs on the database thread: whose jobs may wait queued on drivers now."""
        snapshot, _ = self._jobs.snapshot(qpu_id)
        return _judge(snapshot)

    async def _take_back(self, qpu_id: str, verdict: _Verdict) -> None:
        """Returns prefetched, not yet started jobs of anyone but the active booker to the
        queue, and cancels them on their drivers."""
        if verdict.booker is None:
            # No booking is active until the next boundary (or a booking change).
            self._calm_until[qpu_id] = verdict.boundary
            return
        self._calm_until.pop(qpu_id, None)
        for session in self._hub.sessions_for(qpu_id):
            for lease, owner in session.queued():
                if owner == verdict.booker:
                    continue
                job_id, attempt = lease
                session.drop_lease(lease)
                await self._db.run(self._jobs.release, job_id, attempt, session.driver_id)
                session.send(Revoke(job_id, attempt, "a booking of another user started"))
                logger.info(
                    "[Dispatcher] took prefetched job %s back from driver %s (booking of %s)",
                    job_id,
                    session.driver_id,
                    verdict.booker,
                )

    def _claim_up_to(
        self, qpu_id: str, driver_id: str, session_id: str, count: int, slots: int
    ) -> _Batch:
        """Runs on the database thread: up to `count` leases for one driver, each decided
        and claimed as in :meth:`_decide_and_claim`; those past its `slots` free execution
        slots are prefetches. `done` once the policy has nothing more to dispatch now."""
        with self._jobs.claim_batch():
            return self._claims(qpu_id, driver_id, session_id, count, slots)

    def _claims(
        self, qpu_id: str, driver_id: str, session_id: str, count: int, slots: int
    ) -> _Batch:
        claims: list[Claim] = []
        verdict: _Verdict | None = None
        retries = 0
        while len(claims) < count:
            step = self._decide_and_claim(
                qpu_id, driver_id, session_id, prefetch=len(claims) >= slots
            )
            verdict = verdict or step.verdict
            if step.claim is not None:
                claims.append(step.claim)
                if step.drained:  # that was the last pending job: no need to look again
                    return _Batch(claims, step.next_at, done=True, verdict=verdict, empty=True)
            elif step.retry and retries < count:
                retries += 1  # someone else (another replica) took it; decide again
            elif step.retry:
                return _Batch(claims, None, done=False, verdict=verdict)  # look again
            else:
                empty = step.drained  # nothing was pending at all
                return _Batch(claims, step.next_at, done=True, verdict=verdict, empty=empty)
        return _Batch(claims, None, done=False, verdict=verdict)

    def _decide_and_claim(
        self, qpu_id: str, driver_id: str, session_id: str, prefetch: bool = False
    ) -> _Step:
        """Runs on the database thread: what the policy picks, leased to that driver."""
        with self._jobs.dispatch_round():
            return self._decide_and_claim_in_round(qpu_id, driver_id, session_id, prefetch)

    def _decide_and_claim_in_round(
        self, qpu_id: str, driver_id: str, session_id: str, prefetch: bool
    ) -> _Step:
        snapshot, enabled = self._jobs.snapshot(qpu_id)
        if not enabled:
            return _Step(None, None, retry=False)
        decision = self._policy.decide(snapshot, self._idle_threshold)
        verdict = _judge(snapshot)
        boundary = next_wakeup(snapshot)
        if snapshot.complete and not snapshot.pending:
            return _Step(None, boundary, retry=False, verdict=verdict, drained=True)
        if isinstance(decision, Hold):
            until = min(decision.until, boundary) if boundary else decision.until
            return _Step(None, until, retry=False, verdict=verdict)
        if not isinstance(decision, Dispatch):
            return _Step(None, boundary, retry=False, verdict=verdict)
        if prefetch and verdict.booker is not None and verdict.booker != _owner(snapshot, decision):
            return _Step(None, boundary, retry=False, verdict=verdict)  # see _check_queued
        claim = self._jobs.claim(decision.job_id, driver_id, session_id)
        # The snapshot saw every pending job and this was the only one: after its claim
        # the queue is empty, as a second decision would find (one snapshot saved).
        drained = snapshot.complete and {j.id for j in snapshot.pending} == {decision.job_id}
        if claim is not None and drained:
            return _Step(claim, boundary, retry=False, verdict=verdict, drained=True)
        return _Step(claim, None, retry=claim is None, verdict=verdict)


MAX_KNOWN_NAMES = 10_000
"""QPU names remembered for offers (forgotten all at once beyond: they are relearned)."""


def _judge(snapshot: QueueSnapshot) -> _Verdict:
    """The active booker of the snapshot's QPU, if any, and the next booking boundary."""
    booking = active_booking(snapshot.bookings, snapshot.qpu_id, snapshot.now)
    return _Verdict(booking.user_id if booking else None, next_wakeup(snapshot))


def _owner(snapshot: QueueSnapshot, decision: Dispatch) -> str | None:
    return next((j.user_id for j in snapshot.pending if j.id == decision.job_id), None)


@dataclass(frozen=True)
class _Verdict:
    """The user whose jobs alone may wait queued on drivers (the active booker), or None
    for anyone's; and the next booking boundary."""

    booker: str | None
    boundary: datetime | None


@dataclass(frozen=True)
class _Step:
    """One dispatch step: the lease taken, else when to look again (or retry at once)."""

    claim: Claim | None
    next_at: datetime | None
    retry: bool
    verdict: _Verdict | None = None
    drained: bool = False
    """No job is pending after this step (the claim took the last one, or there was
    none)."""


@dataclass(frozen=True)
class _Batch:
    """The leases one database hop took, and whether (and when) to look again."""

    claims: list[Claim]
    next_at: datetime | None
    done: bool
    verdict: _Verdict | None = None
    empty: bool = False
    """No job was pending at its end (a result or free capacity cannot change that)."""
