"""Telemetry events reported by drivers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import CursorResult
from sqlmodel import col, delete, select

from qpi.server.domain.models import TelemetryEvent
from qpi.server.store.base import SqlRepository
from qpi.server.store.tables import TelemetryEventRow


class TelemetryRepository(Protocol):
    """Append, read and prune telemetry events (listings: `telemetry_listing.py`)."""

    def insert(
        self, driver_id: str, qpu_id: str, type_: str, payload_json: str, at: datetime
    ) -> None:
        """Appends one event."""
        ...

    def get(self, event_id: str) -> TelemetryEvent | None:
        """One event."""
        ...

    def delete_before(self, cutoff: datetime, limit: int) -> int:
        """Deletes the oldest events older than `cutoff`, at most `limit` of them, in one
        transaction; returns how many it deleted."""
        ...


def to_event(row: TelemetryEventRow) -> TelemetryEvent:
    """The domain record of a telemetry row."""
    return TelemetryEvent(
        id=row.id,
        driver_id=row.driver_id,
        qpu_id=row.qpu_id,
        type=row.type,
        payload_json=row.payload_json,
        event_time=row.event_time,
        created=row.created,
    )


class SqlTelemetryRepository(SqlRepository):
    """TelemetryRepository on SQLite or PostgreSQL."""

    def insert(
        self, driver_id: str, qpu_id: str, type_: str, payload_json: str, at: datetime
    ) -> None:
        row = TelemetryEventRow(
            driver_id=driver_id, qpu_id=qpu_id, type=type_, payload_json=payload_json, event_time=at
        )
        with self._session() as s:
            s.add(row)
            s.commit()

    def get(self, event_id: str) -> TelemetryEvent | None:
        with self._session() as s:
            row = s.get(TelemetryEventRow, event_id)
        return to_event(row) if row else None

    def delete_before(self, cutoff: datetime, limit: int) -> int:
        oldest = (
            select(TelemetryEventRow.id)
            .where(col(TelemetryEventRow.event_time) < cutoff)
            .order_by(col(TelemetryEventRow.event_time), col(TelemetryEventRow.id))
            .limit(limit)
        )  # ix_telemetry_time_id: the batch is found without a scan
        batch = delete(TelemetryEventRow).where(col(TelemetryEventRow.id).in_(oldest))
        with self._session() as s:
            result: CursorResult[Any] = s.execute(batch)  # type: ignore[assignment]
            s.commit()
        return int(result.rowcount)
