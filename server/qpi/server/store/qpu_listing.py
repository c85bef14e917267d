"""QPU and driver listings: filter, sort, page and count in SQL (see store.listing).

Both tables hold one row per machine, so no index beyond their keys is needed; what
matters is that a page reads one page of rows and the same query language as every other
collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Protocol

from sqlalchemy import Integer, cast

from qpi.server.domain.listing import ListQuery, SortKey, Total
from qpi.server.domain.models import Driver, Qpu
from qpi.server.store.base import SqlRepository
from qpi.server.store.listing import DATE, NUMBER, FieldSpec, run_listing
from qpi.server.store.qpu_rows import to_qpu
from qpi.server.store.qpus import queue_lengths
from qpi.server.store.tables import DriverRow, QpuRow

_QPUS = QpuRow.__table__  # type: ignore[attr-defined]
_DRIVERS = DriverRow.__table__  # type: ignore[attr-defined]

# The fields of `qpus` records (`status` is kept current in the table by the driver hub).
QPU_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_QPUS.c.id),
    "name": FieldSpec(_QPUS.c.name, free_text=True),
    "status": FieldSpec(_QPUS.c.status, choices=("online", "offline")),
    "num_qubits": FieldSpec(_QPUS.c.num_qubits, NUMBER),
    "enabled": FieldSpec(cast(_QPUS.c.enabled, Integer), NUMBER),
    "created": FieldSpec(_QPUS.c.created, DATE),
    "updated": FieldSpec(_QPUS.c.updated, DATE),
}
BY_NAME = (SortKey("name"),)

# The fields of `drivers` records.
DRIVER_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_DRIVERS.c.id),
    "name": FieldSpec(_DRIVERS.c.name, free_text=True),
    "qpu": FieldSpec(_DRIVERS.c.qpu_id),
    "kind": FieldSpec(_DRIVERS.c.kind, free_text=True),
    "language": FieldSpec(_DRIVERS.c.language, free_text=True),
    "status": FieldSpec(_DRIVERS.c.status, choices=("online", "offline")),
    "enabled": FieldSpec(cast(_DRIVERS.c.enabled, Integer), NUMBER),
    "host": FieldSpec(_DRIVERS.c.host, free_text=True),
    "version": FieldSpec(_DRIVERS.c.version, free_text=True),
    "created": FieldSpec(_DRIVERS.c.created, DATE),
}
_DRIVER_COLUMNS = [
    _DRIVERS.c[n]
    for n in (
        "id",
        "name",
        "qpu_id",
        "kind",
        "language",
        "enabled",
        "status",
        "host",
        "version",
        "transport",
        "last_seen",
        "created",
    )
]
OLDEST_FIRST = (SortKey("created"),)


class QpuListing(Protocol):
    """Lists QPUs and drivers by an arbitrary filter and order, a page at a time."""

    def list_qpus_query(
        self, query: ListQuery, now: datetime
    ) -> tuple[list[tuple[Qpu, int]], Total | None]:
        """One page of QPUs matching `query` with their (capped) queue lengths, and the
        number of matches (None when not counted). Raises INVALID_FILTER."""
        ...

    def list_drivers_query(
        self, query: ListQuery, now: datetime
    ) -> tuple[list[Driver], Total | None]:
        """One page of drivers matching `query`, and the number of matches."""
        ...


class SqlQpuListing(SqlRepository):
    """QpuListing on SQLite or PostgreSQL."""

    def list_qpus_query(
        self, query: ListQuery, now: datetime
    ) -> tuple[list[tuple[Qpu, int]], Total | None]:
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                list(_QPUS.c),
                [],
                query,
                QPU_FIELDS,
                tie_breakers=[_QPUS.c.id],
                default_sort=BY_NAME,
                now=now,
            )
            lengths = queue_lengths(conn, [r["id"] for r in rows])
        qpus = [to_qpu(SimpleNamespace(**r)) for r in rows]
        return [(q, lengths.get(q.id, 0)) for q in qpus], total

    def list_drivers_query(
        self, query: ListQuery, now: datetime
    ) -> tuple[list[Driver], Total | None]:
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                _DRIVER_COLUMNS,
                [],
                query,
                DRIVER_FIELDS,
                tie_breakers=[_DRIVERS.c.id],
                default_sort=OLDEST_FIRST,
                now=now,
            )
        return [Driver(**r) for r in rows], total
