"""Bookings: time slots and QPU-time requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, or_, text
from sqlmodel import Session, col, select

from qpi.server.domain.models import TimeRequest, TimeSlot
from qpi.server.domain.policy import Booking
from qpi.server.store.base import SqlRepository
from qpi.server.store.tables import TimeRequestRow, TimeSlotRow, UserRow

BOOKING_LOCK_KEY = 0x51_50_49_42  # "QPIB": the advisory lock guarding booking writes

SlotCheck = Callable[[list[Booking], list[Booking]], None]
"""Raises unless a slot may be written, given the bookings overlapping it and the booker's
own bookings in the window the weekly limit looks at."""

Window = tuple[datetime, datetime]
"""[start, end) in which the booker's own bookings are read (None: not needed)."""


class BookingRepository(Protocol):
    """Time slots and time requests."""

    def list_slots(
        self, qpu_id: str, user_id: str, newest_first: bool, offset: int, limit: int
    ) -> tuple[list[TimeSlot], int]:
        """Slots by start time, optionally of one QPU (all-QPU slots included) or user."""
        ...

    def get_slot(self, slot_id: str) -> TimeSlot | None:
        """One slot."""
        ...

    def insert_slot(
        self,
        user_id: str,
        qpu_id: str | None,
        start: datetime,
        end: datetime,
        check: SlotCheck,
        own_window: Window | None,
    ) -> TimeSlot:
        """Adds a slot once `check` accepted it (serialised with every other booking
        write)."""
        ...

    def move_slot(
        self,
        slot_id: str,
        user_id: str,
        qpu_id: str | None,
        start: datetime,
        end: datetime,
        check: SlotCheck,
        own_window: Window | None,
    ) -> TimeSlot | None:
        """Moves `user_id`'s slot once `check` accepted it; None if it is gone."""
        ...

    def delete_slot(self, slot_id: str) -> None:
        """Removes a slot if it exists."""
        ...

    def list_requests(
        self, user_id: str | None, state: str, offset: int, limit: int
    ) -> tuple[list[TimeRequest], int]:
        """Requests newest first (one user's, or everyone's for None), with the total."""
        ...

    def get_request(self, request_id: str) -> TimeRequest | None:
        """One request."""
        ...

    def insert_request(self, user_id: str, seconds: float, reason: str) -> TimeRequest:
        """Files a pending request."""
        ...

    def delete_request(self, request_id: str) -> None:
        """Removes a request if it exists."""
        ...

    def decide_request(
        self,
        request_id: str,
        *,
        transition: Callable[[str], str],
        handled_by: str,
        rejection_reason: str | None,
        credit: Callable[[float, float], float] | None,
    ) -> TimeRequest | None:
        """Moves a request to `transition(state)` under a row lock; with `credit`, sets the
        owner's balance to `credit(balance, seconds)` in the same transaction. None if
        there is no such request."""
        ...


def to_slot(row: TimeSlotRow) -> TimeSlot:
    """The domain record of a time-slot row."""
    return TimeSlot(
        id=row.id,
        user_id=row.user_id,
        qpu_id=row.qpu_id,
        start_time=row.start_time,
        end_time=row.end_time,
        created=row.created,
    )


def to_request(row: TimeRequestRow) -> TimeRequest:
    """The domain record of a time-request row."""
    return TimeRequest(
        id=row.id,
        user_id=row.user_id,
        seconds=row.seconds,
        state=row.state,
        requested_reason=row.requested_reason,
        rejection_reason=row.rejection_reason,
        handled_by=row.handled_by,
        created=row.created,
    )


def _own(s: Session, user_id: str, window: Window | None) -> list[Booking]:
    if window is None:
        return []
    rows = s.exec(
        select(TimeSlotRow).where(
            TimeSlotRow.user_id == user_id,
            col(TimeSlotRow.start_time) < window[1],
            col(TimeSlotRow.end_time) > window[0],
        )
    ).all()
    return [Booking(r.id, r.user_id, r.qpu_id, r.start_time, r.end_time) for r in rows]


class SqlBookingRepository(SqlRepository):
    """BookingRepository on SQLite or PostgreSQL."""

    def _overlapping(self, s: Session, start: datetime, end: datetime) -> list[Booking]:
        if self._is_postgres:
            # Serialise check-then-write across database threads and replicas, so two
            # overlapping bookings can never both pass the overlap check.
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BOOKING_LOCK_KEY})
        rows = s.exec(
            select(TimeSlotRow).where(
                col(TimeSlotRow.start_time) < end, col(TimeSlotRow.end_time) > start
            )
        ).all()
        return [Booking(r.id, r.user_id, r.qpu_id, r.start_time, r.end_time) for r in rows]

    def list_slots(
        self, qpu_id: str, user_id: str, newest_first: bool, offset: int, limit: int
    ) -> tuple[list[TimeSlot], int]:
        query = select(TimeSlotRow)
        if qpu_id:
            query = query.where(
                or_(col(TimeSlotRow.qpu_id).is_(None), col(TimeSlotRow.qpu_id) == qpu_id)
            )
        if user_id:
            query = query.where(TimeSlotRow.user_id == user_id)
        order = col(TimeSlotRow.start_time).desc() if newest_first else col(TimeSlotRow.start_time)
        with self._session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(
                query.order_by(order, col(TimeSlotRow.id)).offset(offset).limit(limit)
            ).all()
        return [to_slot(r) for r in rows], int(total)

    def get_slot(self, slot_id: str) -> TimeSlot | None:
        with self._session() as s:
            row = s.get(TimeSlotRow, slot_id)
        return to_slot(row) if row else None

    def insert_slot(
        self,
        user_id: str,
        qpu_id: str | None,
        start: datetime,
        end: datetime,
        check: SlotCheck,
        own_window: Window | None,
    ) -> TimeSlot:
        with self._session() as s:
            check(self._overlapping(s, start, end), _own(s, user_id, own_window))
            row = TimeSlotRow(user_id=user_id, qpu_id=qpu_id, start_time=start, end_time=end)
            s.add(row)
            s.commit()
        return to_slot(row)

    def move_slot(
        self,
        slot_id: str,
        user_id: str,
        qpu_id: str | None,
        start: datetime,
        end: datetime,
        check: SlotCheck,
        own_window: Window | None,
    ) -> TimeSlot | None:
        with self._session() as s:
            check(self._overlapping(s, start, end), _own(s, user_id, own_window))
            row = s.get(TimeSlotRow, slot_id)
            if row is None:
                return None
            row.start_time, row.end_time, row.qpu_id = start, end, qpu_id
            s.add(row)
            s.commit()
        return to_slot(row)

    def delete_slot(self, slot_id: str) -> None:
        with self._session() as s:
            row = s.get(TimeSlotRow, slot_id)
            if row is not None:
                s.delete(row)
                s.commit()

    def list_requests(
        self, user_id: str | None, state: str, offset: int, limit: int
    ) -> tuple[list[TimeRequest], int]:
        query = select(TimeRequestRow)
        if user_id is not None:
            query = query.where(TimeRequestRow.user_id == user_id)
        if state:
            query = query.where(TimeRequestRow.state == state)
        with self._session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(
                query.order_by(col(TimeRequestRow.created).desc()).offset(offset).limit(limit)
            ).all()
        return [to_request(r) for r in rows], int(total)

    def get_request(self, request_id: str) -> TimeRequest | None:
        with self._session() as s:
            row = s.get(TimeRequestRow, request_id)
        return to_request(row) if row else None

    def insert_request(self, user_id: str, seconds: float, reason: str) -> TimeRequest:
        row = TimeRequestRow(user_id=user_id, seconds=seconds, requested_reason=reason)
        with self._session() as s:
            s.add(row)
            s.commit()
        return to_request(row)

    def delete_request(self, request_id: str) -> None:
        with self._session() as s:
            row = s.get(TimeRequestRow, request_id)
            if row is not None:
                s.delete(row)
                s.commit()

    def decide_request(
        self,
        request_id: str,
        *,
        transition: Callable[[str], str],
        handled_by: str,
        rejection_reason: str | None,
        credit: Callable[[float, float], float] | None,
    ) -> TimeRequest | None:
        with self._session() as s:
            row = s.exec(
                select(TimeRequestRow).where(TimeRequestRow.id == request_id).with_for_update()
            ).first()
            if row is None:
                return None
            row.state = transition(row.state)
            row.handled_by = handled_by
            if credit is not None:
                user = s.exec(
                    select(UserRow).where(UserRow.id == row.user_id).with_for_update()
                ).one()
                user.qpu_seconds = credit(user.qpu_seconds, row.seconds)
                s.add(user)
            if rejection_reason is not None:
                row.rejection_reason = rejection_reason
            s.add(row)
            s.commit()
        return to_request(row)
