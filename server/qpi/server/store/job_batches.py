"""Batch submission: many jobs of one owner in one transaction, idempotent per job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from qpi.server.domain.models import Job, User
from qpi.server.store.accounts import to_user
from qpi.server.store.base import DuplicateKeyError, SqlRepository
from qpi.server.store.jobs import NewJob
from qpi.server.store.tables import JobRow, UserRow
from qpi.server.store.types import new_id

_JOBS = JobRow.__table__  # type: ignore[attr-defined]
_USERS = UserRow.__table__  # type: ignore[attr-defined]

BatchAdmission = Callable[[User, Callable[[], int], Sequence[int]], list[NewJob]]
"""Decides the jobs at the given request indexes (the ones not submitted before) given
their locked owner and a count of the owner's pending jobs; raises to refuse the batch."""

_CREATED_STEP = timedelta(microseconds=1)
"""Batch jobs get increasing creation times, so the queue runs them in request order."""


class JobBatches(Protocol):
    """Inserts a batch of jobs all or nothing."""

    def insert_batch(
        self,
        user_id: str,
        request_ids: Sequence[str | None],
        now: datetime,
        admit: BatchAdmission,
    ) -> list[Job] | None:
        """One job per request id (None: no key), in order. Requests whose key the owner
        used before yield the job created then; `admit` builds the others while the owner's
        row is locked. None if there is no such user; DuplicateKeyError if a concurrent
        submission took a key meanwhile."""
        ...


def _job(values: dict[str, Any]) -> Job:
    return Job(
        id=values["id"],
        user_id=values["user_id"],
        qpu_id=values["qpu_id"],
        request_id=values["request_id"],
        payload_json=values["payload_json"],
        state="pending",
        result_json=None,
        error=None,
        attempt=0,
        lease_driver_id=None,
        charged_seconds=0.0,
        estimated_seconds=values["estimated_seconds"],
        created=values["created"],
        updated=values["updated"],
        started_at=None,
        finished_at=None,
    )


class SqlJobBatches(SqlRepository):
    """JobBatches on SQLite or PostgreSQL (one Core INSERT of all rows)."""

    def insert_batch(
        self,
        user_id: str,
        request_ids: Sequence[str | None],
        now: datetime,
        admit: BatchAdmission,
    ) -> list[Job] | None:
        keys = [k for k in request_ids if k]
        try:
            with self._engine.begin() as conn, self._lending(conn):
                owner_query = select(UserRow).where(_USERS.c.id == user_id).with_for_update()
                owner = conn.execute(owner_query).first()
                if owner is None:
                    return None
                existing: dict[str, Job] = {}
                if keys:
                    found = conn.execute(
                        select(JobRow).where(
                            _JOBS.c.user_id == user_id, _JOBS.c.request_id.in_(keys)
                        )
                    ).all()
                    for row in found:
                        job = Job(**{c: getattr(row, c) for c in Job.__dataclass_fields__})
                        existing[job.request_id or ""] = job
                fresh = [i for i, k in enumerate(request_ids) if not k or k not in existing]

                def pending() -> int:
                    query = select(func.count()).where(
                        _JOBS.c.user_id == user_id, _JOBS.c.state == "pending"
                    )
                    return int(conn.execute(query).scalar_one())

                admitted = admit(to_user(UserRow(**owner._mapping)), pending, fresh)
                rows = []
                for order, (index, new) in enumerate(zip(fresh, admitted, strict=True)):
                    created = now + _CREATED_STEP * order
                    rows.append(
                        {
                            "id": new_id(),
                            "user_id": user_id,
                            "qpu_id": new.qpu_id,
                            "qpu_name": new.qpu_name,
                            "request_id": request_ids[index] or None,
                            "payload_json": new.payload_json,
                            "state": "pending",
                            "attempt": 0,
                            "charged_seconds": 0.0,
                            "estimated_seconds": new.estimated_seconds,
                            "created": created,
                            "updated": created,
                        }
                    )
                if rows:
                    conn.execute(insert(_JOBS), rows)
        except IntegrityError as exc:
            raise DuplicateKeyError(",".join(keys)) from exc
        made = iter(_job(r) for r in rows)
        return [existing[k] if k and k in existing else next(made) for k in request_ids]
