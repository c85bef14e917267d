"""Queue ordering as a replaceable policy.

The dispatcher of one QPU builds a :class:`QueueSnapshot` and asks a
:class:`QueuePolicy` what to do next. The default, :class:`BookingFirstFifoPolicy`,
gives the holder of the active booking priority and otherwise serves jobs first in,
first out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class PendingJob:
    """A job waiting in the queue."""

    id: str
    user_id: str
    qpu_id: str
    created: datetime


@dataclass(frozen=True)
class Booking:
    """A reserved time slot ``[start, end)``; ``qpu_id=None`` reserves every QPU."""

    id: str
    user_id: str
    qpu_id: str | None
    start: datetime
    end: datetime

    def applies_to(self, qpu_id: str) -> bool:
        """Tell whether this booking reserves ``qpu_id``."""
        return self.qpu_id is None or self.qpu_id == qpu_id

    def covers(self, now: datetime) -> bool:
        """Tell whether ``now`` lies inside the slot (start inclusive, end exclusive)."""
        return self.start <= now < self.end


@dataclass(frozen=True)
class QueueSnapshot:
    """Everything the policy needs to decide for one QPU at one instant.

    Attributes:
        qpu_id: The QPU being dispatched.
        now: Current time.
        pending: Pending jobs, in any order (jobs for other QPUs are ignored).
        bookings: Bookings, in any order (irrelevant ones are ignored).
        last_finished_by_user: Latest finish time of each user's completed or failed
            job on this QPU.
        complete: True when ``pending`` holds every pending job of the QPU (the store
            saw no other), so once they are dispatched the queue is empty; False when
            the store does not know (it usually reads only the candidates).
    """

    qpu_id: str
    now: datetime
    pending: Sequence[PendingJob] = ()
    bookings: Sequence[Booking] = ()
    last_finished_by_user: Mapping[str, datetime] = field(default_factory=dict)
    complete: bool = False


@dataclass(frozen=True)
class Dispatch:
    """Send this job to the QPU now."""

    job_id: str


@dataclass(frozen=True)
class Hold:
    """Keep the QPU free for ``booker`` until ``until`` (or until something changes)."""

    until: datetime
    booker: str


@dataclass(frozen=True)
class Idle:
    """Nothing to run."""


Decision = Dispatch | Hold | Idle


class QueuePolicy(Protocol):
    """Decides what a QPU runs next."""

    def decide(self, snapshot: QueueSnapshot, idle_threshold_seconds: float) -> Decision:
        """Return the next action for ``snapshot.qpu_id``.

        Args:
            snapshot: The queue state.
            idle_threshold_seconds: How long a booked QPU stays reserved for its booker
                after their last finished job.
        """
        ...


def active_booking(bookings: Iterable[Booking], qpu_id: str, now: datetime) -> Booking | None:
    """Find the booking that governs ``qpu_id`` at ``now``.

    A booking for this QPU wins over an all-QPU booking; among equals the most recent
    start wins (then the highest id, for determinism).

    Returns:
        The governing booking, or ``None``.
    """
    candidates = [b for b in bookings if b.applies_to(qpu_id) and b.covers(now)]
    if not candidates:
        return None
    return max(candidates, key=lambda b: (b.qpu_id is not None, b.start, b.id))


def _oldest(jobs: Iterable[PendingJob]) -> PendingJob | None:
    return min(jobs, key=lambda j: (j.created, j.id), default=None)


class BookingFirstFifoPolicy:
    """Booker first, then FIFO.

    1. If a booking is active on this QPU, the booker's oldest pending job runs.
    2. If the booker has nothing pending but finished a job on this QPU within the
       current slot less than the idle threshold ago, the QPU is held for them until
       that finish plus the threshold (at most until the slot ends).
    3. Otherwise the oldest pending job of anyone runs (ties broken by id).
    """

    def decide(self, snapshot: QueueSnapshot, idle_threshold_seconds: float) -> Decision:
        """Return the next action for ``snapshot.qpu_id`` (see the class docstring)."""
        queue = [j for j in snapshot.pending if j.qpu_id == snapshot.qpu_id]
        if not queue:
            return Idle()
        booking = active_booking(snapshot.bookings, snapshot.qpu_id, snapshot.now)
        if booking is not None:
            mine = _oldest(j for j in queue if j.user_id == booking.user_id)
            if mine is not None:
                return Dispatch(mine.id)
            finished = snapshot.last_finished_by_user.get(booking.user_id)
            if finished is not None and finished >= booking.start and idle_threshold_seconds > 0:
                until = min(finished + timedelta(seconds=idle_threshold_seconds), booking.end)
                if snapshot.now < until:
                    return Hold(until=until, booker=booking.user_id)
        oldest = _oldest(queue)
        assert oldest is not None  # queue is not empty
        return Dispatch(oldest.id)


def next_wakeup(snapshot: QueueSnapshot) -> datetime | None:
    """Earliest future slot boundary relevant to ``snapshot.qpu_id``.

    The dispatcher should re-evaluate at that instant, because the booker (and so the
    queue order) may change there.

    Returns:
        The earliest start or end of a booking for this QPU (or all QPUs) strictly after
        ``snapshot.now``, or ``None`` if there is none.
    """
    boundaries = [
        t
        for b in snapshot.bookings
        if b.applies_to(snapshot.qpu_id)
        for t in (b.start, b.end)
        if t > snapshot.now
    ]
    return min(boundaries, default=None)
