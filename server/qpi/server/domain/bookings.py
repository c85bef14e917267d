"""Validation of booking (time slot) creation, changes and deletion.

Range and overlap rules bind everyone, administrators included; the rules about the
past, about started slots and the fair-use :class:`BookingPolicy` bind only
non-administrators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from qpi.server.domain.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
)
from qpi.server.domain.policy import Booking

BookingAction = Literal["create", "update", "delete"]

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class BookingPolicy:
    """Fair use of the calendar for non-administrators; a zero disables a limit.

    Attributes:
        max_length: Longest slot, in seconds.
        max_horizon: How far after now a slot may end, in seconds.
        max_weekly: Most seconds one user may have booked within one calendar week
            (Monday 00:00 UTC to the next), counting the parts of slots inside that week.
    """

    max_length: float = 0.0
    max_horizon: float = 0.0
    max_weekly: float = 0.0


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 of the (UTC, ISO) week containing ``moment``."""
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def weeks_touched(start: datetime, end: datetime) -> list[datetime]:
    """Starts of the weeks that ``[start, end)`` overlaps, in order."""
    weeks = [week_start(start)]
    while weeks[-1] + WEEK < end:
        weeks.append(weeks[-1] + WEEK)
    return weeks


def seconds_within(start: datetime, end: datetime, week: datetime) -> float:
    """Seconds of ``[start, end)`` inside the week starting at ``week``."""
    overlap = min(end, week + WEEK) - max(start, week)
    return max(overlap.total_seconds(), 0.0)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"


def check_policy(
    start: datetime,
    end: datetime,
    now: datetime,
    policy: BookingPolicy,
    own: Sequence[Booking] = (),
    editing_id: str | None = None,
) -> None:
    """Check a non-administrator's slot against the fair-use policy.

    Args:
        start: Requested start.
        end: Requested end (after ``start``).
        now: Current time.
        policy: The limits.
        own: The booker's bookings in the weeks the slot touches (the edited one may be
            included; it is skipped).
        editing_id: Id of the booking being moved, if any.

    Raises:
        InvalidArgumentError: ``BOOKING_TOO_LONG`` or ``BOOKING_TOO_FAR_AHEAD``.
        ResourceExhaustedError: ``BOOKING_QUOTA_EXCEEDED``.
    """
    length = (end - start).total_seconds()
    if policy.max_length > 0 and length > policy.max_length:
        raise InvalidArgumentError(
            "BOOKING_TOO_LONG",
            f"A booking may last at most {_hours(policy.max_length)}; "
            f"this one lasts {_hours(length)}.",
            metadata={"max_seconds": f"{policy.max_length:g}", "seconds": f"{length:g}"},
            field="end_time",
        )
    if policy.max_horizon > 0:
        latest = now + timedelta(seconds=policy.max_horizon)
        if end > latest:
            raise InvalidArgumentError(
                "BOOKING_TOO_FAR_AHEAD",
                f"Bookings may end at most {_hours(policy.max_horizon)} from now "
                f"(by {latest.isoformat()}); this one ends {end.isoformat()}.",
                metadata={"latest_end_time": latest.isoformat(), "end_time": end.isoformat()},
                field="end_time",
            )
    if policy.max_weekly > 0:
        others = [b for b in own if b.id != editing_id]
        for week in weeks_touched(start, end):
            booked = sum(seconds_within(b.start, b.end, week) for b in others)
            adding = seconds_within(start, end, week)
            if booked + adding > policy.max_weekly:
                raise ResourceExhaustedError(
                    "BOOKING_QUOTA_EXCEEDED",
                    f"You may book at most {_hours(policy.max_weekly)} per week; the week "
                    f"of {week.date().isoformat()} already has {_hours(booked)} booked and "
                    f"this slot would add {_hours(adding)}.",
                    metadata={
                        "week_start": week.date().isoformat(),
                        "max_weekly_seconds": f"{policy.max_weekly:g}",
                        "booked_seconds": f"{booked:g}",
                        "requested_seconds": f"{adding:g}",
                    },
                    field="end_time",
                )


def slots_conflict(
    a_start: datetime,
    a_end: datetime,
    a_qpu: str | None,
    b_start: datetime,
    b_end: datetime,
    b_qpu: str | None,
) -> bool:
    """Tell whether two slots collide.

    They collide when their intervals overlap (touching ends do not) and they reserve a
    common QPU: either one is an all-QPU booking or both name the same QPU.
    """
    same_resource = a_qpu is None or b_qpu is None or a_qpu == b_qpu
    return same_resource and b_start < a_end and b_end > a_start


def find_overlap(
    start: datetime,
    end: datetime,
    qpu_id: str | None,
    existing: Sequence[Booking],
    editing_id: str | None = None,
) -> Booking | None:
    """Return an existing booking that collides with the slot, ignoring ``editing_id``."""
    for other in existing:
        if other.id == editing_id:
            continue
        if slots_conflict(start, end, qpu_id, other.start, other.end, other.qpu_id):
            return other
    return None


def _started_error(verb: str, start: datetime) -> FailedPreconditionError:
    return FailedPreconditionError(
        "BOOKING_STARTED",
        f"Cannot {verb} a booking slot that has already started.",
        metadata={"start_time": start.isoformat()},
    )


def _original_start(
    original_start: datetime | None,
    editing_id: str | None,
    existing: Sequence[Booking],
) -> datetime:
    if original_start is not None:
        return original_start
    for booking in existing:
        if booking.id == editing_id:
            return booking.start
    raise ValueError("update/delete needs original_start or an editing_id found in existing")


def validate_slot(
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    is_admin: bool,
    existing: Sequence[Booking],
    action: BookingAction,
    editing_id: str | None = None,
    original_start: datetime | None = None,
    qpu_id: str | None = None,
    policy: BookingPolicy | None = None,
    own: Sequence[Booking] = (),
) -> None:
    """Check that a booking may be created, changed or deleted.

    Args:
        start: Requested (or, for delete, current) start.
        end: Requested (or, for delete, current) end.
        now: Current time.
        is_admin: Administrators may book in the past and touch started slots.
        existing: Current bookings (the edited one may be included; it is skipped).
        action: What is being done.
        editing_id: Id of the booking being updated or deleted.
        original_start: Start of the booking before the update; looked up in
            ``existing`` by ``editing_id`` when omitted.
        qpu_id: QPU of the requested slot; ``None`` books every QPU.
        policy: Fair-use limits for non-administrators (None: no limits).
        own: The booker's bookings in the weeks the slot touches, for the weekly limit.

    Raises:
        InvalidArgumentError: ``BOOKING_INVALID_RANGE``, ``BOOKING_IN_PAST``,
            ``BOOKING_TOO_LONG`` or ``BOOKING_TOO_FAR_AHEAD``.
        ResourceExhaustedError: ``BOOKING_QUOTA_EXCEEDED``.
        FailedPreconditionError: ``BOOKING_STARTED`` or ``BOOKING_OVERLAP``.
        ValueError: For update/delete without a way to know the original start.
    """
    if action == "delete":
        if not is_admin:
            current = original_start if original_start is not None else start
            if current <= now:
                raise _started_error("delete/cancel", current)
        return
    if action == "update" and not is_admin:
        before = _original_start(original_start, editing_id, existing)
        if before <= now:
            raise _started_error("modify", before)
    if end <= start:
        raise InvalidArgumentError(
            "BOOKING_INVALID_RANGE",
            "start_time must be strictly before end_time.",
            metadata={"start_time": start.isoformat(), "end_time": end.isoformat()},
            field="end_time",
        )
    if not is_admin and start < now:
        message = (
            "Cannot book a slot in the past."
            if action == "create"
            else "Cannot reschedule a booking slot to a start time in the past."
        )
        raise InvalidArgumentError(
            "BOOKING_IN_PAST",
            message,
            metadata={"start_time": start.isoformat()},
            field="start_time",
        )
    if not is_admin and policy is not None:
        check_policy(start, end, now, policy, own, editing_id)
    clash = find_overlap(start, end, qpu_id, existing, editing_id)
    if clash is not None:
        raise FailedPreconditionError(
            "BOOKING_OVERLAP",
            "The requested booking slot overlaps with an existing reservation.",
            metadata={"conflicting_booking_id": clash.id},
        )
