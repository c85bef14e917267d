"""Job listings: filter, sort, page and count in one indexed SQL query each."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select

from qpi.server.domain.listing import ListQuery, SortKey
from qpi.server.domain.models import Job
from qpi.server.store.base import SqlRepository
from qpi.server.store.listing import (
    DATE,
    NUMBER,
    FieldSpec,
    Lookup,
    run_listing,
)
from qpi.server.store.tables import JobRow, QpuRow

_JOBS = JobRow.__table__  # type: ignore[attr-defined]
_QPUS = QpuRow.__table__  # type: ignore[attr-defined]

# The job fields of REST records (and of ListJobsRequest.filter), as columns.
JOB_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_JOBS.c.id),
    "user_id": FieldSpec(_JOBS.c.user_id),
    "qpu_target": FieldSpec(_JOBS.c.qpu_id),
    "status": FieldSpec(_JOBS.c.state),
    "created": FieldSpec(_JOBS.c.created, DATE),
    "updated": FieldSpec(_JOBS.c.updated, DATE),
    "finished_at": FieldSpec(_JOBS.c.finished_at, DATE, nullable=True),
    "duration": FieldSpec(_JOBS.c.charged_seconds, NUMBER),
    # Sorted through a correlated lookup, filtered through a semi-join on the QPU table.
    "qpu_name": FieldSpec(
        func.coalesce(
            select(_QPUS.c.name).where(_QPUS.c.id == _JOBS.c.qpu_id).scalar_subquery(),
            _JOBS.c.qpu_name,
        ),
        lookup=Lookup(_JOBS.c.qpu_id, _QPUS.c.id, _QPUS.c.name),
    ),
}
_COLUMNS = [
    _JOBS.c[name]
    for name in (
        "id",
        "user_id",
        "qpu_id",
        "request_id",
        "payload_json",
        "state",
        "result_json",
        "error",
        "attempt",
        "lease_driver_id",
        "charged_seconds",
        "estimated_seconds",
        "created",
        "updated",
        "started_at",
        "finished_at",
        "qpu_name",
    )
]


class JobListing(Protocol):
    """Lists jobs by an arbitrary filter and order, a page at a time."""

    def list_jobs_query(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[Job], int | None]:
        """One page of `owner`'s jobs (everyone's for None) matching `query`, and the number
        of matches (None when `query.count_total` is false). Raises INVALID_FILTER."""
        ...


NEWEST_FIRST = (SortKey("created", descending=True),)


class SqlJobListing(SqlRepository):
    """JobListing on SQLite or PostgreSQL."""

    def list_jobs_query(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[Job], int | None]:
        scope = [] if owner is None else [_JOBS.c.user_id == owner]
        with self._engine.connect() as conn:
            rows, total = run_listing(
                conn,
                _COLUMNS,
                scope,
                query,
                JOB_FIELDS,
                tie_breaker=_JOBS.c.id,
                default_sort=NEWEST_FIRST,
                now=now,
            )
        # qpu_id is NULL once the QPU is deleted; the job keeps the QPU's name.
        return [Job(**{**r, "qpu_id": r["qpu_id"] or ""}) for r in rows], total
