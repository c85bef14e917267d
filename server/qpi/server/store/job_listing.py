"""Job listings: filter, sort, page and count in one indexed SQL query each."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Connection

from qpi.server.domain.listing import ListQuery, SortKey, Total
from qpi.server.domain.models import Job
from qpi.server.store.base import SqlRepository
from qpi.server.store.jobs import read_display_names
from qpi.server.store.listing import (
    DATE,
    NUMBER,
    FieldSpec,
    Lookup,
    run_listing,
)
from qpi.server.store.tables import JobRow, QpuRow, UserRow

_JOBS = JobRow.__table__  # type: ignore[attr-defined]
_QPUS = QpuRow.__table__  # type: ignore[attr-defined]
_USERS = UserRow.__table__  # type: ignore[attr-defined]
JOB_STATES = ("pending", "running", "completed", "failed", "cancelled")

# The job fields of REST records (and of ListJobsRequest.filter), as columns. Every field
# sorts through an index (field, created, id), with and without the owner in front
# (migration 0012_listing_sorts); ties are broken by creation, then id.
JOB_FIELDS: Mapping[str, FieldSpec] = {
    "id": FieldSpec(_JOBS.c.id),
    "user_id": FieldSpec(_JOBS.c.user_id, lookup=Lookup(_JOBS.c.user_id, _USERS.c.id, _USERS.c.id)),
    "qpu_target": FieldSpec(_JOBS.c.qpu_id, nullable=True),
    "status": FieldSpec(_JOBS.c.state, choices=JOB_STATES),
    "created": FieldSpec(_JOBS.c.created, DATE),
    "updated": FieldSpec(_JOBS.c.updated, DATE),
    "finished_at": FieldSpec(_JOBS.c.finished_at, DATE, nullable=True),
    "duration": FieldSpec(_JOBS.c.charged_seconds, NUMBER),
    # The job keeps its QPU's name (renames follow, a deleted QPU's name stays); `~` finds
    # names in the QPU table and the jobs through the name index.
    "qpu_name": FieldSpec(
        _JOBS.c.qpu_name,
        lookup=Lookup(_JOBS.c.qpu_name, _QPUS.c.name, _QPUS.c.name),
        free_text=True,
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
    ) -> tuple[list[Job], Total | None]:
        """One page of `owner`'s jobs (everyone's for None) matching `query`, and the number
        of matches (None when `query.count_total` is false). Raises INVALID_FILTER."""
        ...

    def list_jobs_named(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[Job], Total | None, tuple[dict[str, str], dict[str, str]]]:
        """Like :meth:`list_jobs_query`, with the page's display names (QPU names and
        owner e-mails by id) read on the same connection."""
        ...


NEWEST_FIRST = (SortKey("created", descending=True),)


class SqlJobListing(SqlRepository):
    """JobListing on SQLite or PostgreSQL."""

    def list_jobs_query(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[Job], Total | None]:
        with self._engine.connect() as conn:
            return self._page(conn, owner, query, now)

    def list_jobs_named(
        self, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[Job], Total | None, tuple[dict[str, str], dict[str, str]]]:
        with self._engine.connect() as conn:
            jobs, total = self._page(conn, owner, query, now)
            qpu_ids = {j.qpu_id for j in jobs if j.qpu_id}
            return jobs, total, read_display_names(conn, qpu_ids, {j.user_id for j in jobs})

    @staticmethod
    def _page(
        conn: Connection, owner: str | None, query: ListQuery, now: datetime
    ) -> tuple[list[Job], Total | None]:
        scope = [] if owner is None else [_JOBS.c.user_id == owner]
        rows, total = run_listing(
            conn,
            _COLUMNS,
            scope,
            query,
            JOB_FIELDS,
            tie_breakers=[_JOBS.c.created, _JOBS.c.id],
            default_sort=NEWEST_FIRST,
            now=now,
        )
        # qpu_id is NULL once the QPU is deleted; the job keeps the QPU's name.
        return [Job(**{**r, "qpu_id": r["qpu_id"] or ""}) for r in rows], total
