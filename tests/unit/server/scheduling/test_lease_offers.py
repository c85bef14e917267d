"""Free driver slots offered to submissions: only when the next round would start the job
at once, held back from rounds until the submission settles, and never lost."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from qpi.server.domain.clock import FakeClock
from qpi.server.domain.models import Claim, Job
from qpi.server.domain.policy import Booking, BookingFirstFifoPolicy, QueueSnapshot
from qpi.server.drivers.session import Assign, DriverSession
from qpi.server.scheduling.dispatcher import Dispatcher
from tests.support.domain_jobs import make_job

QPU = "qpu1"
T0 = datetime(2030, 1, 1, tzinfo=UTC)
TIMEOUT = timedelta(minutes=10)


class _EmptyQueue:
    """A QPU with nothing pending (and, optionally, a booking ahead)."""

    def __init__(self, clock: FakeClock, bookings: list[Booking] | None = None) -> None:
        self.clock = clock
        self.bookings = bookings or []
        self.released: list[tuple[str, int, str]] = []

    def snapshot(self, qpu_id: str) -> tuple[QueueSnapshot, bool]:
        return QueueSnapshot(QPU, self.clock.now(), [], self.bookings, complete=True), True

    def claim(self, job_id: str, driver_id: str, session_id: str) -> Claim | None:
        raise AssertionError("nothing is pending")

    def release(self, job_id: str, attempt: int, driver_id: str) -> bool:
        self.released.append((job_id, attempt, driver_id))
        return True

    def lease_expiry(self) -> datetime:
        return self.clock.now() + TIMEOUT

    def dispatch_round(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def claim_batch(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class _InlineDb:
    async def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


def _setup(
    *, capacity: int = 1, alone: bool = True, bookings: list[Booking] | None = None
) -> tuple[Dispatcher, DriverSession, _EmptyQueue, FakeClock]:
    clock = FakeClock(T0)
    queue = _EmptyQueue(clock, bookings)
    session = DriverSession("d1", QPU, "driver", "mock", "grpc", capacity=capacity)
    hub: Any = SimpleNamespace(
        on_change=None,
        sessions_for=lambda qpu_id: [session] if qpu_id == QPU else [],
        qpus_with_sessions=lambda: {QPU},
    )
    jobs: Any = queue
    unused: Any = None
    dispatcher = Dispatcher(
        db=_InlineDb(),  # type: ignore[arg-type]
        events=unused,
        jobs=jobs,
        hub=hub,
        policy=BookingFirstFifoPolicy(),
        clock=clock,
        idle_threshold=0.0,
        poll_interval=60.0,
        alone=lambda: alone,
    )
    return dispatcher, session, queue, clock


def _job(offer_driver: str | None, state: str = "running", name: str = "q1") -> Job:
    running = state == "running"
    return make_job(
        qpu_id=QPU,
        payload_json='{"circuits": []}',
        state=state,
        attempt=1 if running else 0,
        lease_driver_id=offer_driver,
        estimated_seconds=1.0,
        created=T0,
        updated=T0,
        started_at=T0 if running else None,
        qpu_name=name,
    )


def _sent(session: DriverSession) -> list[Any]:
    out = []
    while not session.outbox.empty():
        out.append(session.outbox.get_nowait())
    return out


async def test_no_offer_before_a_round_has_seen_the_queue_empty() -> None:
    dispatcher, _, _, _ = _setup()
    assert dispatcher.offer(QPU) is None


async def test_an_offer_holds_the_slot_until_the_job_stored_leased_reaches_the_driver() -> None:
    dispatcher, session, _, clock = _setup()
    await dispatcher._round(QPU)
    offer = dispatcher.offer(QPU)
    assert offer is not None
    assert (offer.qpu_id, offer.driver_id, offer.session_id) == (QPU, "d1", session.session_id)
    assert offer.expires == clock.now() + TIMEOUT
    # The slot is held back: no second offer, and a round finds no capacity.
    assert session.free_slots() == 0
    assert session.free_capacity() == 0
    assert dispatcher.offer(QPU) is None
    dispatcher.settle(offer, _job("d1"))
    assert session.reserved == 0
    assert session.leases == {("j1", 1)}
    (assign,) = _sent(session)
    assert assign == Assign("j1", 1, {"circuits": []})


async def test_an_unused_offer_gives_the_slot_back() -> None:
    dispatcher, session, _, _ = _setup()
    await dispatcher._round(QPU)
    offer = dispatcher.offer(QPU)
    assert offer is not None
    dispatcher.settle(offer, _job(None, state="pending"))  # stored queued instead
    assert session.reserved == 0
    assert session.free_slots() == 1
    assert _sent(session) == []
    # A refused submission (None) gives it back too.
    again = dispatcher.offer(QPU)
    assert again is not None
    dispatcher.settle(again, None)
    assert session.reserved == 0
    assert dispatcher.offer(QPU) is not None


async def test_a_job_leased_to_a_driver_that_left_meanwhile_is_requeued() -> None:
    dispatcher, session, queue, _ = _setup()
    await dispatcher._round(QPU)
    offer = dispatcher.offer(QPU)
    assert offer is not None
    session.close()
    dispatcher.settle(offer, _job("d1"))
    await asyncio.gather(*dispatcher._releasing)
    assert queue.released == [("j1", 1, "d1")]
    assert session.leases == set()


async def test_no_offer_while_jobs_may_be_queued_or_a_round_runs() -> None:
    dispatcher, _, _, _ = _setup()
    await dispatcher._round(QPU)
    dispatcher._busy.add(QPU)  # a round is between its decision and its leases
    assert dispatcher.offer(QPU) is None
    dispatcher._busy.discard(QPU)
    dispatcher.wake(QPU)  # a "dispatch" event: something was queued
    try:
        assert dispatcher.offer(QPU) is None
    finally:
        for task in dispatcher._loops.values():
            task.cancel()
        await asyncio.gather(*dispatcher._loops.values(), return_exceptions=True)


async def test_no_offer_beside_other_replicas() -> None:
    dispatcher, _, _, _ = _setup(alone=False)
    await dispatcher._round(QPU)
    assert dispatcher.offer(QPU) is None


async def test_no_offer_once_a_booking_may_give_someone_priority() -> None:
    start = T0 + timedelta(minutes=5)
    booking = Booking("b1", "u2", QPU, start, start + timedelta(minutes=30))
    dispatcher, _, _, clock = _setup(bookings=[booking])
    await dispatcher._round(QPU)
    assert dispatcher.offer(QPU) is not None  # the booking has not begun
    dispatcher._offered.clear()
    clock.advance(301)
    assert dispatcher.offer(QPU) is None


async def test_offers_find_a_qpu_by_the_name_its_jobs_were_routed_by() -> None:
    dispatcher, _, _, _ = _setup()
    await dispatcher._round(QPU)
    assert dispatcher.offer("q1") is None  # not known yet
    dispatcher.settle(None, _job(None, state="pending", name="q1"))
    offer = dispatcher.offer("q1")
    assert offer is not None
    assert offer.qpu_id == QPU
