"""Validation of booking (time slot) creation, changes and deletion.

Range and overlap rules bind everyone, administrators included; the rules about the
past and about started slots bind only non-administrators.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from qpi.server.domain.errors import FailedPreconditionError, InvalidArgumentError
from qpi.server.domain.policy import Booking

BookingAction = Literal["create", "update", "delete"]


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

    Raises:
        InvalidArgumentError: ``BOOKING_INVALID_RANGE`` or ``BOOKING_IN_PAST``.
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
    clash = find_overlap(start, end, qpu_id, existing, editing_id)
    if clash is not None:
        raise FailedPreconditionError(
            "BOOKING_OVERLAP",
            "The requested booking slot overlaps with an existing reservation.",
            metadata={"conflicting_booking_id": clash.id},
        )
