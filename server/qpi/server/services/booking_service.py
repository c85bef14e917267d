"""Time-slot bookings and QPU-time requests."""

from __future__ import annotations

from datetime import datetime

from qpi.server.domain import time_requests as tr
from qpi.server.domain.bookings import WEEK, BookingPolicy, validate_slot, weeks_touched
from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import NotFoundError, PermissionDeniedError
from qpi.server.domain.listing import ListQuery, SortKey, Total
from qpi.server.domain.models import TimeRequest, TimeSlot
from qpi.server.domain.policy import Booking
from qpi.server.services.events import BOOKINGS_TOPIC, EventBus
from qpi.server.services.principal import Principal
from qpi.server.services.qpu_service import QpuService
from qpi.server.store.accounts import AccountRepository
from qpi.server.store.booking_listing import BookingListing
from qpi.server.store.bookings import BookingRepository, Window


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
        bookings: BookingRepository,
        accounts: AccountRepository,
        qpus: QpuService,
        clock: Clock,
        events: EventBus,
        policy: BookingPolicy | None = None,
        listing: BookingListing | None = None,
    ) -> None:
        self._bookings = bookings
        self._listing = listing
        self._accounts = accounts
        self._qpus = qpus
        self._clock = clock
        self._events = events
        self._policy = policy or BookingPolicy()

    # -- time slots -------------------------------------------------------------------

    def _own_window(self, start: datetime, end: datetime) -> Window | None:
        """The weeks ``[start, end)`` touches, where the weekly limit counts the booker's
        own bookings (None when there is no weekly limit)."""
        if self._policy.max_weekly <= 0:
            return None
        weeks = weeks_touched(start, end)
        return weeks[0], weeks[-1] + WEEK

    def _qpu_id(self, key: str | None) -> str | None:
        return self._qpus.find(key).id if key else None

    def list_slots(
        self, who: Principal, qpu_id: str, user_id: str, newest_first: bool, offset: int, limit: int
    ) -> tuple[list[TimeSlot], int]:
        """Every booking is visible to signed-in users (a shared calendar)."""
        del who
        return self._bookings.list_slots(qpu_id, user_id, newest_first, offset, limit)

    def query_slots(
        self, who: Principal, query: ListQuery, default_sort: tuple[SortKey, ...]
    ) -> tuple[list[TimeSlot], Total | None]:
        """One page of bookings matching an arbitrary filter and order (a shared calendar:
        every signed-in user sees every booking), run in the database."""
        del who
        if self._listing is None:
            raise RuntimeError("BookingService was built without a listing")
        return self._listing.list_slots_query(query, self._clock.now(), default_sort)

    def query_requests(
        self, who: Principal, query: ListQuery
    ) -> tuple[list[TimeRequest], Total | None]:
        """One page of own requests (administrators: all) matching a query."""
        if self._listing is None:
            raise RuntimeError("BookingService was built without a listing")
        owner = None if who.is_superuser else who.user_id
        return self._listing.list_requests_query(owner, query, self._clock.now())

    def get_slot(self, who: Principal, slot_id: str) -> TimeSlot:
        """One booking."""
        del who
        slot = self._bookings.get_slot(slot_id)
        if slot is None:
            raise _slot_not_found(slot_id)
        return slot

    def create_slot(
        self, who: Principal, start: datetime, end: datetime, qpu: str | None, user_id: str
    ) -> TimeSlot:
        """Books a slot for the caller (administrators may book for someone else)."""
        owner = user_id or who.user_id
        if owner != who.user_id:
            who.require_admin()
        if self._accounts.get_user(owner) is None:
            raise NotFoundError(
                "USER_NOT_FOUND", f"User {owner} not found.", metadata={"id": owner}
            )
        qpu_id = self._qpu_id(qpu)
        now = self._clock.now()

        def check(existing: list[Booking], own: list[Booking]) -> None:
            validate_slot(
                start,
                end,
                now,
                is_admin=who.is_superuser,
                existing=existing,
                action="create",
                qpu_id=qpu_id,
                policy=self._policy,
                own=own,
            )

        slot = self._bookings.insert_slot(
            owner, qpu_id, start, end, check, self._own_window(start, end)
        )
        self._events.publish(BOOKINGS_TOPIC, qpu_id or "*")
        self._events.publish("dispatch", qpu_id or "*")
        return slot

    def _owned_slot(self, who: Principal, slot_id: str) -> TimeSlot:
        slot = self.get_slot(who, slot_id)
        if not who.can_see(slot.user_id):
            raise PermissionDeniedError(
                "PERMISSION_DENIED", "Only the booker or an administrator can change this booking."
            )
        return slot

    def update_slot(self, who: Principal, slot_id: str, fields: dict[str, object]) -> TimeSlot:
        """Moves a booking."""
        slot = self._owned_slot(who, slot_id)
        start = fields.get("start_time", slot.start_time)
        end = fields.get("end_time", slot.end_time)
        assert isinstance(start, datetime)
        assert isinstance(end, datetime)
        qpu_id = self._qpu_id(str(fields["qpu_id"] or "")) if "qpu_id" in fields else slot.qpu_id
        now = self._clock.now()

        def check(existing: list[Booking], own: list[Booking]) -> None:
            validate_slot(
                start,
                end,
                now,
                is_admin=who.is_superuser,
                existing=existing,
                action="update",
                editing_id=slot.id,
                original_start=slot.start_time,
                qpu_id=qpu_id,
                policy=self._policy,
                own=own,
            )

        moved = self._bookings.move_slot(
            slot_id, slot.user_id, qpu_id, start, end, check, self._own_window(start, end)
        )
        if moved is None:
            raise _slot_not_found(slot_id)
        self._events.publish(BOOKINGS_TOPIC, qpu_id or "*")
        self._events.publish("dispatch", qpu_id or "*")
        return moved

    def delete_slot(self, who: Principal, slot_id: str) -> None:
        """Cancels a booking."""
        slot = self._owned_slot(who, slot_id)
        validate_slot(
            slot.start_time,
            slot.end_time,
            self._clock.now(),
            is_admin=who.is_superuser,
            existing=[],
            action="delete",
            editing_id=slot.id,
            original_start=slot.start_time,
            qpu_id=slot.qpu_id,
        )
        self._bookings.delete_slot(slot_id)
        self._events.publish(BOOKINGS_TOPIC, slot.qpu_id or "*")
        self._events.publish("dispatch", slot.qpu_id or "*")

    # -- time requests ----------------------------------------------------------------

    def list_requests(
        self, who: Principal, state: str, offset: int, limit: int
    ) -> tuple[list[TimeRequest], int]:
        """Own requests (administrators: all), newest first."""
        owner = None if who.is_superuser else who.user_id
        return self._bookings.list_requests(owner, state, offset, limit)

    def get_request(self, who: Principal, request_id: str) -> TimeRequest:
        """One visible request."""
        request = self._bookings.get_request(request_id)
        if request is None or not who.can_see(request.user_id):
            raise _request_not_found(request_id)
        return request

    def create_request(self, who: Principal, seconds: float, reason: str) -> TimeRequest:
        """Files a pending request for the caller."""
        tr.validate_seconds(seconds)
        return self._bookings.insert_request(who.user_id, seconds, reason.strip()[:5000])

    def delete_request(self, who: Principal, request_id: str) -> None:
        """Withdraws a pending request (owner) or removes any (administrator)."""
        request = self.get_request(who, request_id)
        if not who.is_superuser:
            tr.ensure_pending(request.state, "delete")
        self._bookings.delete_request(request_id)

    def decide_request(
        self, who: Principal, request_id: str, approve: bool, rejection_reason: str = ""
    ) -> TimeRequest:
        """Approves (crediting the seconds) or rejects a pending request, exactly once."""
        who.require_admin()
        decided = self._bookings.decide_request(
            request_id,
            transition=lambda state: (tr.approve(state) if approve else tr.reject(state)).value,
            handled_by=who.user_id,
            rejection_reason=None if approve else rejection_reason.strip()[:5000],
            credit=tr.credit if approve else None,
        )
        if decided is None:
            raise _request_not_found(request_id)
        if approve:
            self._events.publish("dispatch", "*")  # jobs held for lack of balance may run
        return decided
