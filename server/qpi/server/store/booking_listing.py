"""Time-slot and QPU-time-request listings: filter, sort, page and count in SQL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from qpi.server.domain.listing import ListQuery, SortKey, Total
from qpi.server.domain.models import TimeRequest, TimeSlot
from qpi.server.store.base import SqlRepository
from qpi.server.store.listing import DATE, NUMBER, FieldSpec, run_listing
from qpi.server.store.tables import TimeRequestRow, TimeSlotRow

_SLOTS = TimeSlotRow.__table__  # type: ignore[attr-defined]
_REQUESTS = TimeRequestRow.__table__  # type: ignore[attr-defined]

# The fields of `time_slots` records (`qpu` empty: the slot books every QPU).
SLOT_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_SLOTS.c.id),
    "booked_by": FieldSpec(_SLOTS.c.user_id),
    "qpu": FieldSpec(_SLOTS.c.qpu_id, nullable=True),
    "start_time": FieldSpec(_SLOTS.c.start_time, DATE),
    "end_time": FieldSpec(_SLOTS.c.end_time, DATE),
    "created": FieldSpec(_SLOTS.c.created, DATE),
}
_SLOT_COLUMNS = [
    _SLOTS.c[n] for n in ("id", "user_id", "qpu_id", "start_time", "end_time", "created")
]
BY_START = (SortKey("start_time"),)

# The fields of `qpu_time_requests` records.
REQUEST_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_REQUESTS.c.id),
    "user": FieldSpec(_REQUESTS.c.user_id),
    "seconds": FieldSpec(_REQUESTS.c.seconds, NUMBER),
    "status": FieldSpec(_REQUESTS.c.state, choices=("pending", "approved", "rejected")),
    "requested_reason": FieldSpec(_REQUESTS.c.requested_reason, free_text=True),
    "rejection_reason": FieldSpec(_REQUESTS.c.rejection_reason, free_text=True),
    "handled_by": FieldSpec(_REQUESTS.c.handled_by),
    "created": FieldSpec(_REQUESTS.c.created, DATE),
}
_REQUEST_COLUMNS = [
    _REQUESTS.c[n]
    for n in (
        "id",
        "user_id",
        "seconds",
        "state",
        "requested_reason",
        "rejection_reason",
        "handled_by",
        "created",
    )
]
NEWEST_FIRST = (SortKey("created", descending=True),)


class BookingListing(Protocol):
    """Lists bookings and QPU-time requests by an arbitrary filter and order."""

    def list_slots_query(
        self, query: ListQuery, now: datetime, default_sort: tuple[SortKey, ...] = BY_START
    ) -> tuple[list[TimeSlot], Total | None]:
        """One page of bookings matching `query`, and the number of matches (None when
        not counted). Raises INVALID_FILTER."""
        ...

    def list_requests_query(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[TimeRequest], Total | None]:
        """One page of `owner`'s requests (everyone's for None) matching `query`."""
        ...


class SqlBookingListing(SqlRepository):
    """BookingListing on SQLite or PostgreSQL."""

    def list_slots_query(
        self, query: ListQuery, now: datetime, default_sort: tuple[SortKey, ...] = BY_START
    ) -> tuple[list[TimeSlot], Total | None]:
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                _SLOT_COLUMNS,
                [],
                query,
                SLOT_FIELDS,
                tie_breakers=[_SLOTS.c.id],
                default_sort=default_sort,
                now=now,
            )
        return [TimeSlot(**r) for r in rows], total

    def list_requests_query(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[TimeRequest], Total | None]:
        scope = [] if owner is None else [_REQUESTS.c.user_id == owner]
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                _REQUEST_COLUMNS,
                scope,
                query,
                REQUEST_FIELDS,
                tie_breakers=[_REQUESTS.c.id],
                default_sort=NEWEST_FIRST,
                now=now,
            )
        return [TimeRequest(**r) for r in rows], total
