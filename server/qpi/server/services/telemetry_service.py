"""Telemetry reported by drivers (cryostat readings, calibration data)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, delete, select

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, NotFoundError
from qpi.server.services.database import Database
from qpi.server.services.principal import Principal
from qpi.server.store.tables import TelemetryEventRow


class TelemetryService:
    """Stores and lists telemetry events."""

    def __init__(self, db: Database, clock: Clock, retention: float) -> None:
        self._db = db
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
        row = TelemetryEventRow(
            driver_id=driver_id,
            qpu_id=qpu_id,
            type=type_[:100],
            payload_json=payload_json,
            event_time=at or self._clock.now(),
        )
        with self._db.session() as s:
            s.add(row)
            s.commit()

    def list(
        self, who: Principal, type_: str, driver_id: str, offset: int, limit: int
    ) -> tuple[list[TelemetryEventRow], int]:
        """Newest first, with the total matching count (administrators)."""
        who.require_admin()
        query = select(TelemetryEventRow)
        if type_:
            query = query.where(TelemetryEventRow.type == type_)
        if driver_id:
            query = query.where(TelemetryEventRow.driver_id == driver_id)
        newest_first = (col(TelemetryEventRow.event_time).desc(), col(TelemetryEventRow.id))
        with self._db.session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(query.order_by(*newest_first).offset(offset).limit(limit)).all()
        return list(rows), int(total)

    def get(self, who: Principal, event_id: str) -> TelemetryEventRow:
        """One event (administrators)."""
        who.require_admin()
        with self._db.session() as s:
            row = s.get(TelemetryEventRow, event_id)
        if row is None:
            raise NotFoundError(
                "TELEMETRY_EVENT_NOT_FOUND",
                f"Telemetry event {event_id} not found.",
                metadata={"id": event_id},
            )
        return row

    def prune(self) -> None:
        """Deletes events older than the retention period (0 keeps everything)."""
        if self._retention <= 0:
            return
        cutoff = self._clock.now() - timedelta(seconds=self._retention)
        with self._db.session() as s:
            s.execute(delete(TelemetryEventRow).where(col(TelemetryEventRow.event_time) < cutoff))
            s.commit()
