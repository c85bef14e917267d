"""Time-slot bookings and QPU-time requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, text
from sqlmodel import col, select

from qpi.server.domain import time_requests as tr
from qpi.server.domain.bookings import WEEK, BookingPolicy, validate_slot, weeks_touched
from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import NotFoundError, PermissionDeniedError
from qpi.server.domain.policy import Booking
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.services.qpu_service import find_qpu, qpu_not_found
from qpi.server.store.tables import TimeRequestRow, TimeSlotRow, UserRow

BOOKING_LOCK_KEY = 0x51_50_49_42  # "QPIB": the advisory lock guarding booking writes


def _slot_not_found(slot_id: str) -> NotFoundError:
    return NotFoundError("TIME_SLOT_NOT_FOUND", "Time slot not found.", metadata={"id": slot_id})


def _request_not_found(request_id: str) -> NotFoundError:
    return NotFoundError(
        "TIME_REQUEST_NOT_FOUND", "Time request not found.", metadata={"id": request_id}
    )


class BookingService:
    """Bookings and time requests."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        events: EventBus,
        policy: BookingPolicy | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._events = events
        self._policy = policy or BookingPolicy()

    # -- time slots -------------------------------------------------------------------

    def _existing(self, s: object, start: datetime, end: datetime) -> list[Booking]:
        from sqlmodel import Session

        assert isinstance(s, Session)
        if self._db.is_postgres:
            # Serialise check-then-write across database threads and replicas, so two
            # overlapping bookings can never both pass the overlap check.
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BOOKING_LOCK_KEY})
        rows = s.exec(
            select(TimeSlotRow).where(
                col(TimeSlotRow.start_time) < end, col(TimeSlotRow.end_time) > start
            )
        ).all()
        return [Booking(r.id, r.user_id, r.qpu_id, r.start_time, r.end_time) for r in rows]

    def _own(self, s: object, user_id: str, start: datetime, end: datetime) -> list[Booking]:
        """The user's bookings in the weeks ``[start, end)`` touches (for the weekly limit)."""
        from sqlmodel import Session

        assert isinstance(s, Session)
        if self._policy.max_weekly <= 0:
            return []
        weeks = weeks_touched(start, end)
        rows = s.exec(
            select(TimeSlotRow).where(
                TimeSlotRow.user_id == user_id,
                col(TimeSlotRow.start_time) < weeks[-1] + WEEK,
                col(TimeSlotRow.end_time) > weeks[0],
            )
        ).all()
        return [Booking(r.id, r.user_id, r.qpu_id, r.start_time, r.end_time) for r in rows]

    def _qpu_id(self, s: object, key: str | None) -> str | None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        if not key:
            return None
        qpu = find_qpu(s, key)
        if qpu is None:
            raise qpu_not_found(key)
        return qpu.id

    def list_slots(
        self, who: Principal, qpu_id: str, user_id: str, newest_first: bool, offset: int, limit: int
    ) -> tuple[list[TimeSlotRow], int]:
        """Every booking is visible to signed-in users (a shared calendar)."""
        del who
        query = select(TimeSlotRow)
        if qpu_id:
            query = query.where(
                or_(col(TimeSlotRow.qpu_id).is_(None), col(TimeSlotRow.qpu_id) == qpu_id)
            )
        if user_id:
            query = query.where(TimeSlotRow.user_id == user_id)
        order = col(TimeSlotRow.start_time).desc() if newest_first else col(TimeSlotRow.start_time)
        with self._db.session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(
                query.order_by(order, col(TimeSlotRow.id)).offset(offset).limit(limit)
            ).all()
        return list(rows), int(total)

    def get_slot(self, who: Principal, slot_id: str) -> TimeSlotRow:
        """One booking."""
        del who
        with self._db.session() as s:
            row = s.get(TimeSlotRow, slot_id)
        if row is None:
            raise _slot_not_found(slot_id)
        return row

    def create_slot(
        self, who: Principal, start: datetime, end: datetime, qpu: str | None, user_id: str
    ) -> TimeSlotRow:
        """Books a slot for the caller (administrators may book for someone else)."""
        owner = user_id or who.user_id
        if owner != who.user_id:
            who.require_admin()
        with self._db.session() as s:
            if s.get(UserRow, owner) is None:
                raise NotFoundError(
                    "USER_NOT_FOUND", f"User {owner} not found.", metadata={"id": owner}
                )
            qpu_id = self._qpu_id(s, qpu)
            validate_slot(
                start,
                end,
                self._clock.now(),
                is_admin=who.is_superuser,
                existing=self._existing(s, start, end),
                action="create",
                qpu_id=qpu_id,
                policy=self._policy,
                own=self._own(s, owner, start, end),
            )
            row = TimeSlotRow(user_id=owner, qpu_id=qpu_id, start_time=start, end_time=end)
            s.add(row)
            s.commit()
        self._events.publish("dispatch", qpu_id or "*")
        return row

    def _owned_slot(self, who: Principal, slot_id: str) -> TimeSlotRow:
        row = self.get_slot(who, slot_id)
        if not who.can_see(row.user_id):
            raise PermissionDeniedError(
                "PERMISSION_DENIED", "Only the booker or an administrator can change this booking."
            )
        return row

    def update_slot(self, who: Principal, slot_id: str, fields: dict[str, object]) -> TimeSlotRow:
        """Moves a booking."""
        row = self._owned_slot(who, slot_id)
        start = fields.get("start_time", row.start_time)
        end = fields.get("end_time", row.end_time)
        assert isinstance(start, datetime)
        assert isinstance(end, datetime)
        with self._db.session() as s:
            qpu_id = (
                self._qpu_id(s, str(fields["qpu_id"] or "")) if "qpu_id" in fields else row.qpu_id
            )
            validate_slot(
                start,
                end,
                self._clock.now(),
                is_admin=who.is_superuser,
                existing=self._existing(s, start, end),
                action="update",
                editing_id=row.id,
                original_start=row.start_time,
                qpu_id=qpu_id,
                policy=self._policy,
                own=self._own(s, row.user_id, start, end),
            )
            fresh = s.get(TimeSlotRow, slot_id)
            if fresh is None:
                raise _slot_not_found(slot_id)
            fresh.start_time, fresh.end_time, fresh.qpu_id = start, end, qpu_id
            s.add(fresh)
            s.commit()
        self._events.publish("dispatch", qpu_id or "*")
        return fresh

    def delete_slot(self, who: Principal, slot_id: str) -> None:
        """Cancels a booking."""
        row = self._owned_slot(who, slot_id)
        validate_slot(
            row.start_time,
            row.end_time,
            self._clock.now(),
            is_admin=who.is_superuser,
            existing=[],
            action="delete",
            editing_id=row.id,
            original_start=row.start_time,
            qpu_id=row.qpu_id,
        )
        with self._db.session() as s:
            fresh = s.get(TimeSlotRow, slot_id)
            if fresh is not None:
                s.delete(fresh)
                s.commit()
        self._events.publish("dispatch", row.qpu_id or "*")

    # -- time requests ----------------------------------------------------------------

    def list_requests(
        self, who: Principal, state: str, offset: int, limit: int
    ) -> tuple[list[TimeRequestRow], int]:
        """Own requests (administrators: all), newest first."""
        query = select(TimeRequestRow)
        if not who.is_superuser:
            query = query.where(TimeRequestRow.user_id == who.user_id)
        if state:
            query = query.where(TimeRequestRow.state == state)
        with self._db.session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(
                query.order_by(col(TimeRequestRow.created).desc()).offset(offset).limit(limit)
            ).all()
        return list(rows), int(total)

    def get_request(self, who: Principal, request_id: str) -> TimeRequestRow:
        """One visible request."""
        with self._db.session() as s:
            row = s.get(TimeRequestRow, request_id)
        if row is None or not who.can_see(row.user_id):
            raise _request_not_found(request_id)
        return row

    def create_request(self, who: Principal, seconds: float, reason: str) -> TimeRequestRow:
        """Files a pending request for the caller."""
        tr.validate_seconds(seconds)
        row = TimeRequestRow(
            user_id=who.user_id, seconds=seconds, requested_reason=reason.strip()[:5000]
        )
        with self._db.session() as s:
            s.add(row)
            s.commit()
        return row

    def delete_request(self, who: Principal, request_id: str) -> None:
        """Withdraws a pending request (owner) or removes any (administrator)."""
        row = self.get_request(who, request_id)
        if not who.is_superuser:
            tr.ensure_pending(row.state, "delete")
        with self._db.session() as s:
            fresh = s.get(TimeRequestRow, request_id)
            if fresh is not None:
                s.delete(fresh)
                s.commit()

    def decide_request(
        self, who: Principal, request_id: str, approve: bool, rejection_reason: str = ""
    ) -> TimeRequestRow:
        """Approves (crediting the seconds) or rejects a pending request, exactly once."""
        who.require_admin()
        with self._db.session() as s:
            row = s.exec(
                select(TimeRequestRow).where(TimeRequestRow.id == request_id).with_for_update()
            ).first()
            if row is None:
                raise _request_not_found(request_id)
            row.state = (tr.approve(row.state) if approve else tr.reject(row.state)).value
            row.handled_by = who.user_id
            if approve:
                user = s.exec(
                    select(UserRow).where(UserRow.id == row.user_id).with_for_update()
                ).one()
                user.qpu_seconds = tr.credit(user.qpu_seconds, row.seconds)
                s.add(user)
            else:
                row.rejection_reason = rejection_reason.strip()[:5000]
            s.add(row)
            s.commit()
        if approve:
            self._events.publish("dispatch", "*")  # jobs held for lack of balance may run
        return row
