"""Telemetry event listings: filter, sort, page and count in SQL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from qpi.server.domain.listing import ListQuery, SortKey, Total
from qpi.server.domain.models import TelemetryEvent
from qpi.server.store.base import SqlRepository
from qpi.server.store.listing import DATE, FieldSpec, run_listing
from qpi.server.store.tables import TelemetryEventRow

_EVENTS = TelemetryEventRow.__table__  # type: ignore[attr-defined]

# The fields of `events` collection records (and of ListTelemetryEventsRequest.filter).
EVENT_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_EVENTS.c.id),
    "source": FieldSpec(_EVENTS.c.driver_id),
    "driver": FieldSpec(_EVENTS.c.driver_id),
    "qpu": FieldSpec(_EVENTS.c.qpu_id),
    "type": FieldSpec(_EVENTS.c.type),
    "ts": FieldSpec(_EVENTS.c.event_time, DATE),
}
NEWEST_FIRST = (SortKey("ts", descending=True),)
_COLUMNS = [
    _EVENTS.c[name]
    for name in ("id", "driver_id", "qpu_id", "type", "payload_json", "event_time", "created")
]


class TelemetryListing(Protocol):
    """Lists telemetry events by an arbitrary filter and order, a page at a time."""

    def list_events_query(
        self, query: ListQuery, now: datetime
    ) -> tuple[list[TelemetryEvent], Total | None]:
        """One page of events matching `query`, and the number of matches (None when
        `query.count_total` is false). Raises INVALID_FILTER."""
        ...


class SqlTelemetryListing(SqlRepository):
    """TelemetryListing on SQLite or PostgreSQL."""

    def list_events_query(
        self, query: ListQuery, now: datetime
    ) -> tuple[list[TelemetryEvent], Total | None]:
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                _COLUMNS,
                [],
                query,
                EVENT_FIELDS,
                tie_breakers=[_EVENTS.c.id],
                default_sort=NEWEST_FIRST,
                now=now,
            )
        return [TelemetryEvent(**r) for r in rows], total
