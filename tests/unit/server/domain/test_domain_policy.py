"""Queue policy: booking first, then FIFO, driven by a fake clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from qpi.server.domain.clock import FakeClock
from qpi.server.domain.policy import (
    Booking,
    BookingFirstFifoPolicy,
    Dispatch,
    Hold,
    Idle,
    PendingJob,
    QueuePolicy,
    QueueSnapshot,
    active_booking,
    next_wakeup,
)

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
QPU = "qpu_a"
THRESHOLD = 5.0
POLICY: QueuePolicy = BookingFirstFifoPolicy()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def job(job_id: str, user: str, created: float, qpu: str = QPU) -> PendingJob:
    return PendingJob(job_id, user, qpu, at(created))


def booking(booking_id: str, user: str, start: float, end: float, qpu: str | None = QPU) -> Booking:
    return Booking(booking_id, user, qpu, at(start), at(end))


def snap(
    clock: FakeClock,
    pending: list[PendingJob],
    bookings: list[Booking] = [],  # noqa: B006 - never mutated
    finished: dict[str, datetime] | None = None,
) -> QueueSnapshot:
    return QueueSnapshot(QPU, clock.now(), pending, bookings, finished or {})


def test_empty_queue_is_idle() -> None:
    clock = FakeClock(T0)
    assert POLICY.decide(snap(clock, []), THRESHOLD) == Idle()
    assert POLICY.decide(snap(clock, [], [booking("b", "bob", -10, 100)]), THRESHOLD) == Idle()


def test_fifo_oldest_first_with_id_tiebreak_in_any_order() -> None:
    clock = FakeClock(at(100))
    jobs = [job("j3", "u1", 3), job("j2", "u2", 1), job("j1", "u3", 1), job("j4", "u1", 2)]
    for _ in range(5):
        random.shuffle(jobs)
        assert POLICY.decide(snap(clock, jobs), THRESHOLD) == Dispatch("j1")


def test_jobs_for_other_qpus_are_ignored() -> None:
    clock = FakeClock(at(10))
    jobs = [job("other", "u1", 0, qpu="qpu_b"), job("mine", "u2", 5)]
    assert POLICY.decide(snap(clock, jobs), THRESHOLD) == Dispatch("mine")
    assert POLICY.decide(snap(clock, jobs[:1]), THRESHOLD) == Idle()


def test_booked_user_jumps_the_fifo() -> None:
    clock = FakeClock(at(10))
    jobs = [job("alice1", "alice", 0), job("bob2", "bob", 5), job("bob1", "bob", 4)]
    slot = booking("b", "bob", 0, 60)
    assert POLICY.decide(snap(clock, jobs, [slot]), THRESHOLD) == Dispatch("bob1")


def test_booking_applies_from_start_until_before_end() -> None:
    clock = FakeClock(at(-1))
    jobs = [job("alice1", "alice", -100), job("bob1", "bob", -50)]
    slot = booking("b", "bob", 0, 60)
    assert POLICY.decide(snap(clock, jobs, [slot]), THRESHOLD) == Dispatch("alice1")
    clock.set(at(0))
    assert POLICY.decide(snap(clock, jobs, [slot]), THRESHOLD) == Dispatch("bob1")
    clock.set(at(60))
    assert POLICY.decide(snap(clock, jobs, [slot]), THRESHOLD) == Dispatch("alice1")


def test_idle_booker_holds_then_yields_after_threshold() -> None:
    clock = FakeClock(at(20))
    slot = booking("b", "bob", 0, 60)
    finished = {"bob": at(18)}
    others = [job("alice1", "alice", 1)]
    decision = POLICY.decide(snap(clock, others, [slot], finished), THRESHOLD)
    assert decision == Hold(until=at(23), booker="bob")
    clock.advance(2.9)
    assert POLICY.decide(snap(clock, others, [slot], finished), THRESHOLD) == Hold(at(23), "bob")
    clock.set(at(23))
    assert POLICY.decide(snap(clock, others, [slot], finished), THRESHOLD) == Dispatch("alice1")


def test_booker_submitting_during_hold_gets_dispatched() -> None:
    clock = FakeClock(at(20))
    slot = booking("b", "bob", 0, 60)
    jobs = [job("alice1", "alice", 1), job("bob9", "bob", 19)]
    decision = POLICY.decide(snap(clock, jobs, [slot], {"bob": at(18)}), THRESHOLD)
    assert decision == Dispatch("bob9")


def test_no_hold_if_booker_never_ran_here_in_this_slot() -> None:
    clock = FakeClock(at(2))
    slot = booking("b", "bob", 0, 60)
    others = [job("alice1", "alice", 1)]
    assert POLICY.decide(snap(clock, others, [slot]), THRESHOLD) == Dispatch("alice1")
    # A finish just before the slot began does not count either.
    before = {"bob": at(-1)}
    assert POLICY.decide(snap(clock, others, [slot], before), THRESHOLD) == Dispatch("alice1")


def test_hold_never_outlasts_the_slot() -> None:
    clock = FakeClock(at(58))
    slot = booking("b", "bob", 0, 60)
    decision = POLICY.decide(snap(clock, [job("a", "alice", 0)], [slot], {"bob": at(57)}), 5.0)
    assert decision == Hold(until=at(60), booker="bob")


def test_zero_threshold_never_holds() -> None:
    clock = FakeClock(at(20))
    slot = booking("b", "bob", 0, 60)
    decision = POLICY.decide(snap(clock, [job("a", "alice", 0)], [slot], {"bob": at(20)}), 0.0)
    assert decision == Dispatch("a")


def test_booking_for_another_qpu_does_not_apply() -> None:
    clock = FakeClock(at(10))
    jobs = [job("alice1", "alice", 0), job("bob1", "bob", 5)]
    slot = booking("b", "bob", 0, 60, qpu="qpu_b")
    assert POLICY.decide(snap(clock, jobs, [slot], {"bob": at(9)}), THRESHOLD) == Dispatch("alice1")
    assert next_wakeup(snap(clock, jobs, [slot])) is None


def test_all_qpu_booking_applies() -> None:
    clock = FakeClock(at(10))
    jobs = [job("alice1", "alice", 0), job("bob1", "bob", 5)]
    slot = booking("b", "bob", 0, 60, qpu=None)
    assert POLICY.decide(snap(clock, jobs, [slot]), THRESHOLD) == Dispatch("bob1")


def test_qpu_specific_booking_wins_over_all_qpu_booking() -> None:
    clock = FakeClock(at(10))
    jobs = [job("alice1", "alice", 0), job("bob1", "bob", 5), job("carol1", "carol", 6)]
    everywhere = booking("all", "bob", 5, 60, qpu=None)
    here = booking("here", "carol", 0, 60)
    assert POLICY.decide(snap(clock, jobs, [everywhere, here]), THRESHOLD) == Dispatch("carol1")
    assert active_booking([everywhere, here], QPU, clock.now()) == here
    assert active_booking([everywhere, here], "qpu_b", clock.now()) == everywhere


def test_most_recent_start_wins_among_equals() -> None:
    older = booking("old", "bob", 0, 60)
    newer = booking("new", "carol", 5, 60)
    assert active_booking([newer, older], QPU, at(10)) == newer
    assert active_booking([newer, older], QPU, at(60)) is None


def test_slot_boundary_wakeups() -> None:
    clock = FakeClock(at(-30))
    slots = [
        booking("b1", "bob", 0, 60),
        booking("b2", "carol", 60, 120, qpu=None),
        booking("elsewhere", "dave", -10, 10, qpu="qpu_b"),
    ]
    wake = [next_wakeup(snap(clock, [], slots))]
    for boundary in (0, 60, 120):
        clock.set(at(boundary))
        wake.append(next_wakeup(snap(clock, [], slots)))
    assert wake == [at(0), at(60), at(120), None]
    clock.set(at(30))
    assert next_wakeup(snap(clock, [], slots)) == at(60)


def test_wakeup_without_bookings() -> None:
    assert next_wakeup(QueueSnapshot(QPU, T0)) is None


def test_dispatch_sequence_over_a_slot() -> None:
    """Bob's slot from t=0 to t=60: his jobs go first, the QPU is held while he is
    active, and everyone else's jobs run once he is idle or the slot ends."""
    clock = FakeClock(at(0))
    slot = [booking("b", "bob", 0, 60)]
    pending = [job("a1", "alice", -5), job("b1", "bob", -1)]
    finished: dict[str, datetime] = {}
    order: list[str] = []

    def step() -> object:
        decision = POLICY.decide(snap(clock, pending, slot, finished), THRESHOLD)
        if isinstance(decision, Dispatch):
            done = next(j for j in pending if j.id == decision.job_id)
            pending.remove(done)
            order.append(done.id)
            clock.advance(2)
            finished[done.user_id] = clock.now()
        return decision

    assert step() == Dispatch("b1")  # finishes at t=2
    assert step() == Hold(at(7), "bob")
    clock.advance(1)
    pending.append(job("b2", "bob", 3))
    assert step() == Dispatch("b2")  # finishes at t=5
    clock.set(at(10))
    assert step() == Dispatch("a1")
    assert step() == Idle()
    assert order == ["b1", "b2", "a1"]


_users = st.sampled_from(["alice", "bob", "carol"])
_jobs = st.lists(
    st.builds(
        job,
        st.text("abcdefgh", min_size=1, max_size=4),
        _users,
        st.integers(-100, 100),
        st.sampled_from([QPU, "qpu_b"]),
    ),
    max_size=8,
    unique_by=lambda j: j.id,
)
_bookings = st.lists(
    st.builds(
        lambda i, u, s, n, q: booking(f"b{i}", u, s, s + n, q),
        st.integers(0, 99),
        _users,
        st.integers(-100, 100),
        st.integers(1, 100),
        st.sampled_from([QPU, "qpu_b", None]),
    ),
    max_size=4,
    unique_by=lambda b: b.id,
)


@settings(max_examples=150, deadline=None)
@given(
    _jobs,
    _bookings,
    st.dictionaries(_users, st.integers(-100, 100).map(at)),
    st.integers(-100, 100),
    st.randoms(use_true_random=False),
)
def test_decisions_are_sound_and_order_independent(
    pending: list[PendingJob],
    bookings: list[Booking],
    finished: dict[str, datetime],
    now: int,
    rnd: random.Random,
) -> None:
    snapshot = QueueSnapshot(QPU, at(now), pending, bookings, finished)
    decision = POLICY.decide(snapshot, THRESHOLD)
    shuffled = list(pending)
    rnd.shuffle(shuffled)
    again = QueueSnapshot(QPU, at(now), shuffled, list(reversed(bookings)), finished)
    assert POLICY.decide(again, THRESHOLD) == decision
    mine = [j for j in pending if j.qpu_id == QPU]
    if not mine:
        assert decision == Idle()
    elif isinstance(decision, Dispatch):
        assert decision.job_id in {j.id for j in mine}
    else:
        assert isinstance(decision, Hold)
        active = active_booking(bookings, QPU, at(now))
        assert active is not None
        assert decision.booker == active.user_id
        assert at(now) < decision.until <= active.end
        assert all(j.user_id != active.user_id for j in mine)
    wake = next_wakeup(snapshot)
    assert wake is None or wake > at(now)
