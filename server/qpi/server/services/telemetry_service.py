"""Telemetry reported by drivers (cryostat readings, calibration data)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, NotFoundError
from qpi.server.domain.listing import ListQuery, Total
from qpi.server.domain.models import TelemetryEvent
from qpi.server.services.principal import Principal
from qpi.server.store.telemetry import TelemetryRepository
from qpi.server.store.telemetry_listing import TelemetryListing

PRUNE_BATCH = 5000
"""Most telemetry events one pruning transaction deletes."""


class TelemetryService:
    """Stores and lists telemetry events."""

    def __init__(
        self,
        telemetry: TelemetryRepository,
        clock: Clock,
        retention: float,
        listing: TelemetryListing | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._listing = listing
        self._clock = clock
        self._retention = retention

    def record(
        self, driver_id: str, qpu_id: str, type_: str, payload_json: str, at: datetime | None
    ) -> None:
        """Appends one event; the payload must be a JSON object."""
        try:
            if not isinstance(json.loads(payload_json), dict):
                raise ValueError
        except ValueError as exc:
            raise InvalidArgumentError(
                "INVALID_FIELD", "Telemetry payload must be a JSON object.", field="payload_json"
            ) from exc
        self._telemetry.insert(
            driver_id, qpu_id, type_[:100], payload_json, at or self._clock.now()
        )

    def query(self, who: Principal, query: ListQuery) -> tuple[list[TelemetryEvent], Total | None]:
        """One page of events matching an arbitrary filter and order, run in the database
        (administrators); the count of all matches unless the query skips it."""
        who.require_admin()
        if self._listing is None:
            raise RuntimeError("TelemetryService was built without a listing")
        return self._listing.list_events_query(query, self._clock.now())

    def get(self, who: Principal, event_id: str) -> TelemetryEvent:
        """One event (administrators)."""
        who.require_admin()
        event = self._telemetry.get(event_id)
        if event is None:
            raise NotFoundError(
                "TELEMETRY_EVENT_NOT_FOUND",
                f"Telemetry event {event_id} not found.",
                metadata={"id": event_id},
            )
        return event

    def prune(self, limit: int = PRUNE_BATCH) -> int:
        """Deletes up to `limit` of the events older than the retention period (0 keeps
        everything), oldest first; returns how many. Callers repeat while a whole batch
        went, so one large backlog (a shortened retention, a long outage) never holds
        the database in one long transaction."""
        if self._retention <= 0:
            return 0
        cutoff = self._clock.now() - timedelta(seconds=self._retention)
        return self._telemetry.delete_before(cutoff, limit)
