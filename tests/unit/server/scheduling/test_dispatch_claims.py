"""A dispatch round's claims: one policy decision per lease, and none wasted on a queue
the last snapshot already showed to be empty."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from qpi.server.domain.clock import FakeClock
from qpi.server.domain.models import Claim
from qpi.server.domain.policy import BookingFirstFifoPolicy, PendingJob, QueueSnapshot
from qpi.server.scheduling.dispatcher import Dispatcher

QPU = "qpu1"
T0 = datetime(2030, 1, 1, tzinfo=UTC)


class _Leases:
    """A queue whose snapshots show the oldest job, and say they saw every pending job
    when the store can tell (`knows_all`, like SQLite) and only one is left."""

    def __init__(self, jobs: list[str], knows_all: bool) -> None:
        self.pending = list(jobs)
        self.knows_all = knows_all
        self.snapshots = 0

    def snapshot(self, qpu_id: str) -> tuple[QueueSnapshot, bool]:
        self.snapshots += 1
        oldest = [PendingJob(j, "u1", QPU, T0) for j in self.pending[:1]]
        alone = self.knows_all and len(self.pending) == 1
        return QueueSnapshot(QPU, T0, oldest, complete=alone), True

    def claim(self, job_id: str, driver_id: str, session_id: str) -> Claim | None:
        self.pending.remove(job_id)
        return Claim(job_id, 1, {}, "u1")

    def dispatch_round(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def claim_batch(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def _dispatcher(leases: _Leases, hub: Any = None, db: Any = None) -> Dispatcher:
    """A dispatcher over `leases`; without `db` the claims run inline (no database
    thread), and it never needs events here."""
    jobs: Any = leases
    unused: Any = None
    return Dispatcher(
        db=db,
        events=unused,
        jobs=jobs,
        hub=hub or SimpleNamespace(on_change=None),
        policy=BookingFirstFifoPolicy(),
        clock=FakeClock(T0),
        idle_threshold=0.0,
        poll_interval=60.0,
    )


@pytest.mark.parametrize(
    ("jobs", "knows_all", "snapshots"),
    [
        (["a"], True, 1),  # the snapshot saw the only job: done after its claim
        (["a"], False, 2),  # the store cannot tell (PostgreSQL): one more decision
        (["a", "b"], True, 2),  # the second snapshot saw the last one
        (["a", "b", "c", "d", "e"], True, 4),  # capacity reached first
    ],
)
def test_a_round_stops_deciding_once_the_queue_is_known_to_be_empty(
    jobs: list[str], knows_all: bool, snapshots: int
) -> None:
    leases = _Leases(jobs, knows_all)
    batch = _dispatcher(leases)._claim_up_to(QPU, "d1", "s1", 4, 4)
    assert [c.job_id for c in batch.claims] == jobs[:4]
    assert leases.snapshots == snapshots
    assert batch.done is (len(jobs) <= 4)


class _Session:
    """A driver stream with room for `capacity` leases."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.driver_id, self.session_id, self.closed = "d1", "s1", False
        self.sent: list[Any] = []

    def free_capacity(self) -> int:
        return self.capacity - len(self.sent)

    def free_slots(self) -> int:
        return self.free_capacity()

    def assign(self, lease: Any, owner: str) -> None:
        pass

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def queued(self) -> list[Any]:
        return []


class _InlineDb:
    async def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


@pytest.mark.parametrize("knows_all", [True, False])
async def test_results_do_not_wake_a_loop_whose_queue_is_known_to_be_empty(
    knows_all: bool,
) -> None:
    leases = _Leases(["a"], knows_all)
    session = _Session(capacity=4)
    hub: Any = SimpleNamespace(
        on_change=None,
        sessions_for=lambda qpu_id: [session],
        qpus_with_sessions=lambda: {QPU},
    )
    dispatcher = _dispatcher(leases, hub, _InlineDb())
    assert hub.on_change == dispatcher.recheck  # driver capacity changes are rechecks
    await dispatcher._round(QPU)
    assert len(session.sent) == 1
    assert leases.pending == []
    dispatcher.recheck(QPU)  # the job's result arrives
    woken = QPU in dispatcher._loops
    try:
        # Only a store that can tell the queue is empty saves the round.
        assert woken is not knows_all
        leases.pending.append("b")
        dispatcher.wake(QPU)  # a "dispatch" event: a job was submitted
        assert QPU in dispatcher._loops
        assert dispatcher._wakeups[QPU].is_set()
    finally:
        for task in dispatcher._loops.values():
            task.cancel()
        await asyncio.gather(*dispatcher._loops.values(), return_exceptions=True)


class _LeasesAfterAnOutage(_Leases):
    """A queue whose first `failures` snapshots fail, as during a database outage."""

    def __init__(self, jobs: list[str], failures: int) -> None:
        super().__init__(jobs, knows_all=True)
        self.failures = failures

    def snapshot(self, qpu_id: str) -> tuple[QueueSnapshot, bool]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database went away")
        return super().snapshot(qpu_id)


async def test_a_failed_round_is_retried_without_waiting_for_a_wake_up_or_the_poll() -> None:
    leases = _LeasesAfterAnOutage(["a"], failures=3)
    session = _Session(capacity=4)
    hub: Any = SimpleNamespace(
        on_change=None,
        sessions_for=lambda qpu_id: [session],
        qpus_with_sessions=lambda: {QPU},
    )
    dispatcher = _dispatcher(leases, hub, _InlineDb())  # its safety poll: a minute
    dispatcher.wake(QPU)  # the one wake-up: the rounds it starts fail three times
    try:
        async with asyncio.timeout(30):  # the poll would take 60 s
            while not session.sent:
                await asyncio.sleep(0.01)
        assert leases.failures == 0
        assert leases.pending == []
    finally:
        for task in dispatcher._loops.values():
            task.cancel()
        await asyncio.gather(*dispatcher._loops.values(), return_exceptions=True)
