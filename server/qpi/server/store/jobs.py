"""Jobs and their leases.

Lease rules (exactly-once acceptance): a claim is a conditional UPDATE from `pending`
that bumps `attempt` and records the lease holder; a result is accepted only by a
conditional UPDATE matching `running` + that attempt + that driver.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qpi.server.domain.models import Job, Revocation, User
from qpi.server.domain.policy import Booking, PendingJob, QueueSnapshot
from qpi.server.store.accounts import to_user
from qpi.server.store.base import DuplicateKeyError, SqlRepository, rowcount
from qpi.server.store.tables import JobRow, QpuRow, TimeSlotRow, UserRow

ChargeRule = Callable[[float, bool], tuple[float, float]]
"""(owner's balance, owner is superuser) -> (seconds recorded on the job, new balance)."""

ReserveRule = Callable[[float, float, float, bool], bool]
"""(balance, seconds reserved by running jobs, job's estimate, is superuser) -> may start."""


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue, as admitted by the submit use case."""

    qpu_id: str
    payload_json: str
    estimated_seconds: float
    qpu_name: str = ""


Admission = Callable[[User, Callable[[], int]], NewJob]
"""Decides a submission given its (locked) owner and a count of the owner's pending jobs;
raises to refuse it."""


class JobRepository(Protocol):
    """What users' job use cases read and write."""

    def by_request_id(self, user_id: str, request_id: str) -> Job | None:
        """A user's job submitted with this idempotency key."""
        ...

    def insert(
        self, user_id: str, request_id: str | None, now: datetime, admit: Admission
    ) -> Job | None:
        """Enqueues the job `admit` builds while the owner's row is locked (so one user's
        submits are serialised); None if there is no such user. DuplicateKeyError if the
        request id was used already."""
        ...

    def get(self, job_id: str) -> Job | None:
        """One job."""
        ...

    def list_jobs(
        self,
        user_id: str | None,
        *,
        states: Sequence[str],
        qpu_id: str,
        newest_first: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Job], int]:
        """Jobs by creation time (one owner's, or everyone's for None), with the total."""
        ...

    def cancel(
        self, job_id: str, now: datetime, check: Callable[[str], None]
    ) -> tuple[Job, Revocation | None] | None:
        """Cancels a job under a row lock after `check(state)` allowed it; the running
        lease it ended, if any. None if there is no such job."""
        ...

    def display_names(
        self, qpu_ids: Collection[str], user_ids: Collection[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """QPU names and owner e-mails by id (display fields of jobs)."""
        ...


class LeaseRepository(Protocol):
    """What the dispatcher, the driver hub and recovery read and write."""

    def snapshot(
        self, qpu_id: str, now: datetime, can_reserve: ReserveRule
    ) -> tuple[QueueSnapshot, bool]:
        """What the queue policy needs for one QPU, and whether the QPU is enabled.

        Only jobs whose owners `can_reserve` their estimate count as pending; an owner
        whose oldest job does not fit is skipped as a whole, so others' jobs keep flowing.
        """
        ...

    def claim(
        self,
        job_id: str,
        driver_id: str,
        session_id: str,
        now: datetime,
        expires: datetime,
        can_reserve: ReserveRule,
    ) -> Job | None:
        """Leases a pending job, reserving its estimate under a lock on its owner; None if
        it is no longer pending or its owner can no longer reserve the estimate."""
        ...

    def complete(
        self,
        job_id: str,
        attempt: int,
        driver_id: str,
        *,
        result_json: str | None,
        error: str | None,
        now: datetime,
        charge: ChargeRule,
    ) -> Job | None:
        """Finishes a job if that driver holds that attempt's lease, charging its owner in
        the same transaction; None for a stale or duplicate result."""
        ...

    def release(self, job_id: str, attempt: int, driver_id: str, now: datetime) -> list[Job]:
        """Returns one lease to the queue."""
        ...

    def requeue_driver(self, driver_id: str, now: datetime) -> list[Job]:
        """Returns every lease of a driver to the queue."""
        ...

    def requeue_session(self, session_id: str, now: datetime) -> list[Job]:
        """Returns the leases held by one driver stream to the queue."""
        ...

    def requeue_expired(self, now: datetime) -> list[Job]:
        """Returns leases that expired before `now` to the queue."""
        ...

    def renew_leases(self, driver_id: str, expires: datetime) -> list[tuple[str, int]]:
        """Extends every running lease of a driver; returns them (job id, attempt)."""
        ...

    def leases_of(self, driver_id: str) -> list[tuple[str, int]]:
        """Running leases (job id, attempt) held by a driver."""
        ...

    def resume(
        self,
        driver_id: str,
        qpu_id: str,
        held: Sequence[tuple[str, int]],
        session_id: str,
        expires: datetime,
    ) -> list[tuple[str, int]]:
        """Re-attaches the still-current leases a reconnecting driver holds."""
        ...


def to_job(row: JobRow) -> Job:
    """The domain record of a job row."""
    return Job(
        id=row.id,
        user_id=row.user_id,
        qpu_id=row.qpu_id or "",
        qpu_name=row.qpu_name,
        request_id=row.request_id,
        payload_json=row.payload_json,
        state=row.state,
        result_json=row.result_json,
        error=row.error,
        attempt=row.attempt,
        lease_driver_id=row.lease_driver_id,
        charged_seconds=row.charged_seconds,
        estimated_seconds=row.estimated_seconds,
        created=row.created,
        updated=row.updated,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _reserved(s: Session, user_id: str) -> float:
    """Seconds reserved by a user's running jobs."""
    total = s.exec(
        select(func.coalesce(func.sum(JobRow.estimated_seconds), 0.0)).where(
            JobRow.user_id == user_id, JobRow.state == "running"
        )
    ).one()
    return float(total)


class _Funds:
    """Balances and reservations looked up once per dispatch snapshot."""

    def __init__(self, s: Session, rule: ReserveRule) -> None:
        self._s = s
        self._rule = rule
        self._known: dict[str, tuple[float, float, bool] | None] = {}

    def can_reserve(self, user_id: str, estimate: float) -> bool:
        """Whether ``user_id`` may start a job with ``estimate`` now."""
        if user_id not in self._known:
            user = self._s.get(UserRow, user_id)
            self._known[user_id] = (
                None
                if user is None
                else (user.qpu_seconds, _reserved(self._s, user_id), user.is_superuser)
            )
        known = self._known[user_id]
        if known is None:
            return False
        balance, reserved, is_superuser = known
        return self._rule(balance, reserved, estimate, is_superuser)


def _oldest_pending(
    s: Session, qpu_id: str, user_id: str | None, funds: _Funds
) -> PendingJob | None:
    """The oldest pending job (of ``user_id``, if given) whose owner can pay for it."""
    skipped: set[str] = set()
    while True:
        query = select(JobRow.id, JobRow.user_id, JobRow.created, JobRow.estimated_seconds).where(
            JobRow.qpu_id == qpu_id, JobRow.state == "pending"
        )
        if user_id:
            query = query.where(JobRow.user_id == user_id)
        if skipped:
            query = query.where(col(JobRow.user_id).not_in(skipped))
        row = s.exec(query.order_by(col(JobRow.created), col(JobRow.id)).limit(1)).first()
        if row is None:
            return None
        if funds.can_reserve(row[1], row[3]):
            return PendingJob(row[0], row[1], qpu_id, row[2])
        if user_id:
            return None
        skipped.add(row[1])


_REQUEUE_LIMIT = 500


class SqlJobRepository(SqlRepository):
    """JobRepository and LeaseRepository on SQLite or PostgreSQL."""

    # -- users' side ------------------------------------------------------------------

    def by_request_id(self, user_id: str, request_id: str) -> Job | None:
        with self._session() as s:
            row = s.exec(
                select(JobRow).where(JobRow.user_id == user_id, JobRow.request_id == request_id)
            ).first()
        return to_job(row) if row else None

    def insert(
        self, user_id: str, request_id: str | None, now: datetime, admit: Admission
    ) -> Job | None:
        try:
            with self._session() as s:
                owner = s.exec(
                    select(UserRow).where(UserRow.id == user_id).with_for_update()
                ).first()
                if owner is None:
                    return None

                def pending() -> int:
                    query = select(func.count()).where(
                        JobRow.user_id == user_id, JobRow.state == "pending"
                    )
                    return int(s.exec(query).one())

                new = admit(to_user(owner), pending)
                row = JobRow(
                    user_id=user_id,
                    qpu_id=new.qpu_id,
                    qpu_name=new.qpu_name,
                    request_id=request_id,
                    payload_json=new.payload_json,
                    estimated_seconds=new.estimated_seconds,
                    created=now,
                    updated=now,
                )
                s.add(row)
                s.commit()
        except IntegrityError as exc:
            raise DuplicateKeyError(request_id or "") from exc
        return to_job(row)

    def get(self, job_id: str) -> Job | None:
        with self._session() as s:
            row = s.get(JobRow, job_id)
        return to_job(row) if row else None

    def list_jobs(
        self,
        user_id: str | None,
        *,
        states: Sequence[str],
        qpu_id: str,
        newest_first: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Job], int]:
        query = select(JobRow)
        if user_id is not None:
            query = query.where(JobRow.user_id == user_id)
        if states:
            query = query.where(col(JobRow.state).in_(list(states)))
        if qpu_id:
            query = query.where(JobRow.qpu_id == qpu_id)
        order = col(JobRow.created).desc() if newest_first else col(JobRow.created).asc()
        with self._session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(query.order_by(order, col(JobRow.id)).offset(offset).limit(limit)).all()
        return [to_job(r) for r in rows], int(total)

    def cancel(
        self, job_id: str, now: datetime, check: Callable[[str], None]
    ) -> tuple[Job, Revocation | None] | None:
        with self._session() as s:
            # Row lock on PostgreSQL (SQLite serialises writers) so the lease we revoke is
            # the one we cancel, even if a dispatcher claims the job at the same moment.
            row = s.exec(select(JobRow).where(JobRow.id == job_id).with_for_update()).first()
            if row is None:
                return None
            check(row.state)
            revocation = None
            if row.state == "running" and row.lease_driver_id:
                revocation = Revocation(job_id, row.attempt, row.lease_driver_id)
            row.state, row.finished_at, row.updated = "cancelled", now, now
            row.lease_driver_id, row.lease_expires_at, row.lease_session = None, None, None
            s.add(row)
            s.commit()
        return to_job(row), revocation

    def display_names(
        self, qpu_ids: Collection[str], user_ids: Collection[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        with self._session() as s:
            qpus = dict(
                s.exec(
                    select(QpuRow.id, QpuRow.name).where(col(QpuRow.id).in_(list(qpu_ids)))
                ).all()
            )
            users = dict(
                s.exec(
                    select(UserRow.id, UserRow.email).where(col(UserRow.id).in_(list(user_ids)))
                ).all()
            )
        return qpus, users

    # -- leases -----------------------------------------------------------------------

    def snapshot(
        self, qpu_id: str, now: datetime, can_reserve: ReserveRule
    ) -> tuple[QueueSnapshot, bool]:
        with self._session() as s:
            qpu = s.get(QpuRow, qpu_id)
            if qpu is None:
                return QueueSnapshot(qpu_id, now), False
            slots = s.exec(
                select(TimeSlotRow)
                .where(
                    or_(col(TimeSlotRow.qpu_id).is_(None), col(TimeSlotRow.qpu_id) == qpu_id),
                    col(TimeSlotRow.end_time) > now,
                )
                .order_by(col(TimeSlotRow.start_time))
                .limit(20)
            ).all()
            bookings = [Booking(b.id, b.user_id, b.qpu_id, b.start_time, b.end_time) for b in slots]
            pending: list[PendingJob] = []
            funds = _Funds(s, can_reserve)
            oldest = _oldest_pending(s, qpu_id, None, funds)
            if oldest:
                pending.append(oldest)
            finished: dict[str, datetime] = {}
            for booking in (b for b in bookings if b.covers(now)):
                mine = _oldest_pending(s, qpu_id, booking.user_id, funds)
                if mine:
                    pending.append(mine)
                last = s.exec(
                    select(func.max(JobRow.finished_at)).where(
                        JobRow.qpu_id == qpu_id,
                        JobRow.user_id == booking.user_id,
                        col(JobRow.state).in_(("completed", "failed")),
                        col(JobRow.finished_at) >= booking.start,
                    )
                ).one()
                if last is not None:
                    finished[booking.user_id] = last
        return QueueSnapshot(qpu_id, now, pending, bookings, finished), qpu.enabled

    def claim(
        self,
        job_id: str,
        driver_id: str,
        session_id: str,
        now: datetime,
        expires: datetime,
        can_reserve: ReserveRule,
    ) -> Job | None:
        with self._session() as s:
            job = s.get(JobRow, job_id)
            if job is None or job.state != "pending":
                return None
            # Locking the owner serialises reservations of one user across dispatchers
            # (SQLite has one writer anyway), so two QPUs cannot both spend the same seconds.
            owner = s.exec(
                select(UserRow).where(UserRow.id == job.user_id).with_for_update()
            ).first()
            if owner is None or not can_reserve(
                owner.qpu_seconds, _reserved(s, owner.id), job.estimated_seconds, owner.is_superuser
            ):
                s.rollback()
                return None
            result = s.execute(
                update(JobRow)
                .where(col(JobRow.id) == job_id, col(JobRow.state) == "pending")
                .values(
                    state="running",
                    attempt=JobRow.attempt + 1,
                    lease_driver_id=driver_id,
                    lease_session=session_id or None,
                    lease_expires_at=expires,
                    started_at=now,
                    updated=now,
                )
            )
            s.commit()
            if rowcount(result) != 1:
                return None
            s.refresh(job)
        return to_job(job)

    def complete(
        self,
        job_id: str,
        attempt: int,
        driver_id: str,
        *,
        result_json: str | None,
        error: str | None,
        now: datetime,
        charge: ChargeRule,
    ) -> Job | None:
        with self._session() as s:
            updated = s.execute(
                update(JobRow)
                .where(
                    col(JobRow.id) == job_id,
                    col(JobRow.state) == "running",
                    col(JobRow.attempt) == attempt,
                    col(JobRow.lease_driver_id) == driver_id,
                )
                .values(
                    state="failed" if error is not None else "completed",
                    result_json=result_json,
                    error=error,
                    finished_at=now,
                    updated=now,
                    lease_driver_id=None,
                    lease_session=None,
                    lease_expires_at=None,
                )
            )
            if rowcount(updated) != 1:
                s.rollback()
                return None
            job = s.get(JobRow, job_id)
            assert job is not None
            user = s.exec(select(UserRow).where(UserRow.id == job.user_id).with_for_update()).one()
            job.charged_seconds, user.qpu_seconds = charge(user.qpu_seconds, user.is_superuser)
            s.add(user)
            s.add(job)
            s.commit()
        return to_job(job)

    def release(self, job_id: str, attempt: int, driver_id: str, now: datetime) -> list[Job]:
        return self._requeue(
            now,
            col(JobRow.id) == job_id,
            col(JobRow.attempt) == attempt,
            col(JobRow.lease_driver_id) == driver_id,
        )

    def requeue_driver(self, driver_id: str, now: datetime) -> list[Job]:
        return self._requeue(now, col(JobRow.lease_driver_id) == driver_id)

    def requeue_session(self, session_id: str, now: datetime) -> list[Job]:
        return self._requeue(now, col(JobRow.lease_session) == session_id)

    def requeue_expired(self, now: datetime) -> list[Job]:
        return self._requeue(now, col(JobRow.lease_expires_at) < now)

    def _requeue(self, now: datetime, *conditions: Any) -> list[Job]:
        with self._session() as s:
            ids = list(
                s.exec(
                    select(JobRow.id)
                    .where(JobRow.state == "running", *conditions)
                    .limit(_REQUEUE_LIMIT)
                ).all()
            )
            if not ids:
                return []
            s.execute(
                update(JobRow)
                .where(col(JobRow.id).in_(ids), col(JobRow.state) == "running", *conditions)
                .values(
                    state="pending",
                    lease_driver_id=None,
                    lease_session=None,
                    lease_expires_at=None,
                    started_at=None,
                    updated=now,
                )
            )
            s.commit()
            fresh = {r.id: r for r in s.exec(select(JobRow).where(col(JobRow.id).in_(ids))).all()}
        return [to_job(fresh[i]) for i in ids if i in fresh]

    def renew_leases(self, driver_id: str, expires: datetime) -> list[tuple[str, int]]:
        with self._session() as s:
            renewed = s.execute(
                update(JobRow)
                .where(col(JobRow.lease_driver_id) == driver_id, col(JobRow.state) == "running")
                .values(lease_expires_at=expires)
                .returning(col(JobRow.id), col(JobRow.attempt))
            ).all()
            s.commit()
        return [(row[0], row[1]) for row in renewed]

    def leases_of(self, driver_id: str) -> list[tuple[str, int]]:
        with self._session() as s:
            rows = s.exec(
                select(JobRow.id, JobRow.attempt).where(
                    JobRow.lease_driver_id == driver_id, JobRow.state == "running"
                )
            ).all()
        return [(r[0], r[1]) for r in rows]

    def resume(
        self,
        driver_id: str,
        qpu_id: str,
        held: Sequence[tuple[str, int]],
        session_id: str,
        expires: datetime,
    ) -> list[tuple[str, int]]:
        resumed: list[tuple[str, int]] = []
        with self._session() as s:
            for job_id, attempt in held:
                result = s.execute(
                    update(JobRow)
                    .where(
                        col(JobRow.id) == job_id,
                        col(JobRow.state) == "running",
                        col(JobRow.attempt) == attempt,
                        col(JobRow.qpu_id) == qpu_id,
                        or_(
                            col(JobRow.lease_driver_id) == driver_id,
                            col(JobRow.lease_driver_id).is_(None),
                        ),
                    )
                    .values(
                        lease_driver_id=driver_id,
                        lease_session=session_id or None,
                        lease_expires_at=expires,
                    )
                )
                if rowcount(result) == 1:
                    resumed.append((job_id, attempt))
            s.commit()
        return resumed
