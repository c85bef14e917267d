"""Booking validation (spec §6.2, per-QPU bookings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qpi.server.domain.bookings import (
    BookingPolicy,
    check_policy,
    find_overlap,
    seconds_within,
    slots_conflict,
    validate_slot,
    week_start,
    weeks_touched,
)
from qpi.server.domain.clock import FakeClock
from qpi.server.domain.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
)
from qpi.server.domain.policy import Booking

T0 = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
CLOCK = FakeClock(T0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def slot(booking_id: str, start: float, end: float, qpu: str | None = "q1") -> Booking:
    return Booking(booking_id, "owner", qpu, at(start), at(end))


EXISTING = [slot("b1", 60, 120), slot("all", 300, 360, qpu=None)]


def create(start: float, end: float, *, admin: bool = False, qpu: str | None = "q1") -> None:
    validate_slot(
        at(start),
        at(end),
        CLOCK.now(),
        is_admin=admin,
        existing=EXISTING,
        action="create",
        qpu_id=qpu,
    )


def test_valid_create() -> None:
    create(0, 60)
    create(120, 180)  # touching both sides is allowed
    create(60, 120, qpu="q2")  # another QPU


@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize(("start", "end"), [(10, 10), (20, 10)])
def test_invalid_range(admin: bool, start: float, end: float) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        create(start, end, admin=admin)
    assert info.value.reason == "BOOKING_INVALID_RANGE"
    assert info.value.message == "start_time must be strictly before end_time."


def test_create_in_past() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        create(-1, 30)
    assert info.value.reason == "BOOKING_IN_PAST"
    assert info.value.message == "Cannot book a slot in the past."
    create(-1, 30, admin=True)
    create(0, 30)  # starting right now is fine


@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize(
    ("start", "end", "qpu"),
    [
        (30, 61, "q1"),
        (119, 150, "q1"),
        (70, 80, "q1"),
        (0, 500, "q1"),
        (90, 100, None),
        (330, 340, "q2"),
        (200, 301, "q9"),
    ],
)
def test_overlap(admin: bool, start: float, end: float, qpu: str | None) -> None:
    with pytest.raises(FailedPreconditionError) as info:
        create(start, end, admin=admin, qpu=qpu)
    assert info.value.reason == "BOOKING_OVERLAP"
    assert info.value.message == "The requested booking slot overlaps with an existing reservation."
    assert "conflicting_booking_id" in info.value.metadata


def test_default_qpu_is_all_qpus() -> None:
    with pytest.raises(FailedPreconditionError):
        validate_slot(
            at(60), at(70), T0, is_admin=False, existing=[slot("x", 65, 66, "q7")], action="create"
        )


def update(
    start: float,
    end: float,
    *,
    original: float | None = 60,
    admin: bool = False,
    editing_id: str | None = "b1",
) -> None:
    validate_slot(
        at(start),
        at(end),
        CLOCK.now(),
        is_admin=admin,
        existing=EXISTING,
        action="update",
        editing_id=editing_id,
        original_start=None if original is None else at(original),
        qpu_id="q1",
    )


def test_update_excludes_itself() -> None:
    update(90, 150)
    update(60, 120, original=None)  # original start looked up from existing


def test_update_of_started_slot() -> None:
    with pytest.raises(FailedPreconditionError) as info:
        update(90, 150, original=-5)
    assert info.value.reason == "BOOKING_STARTED"
    assert info.value.message == "Cannot modify a booking slot that has already started."
    update(90, 150, original=-5, admin=True)


def test_reschedule_into_past() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        update(-10, 30)
    assert info.value.reason == "BOOKING_IN_PAST"
    assert info.value.message == "Cannot reschedule a booking slot to a start time in the past."
    update(-10, 30, admin=True)


def test_update_overlap_and_range_bind_admins() -> None:
    with pytest.raises(FailedPreconditionError):
        update(290, 310, admin=True)
    with pytest.raises(InvalidArgumentError):
        update(100, 90, admin=True)


def test_update_without_original_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="original_start"):
        update(90, 100, original=None, editing_id="missing")


def test_delete() -> None:
    validate_slot(
        at(60), at(120), T0, is_admin=False, existing=EXISTING, action="delete", editing_id="b1"
    )
    with pytest.raises(FailedPreconditionError) as info:
        validate_slot(at(-1), at(120), T0, is_admin=False, existing=EXISTING, action="delete")
    assert info.value.reason == "BOOKING_STARTED"
    assert info.value.message == "Cannot delete/cancel a booking slot that has already started."
    validate_slot(at(-1), at(120), T0, is_admin=True, existing=EXISTING, action="delete")


def test_conflict_is_symmetric() -> None:
    cases = [
        (0, 10, "a", 5, 15, "a"),
        (0, 10, "a", 10, 20, None),
        (0, 10, None, 2, 3, "z"),
        (0, 10, "a", 2, 3, "b"),
    ]
    for a0, a1, aq, b0, b1, bq in cases:
        forward = slots_conflict(at(a0), at(a1), aq, at(b0), at(b1), bq)
        assert forward == slots_conflict(at(b0), at(b1), bq, at(a0), at(a1), aq)
    assert find_overlap(at(0), at(10), "a", [slot("x", 5, 15, "a")], editing_id="x") is None


# -- fair-use policy -------------------------------------------------------------------

_MONDAY = datetime(2030, 1, 7, tzinfo=UTC)  # a Monday
_POLICY = BookingPolicy(max_length=8 * 3600, max_horizon=30 * 86400, max_weekly=20 * 3600)


def _booking(booking_id: str, start: datetime, end: datetime) -> Booking:
    return Booking(booking_id, "u1", None, start, end)


def test_weeks_start_on_monday_midnight_utc() -> None:
    assert week_start(_MONDAY + timedelta(days=6, hours=23)) == _MONDAY
    assert weeks_touched(_MONDAY - timedelta(hours=2), _MONDAY + timedelta(hours=2)) == [
        _MONDAY - timedelta(days=7),
        _MONDAY,
    ]
    assert seconds_within(_MONDAY - timedelta(hours=2), _MONDAY + timedelta(hours=3), _MONDAY) == (
        3 * 3600
    )


def test_policy_limits_length_and_horizon() -> None:
    now = _MONDAY - timedelta(days=1)
    check_policy(_MONDAY, _MONDAY + timedelta(hours=8), now, _POLICY)
    with pytest.raises(InvalidArgumentError) as long:
        check_policy(_MONDAY, _MONDAY + timedelta(hours=9), now, _POLICY)
    assert long.value.reason == "BOOKING_TOO_LONG"
    far = now + timedelta(days=30, hours=1)
    with pytest.raises(InvalidArgumentError) as ahead:
        check_policy(far - timedelta(hours=1), far, now, _POLICY)
    assert ahead.value.reason == "BOOKING_TOO_FAR_AHEAD"
    check_policy(far - timedelta(hours=1), far, now, BookingPolicy())  # zero disables


def test_policy_weekly_allowance_counts_the_parts_inside_each_week() -> None:
    now = _MONDAY - timedelta(days=1)
    own = [
        _booking("a", _MONDAY + timedelta(hours=1), _MONDAY + timedelta(hours=9)),
        _booking("b", _MONDAY + timedelta(days=1), _MONDAY + timedelta(days=1, hours=8)),
        # Mostly in the previous week: only its last hour counts against this one.
        _booking("c", _MONDAY - timedelta(hours=7), _MONDAY + timedelta(hours=1)),
    ]
    slot = _MONDAY + timedelta(days=2)
    check_policy(slot, slot + timedelta(hours=3), now, _POLICY, own)  # 17 + 3 = 20 h
    with pytest.raises(ResourceExhaustedError) as over:
        check_policy(slot, slot + timedelta(hours=4), now, _POLICY, own)
    assert over.value.reason == "BOOKING_QUOTA_EXCEEDED"
    assert over.value.metadata["booked_seconds"] == str(17 * 3600)
    # Moving booking "a" is not counted against itself.
    check_policy(slot, slot + timedelta(hours=8), now, _POLICY, own, editing_id="a")


def test_validate_slot_applies_the_policy_to_users_only() -> None:
    now = _MONDAY - timedelta(days=1)
    end = _MONDAY + timedelta(hours=12)
    with pytest.raises(InvalidArgumentError):
        validate_slot(
            _MONDAY, end, now, is_admin=False, existing=[], action="create", policy=_POLICY
        )
    validate_slot(_MONDAY, end, now, is_admin=True, existing=[], action="create", policy=_POLICY)
