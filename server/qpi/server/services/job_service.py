"""Jobs: submission, visibility, cancellation, leases and results.

Lease rules (exactly-once acceptance): a claim is a conditional UPDATE from `pending`
that bumps `attempt` and records the lease holder; a result is accepted only by a
conditional UPDATE matching `running` + that attempt + that driver. Anything else is
a duplicate or stale and is ignored (but acknowledged).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from qpi.server.domain import accounting
from qpi.server.domain import jobs as rules
from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, NotFoundError
from qpi.server.domain.policy import Booking, PendingJob, QueueSnapshot
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.services.qasm import count_qubits
from qpi.server.services.qpu_service import QpuService
from qpi.server.store.tables import JobRow, QpuRow, TimeSlotRow, UserRow

MEAS_RETURNS = {"single", "avg"}


@dataclass(frozen=True)
class SubmitRequest:
    """A job submission as plain data (built by the transport layer)."""

    circuits: Sequence[rules.CircuitSpec]
    shots: int
    meas_level: int | None
    meas_return: str
    qpu: str = ""
    request_id: str = ""
    acq_rotation: float | None = None
    acq_threshold: float | None = None


@dataclass(frozen=True)
class Claim:
    """A lease handed to a driver."""

    job_id: str
    attempt: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Revocation:
    """A running lease that must be cancelled on its driver."""

    job_id: str
    attempt: int
    driver_id: str


def _rowcount(result: Any) -> int:
    """Rows matched by an UPDATE (SQLAlchemy types execute() results too loosely)."""
    return int(result.rowcount)


def job_not_found(job_id: str) -> NotFoundError:
    """The error for an unknown or invisible job."""
    return NotFoundError("JOB_NOT_FOUND", f"Job {job_id} not found.", metadata={"job_id": job_id})


def _payload_document(v: rules.ValidatedPayload, req: SubmitRequest, qpu_id: str) -> dict[str, Any]:
    # The stored payload is exactly the REST/NNG wire shape, so compat transports can
    # forward it verbatim.
    circuits: list[dict[str, Any]] = []
    for c in v.circuits:
        entry: dict[str, Any] = {"circuit": c.qasm}
        if c.parameter_values:
            entry["parameter_values"] = [list(p) for p in c.parameter_values]
        if c.shots:
            entry["shots"] = c.shots
        circuits.append(entry)
    doc: dict[str, Any] = {
        "circuits": circuits,
        "shots": v.shots,
        "meas_level": v.meas_level,
        "meas_return": v.meas_return,
        "qpu_target": qpu_id,
    }
    if req.acq_rotation is not None:
        doc["acq_rotation"] = req.acq_rotation
    if req.acq_threshold is not None:
        doc["acq_threshold"] = req.acq_threshold
    return doc


class JobService:
    """Job use cases."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        events: EventBus,
        qpus: QpuService,
        limits: rules.JobLimits,
        job_timeout: float,
        max_result_bytes: int,
        max_qubits: Callable[[list[str]], int] | None = None,
        shot_times: accounting.ShotTimes | None = None,
        max_pending_per_user: int = 0,
    ) -> None:
        self._db = db
        self._shot_times = shot_times or accounting.ShotTimes(0.0)
        self._max_pending = max_pending_per_user
        self._clock = clock
        self._events = events
        self._qpus = qpus
        self._limits = limits
        self._job_timeout = job_timeout
        self._max_result_bytes = max_result_bytes
        # How circuits are parsed: in-process by default, a worker process in the server.
        self._max_qubits = max_qubits or (
            lambda sources: max(count_qubits(q, i) for i, q in enumerate(sources))
        )

    # -- user-facing -----------------------------------------------------------------

    def prepare(self, req: SubmitRequest) -> tuple[rules.ValidatedPayload, int]:
        """Validates a submission and parses its circuits (CPU only, no database).

        Kept apart from :meth:`submit` so transports can run it off the database thread.
        """
        validated = rules.validate_payload(
            req.circuits,
            shots=req.shots,
            meas_level=req.meas_level,
            meas_return=req.meas_return,
            limits=self._limits,
        )
        for name, value in (
            ("acq_rotation", req.acq_rotation),
            ("acq_threshold", req.acq_threshold),
        ):
            if value is not None and not math.isfinite(value):
                raise InvalidArgumentError("INVALID_FIELD", f"{name} must be finite.", field=name)
        return validated, self._max_qubits([c.qasm for c in validated.circuits])

    def submit(
        self,
        who: Principal,
        req: SubmitRequest,
        prepared: tuple[rules.ValidatedPayload, int] | None = None,
    ) -> JobRow:
        """Validates (unless `prepared`), routes and enqueues a job."""
        if req.request_id:
            existing = self._by_request_id(who.user_id, req.request_id)
            if existing is not None:
                return existing
        validated, qubits = prepared if prepared is not None else self.prepare(req)
        now = self._clock.now()
        try:
            # One transaction: balance check, routing and insert see the same state.
            with self._db.session() as s:
                # The row lock serialises one user's submits, so the pending limit holds.
                user = s.exec(
                    select(UserRow).where(UserRow.id == who.user_id).with_for_update()
                ).first()
                if user is None:
                    raise job_not_found("?")
                rules.ensure_can_submit(user.qpu_seconds, user.is_superuser)
                if self._max_pending:
                    accounting.ensure_can_queue(
                        self._count(s, who.user_id, "pending"), self._max_pending, user.is_superuser
                    )
                qpu = QpuService.route_in(s, req.qpu, qubits)
                shots = accounting.total_shots(validated.circuits, validated.shots)
                row = JobRow(
                    user_id=who.user_id,
                    qpu_id=qpu.id,
                    request_id=req.request_id or None,
                    payload_json=json.dumps(_payload_document(validated, req, qpu.id)),
                    estimated_seconds=accounting.estimate_seconds(
                        shots, self._shot_times.for_qpu(qpu.name)
                    ),
                    created=now,
                    updated=now,
                )
                s.add(row)
                s.commit()
        except IntegrityError:
            existing = self._by_request_id(who.user_id, req.request_id)
            if existing is None:
                raise
            return existing
        self._events.publish("job", row)
        self._events.publish("dispatch", qpu.id)
        return row

    @staticmethod
    def _count(s: Session, user_id: str, state: str) -> int:
        query = select(func.count()).where(JobRow.user_id == user_id, JobRow.state == state)
        return int(s.exec(query).one())

    def _by_request_id(self, user_id: str, request_id: str) -> JobRow | None:
        with self._db.session() as s:
            return s.exec(
                select(JobRow).where(JobRow.user_id == user_id, JobRow.request_id == request_id)
            ).first()

    def get(self, who: Principal, job_id: str) -> JobRow:
        """One visible job."""
        with self._db.session() as s:
            row = s.get(JobRow, job_id)
        if row is None or not who.can_see(row.user_id):
            raise job_not_found(job_id)
        return row

    def list_jobs(
        self,
        who: Principal,
        *,
        states: Sequence[str],
        qpu_id: str,
        all_users: bool,
        newest_first: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[JobRow], int]:
        """Visible jobs with filters."""
        if all_users:
            who.require_admin()
        query = select(JobRow)
        if not all_users:
            query = query.where(JobRow.user_id == who.user_id)
        if states:
            query = query.where(col(JobRow.state).in_(list(states)))
        if qpu_id:
            query = query.where(JobRow.qpu_id == qpu_id)
        order = col(JobRow.created).desc() if newest_first else col(JobRow.created).asc()
        with self._db.session() as s:
            total = s.exec(select(func.count()).select_from(query.subquery())).one()
            rows = s.exec(query.order_by(order, col(JobRow.id)).offset(offset).limit(limit)).all()
        return list(rows), int(total)

    def cancel(self, who: Principal, job_id: str) -> tuple[JobRow, Revocation | None]:
        """Cancels a pending or running job; a running lease must also be revoked."""
        self.get(who, job_id)  # visibility first: others' jobs are "not found"
        now = self._clock.now()
        with self._db.session() as s:
            # Row lock on PostgreSQL (SQLite serialises writers) so the lease we revoke is
            # the one we cancel, even if a dispatcher claims the job at the same moment.
            job = s.exec(select(JobRow).where(JobRow.id == job_id).with_for_update()).one()
            rules.ensure_can_cancel(job.state, job_id)
            revocation = None
            if job.state == "running" and job.lease_driver_id:
                revocation = Revocation(job_id, job.attempt, job.lease_driver_id)
            job.state, job.finished_at, job.updated = "cancelled", now, now
            job.lease_driver_id, job.lease_expires_at, job.lease_session = None, None, None
            s.add(job)
            s.commit()
        self._events.publish("job", job)
        self._events.publish("dispatch", job.qpu_id)
        return job, revocation

    # -- scheduling and leases -------------------------------------------------------

    def snapshot(self, qpu_id: str) -> tuple[QueueSnapshot, bool]:
        """What the policy needs for one QPU, and whether the QPU is enabled."""
        now = self._clock.now()
        with self._db.session() as s:
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
            active = [b for b in bookings if b.covers(now)]
            pending: list[PendingJob] = []
            funds = _Funds(s)
            oldest = self._oldest_pending(s, qpu_id, None, funds)
            if oldest:
                pending.append(oldest)
            finished: dict[str, Any] = {}
            for booking in active:
                mine = self._oldest_pending(s, qpu_id, booking.user_id, funds)
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

    @staticmethod
    def _oldest_pending(
        s: Session, qpu_id: str, user_id: str | None, funds: _Funds
    ) -> PendingJob | None:
        """The oldest pending job (of ``user_id``, if given) whose owner can pay for it.

        A user whose oldest job does not fit in their remaining balance is skipped as a
        whole (their jobs stay pending in order), so other users' jobs keep flowing.
        """
        skipped: set[str] = set()
        while True:
            query = select(
                JobRow.id, JobRow.user_id, JobRow.created, JobRow.estimated_seconds
            ).where(JobRow.qpu_id == qpu_id, JobRow.state == "pending")
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

    def claim(self, job_id: str, driver_id: str, session_id: str = "") -> Claim | None:
        """Atomically leases a pending job to a driver, reserving its estimated seconds.

        Returns None if someone else got it, or if its owner's remaining balance no longer
        covers the estimate (the next snapshot then skips that owner).
        """
        now = self._clock.now()
        with self._db.session() as s:
            job = s.get(JobRow, job_id)
            if job is None or job.state != "pending":
                return None
            # Locking the owner serialises reservations of one user across dispatchers
            # (SQLite has one writer anyway), so two QPUs cannot both spend the same seconds.
            owner = s.exec(
                select(UserRow).where(UserRow.id == job.user_id).with_for_update()
            ).first()
            if owner is None or not accounting.can_reserve(
                owner.qpu_seconds,
                _reserved(s, owner.id),
                job.estimated_seconds,
                owner.is_superuser,
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
                    lease_expires_at=now + timedelta(seconds=self._job_timeout),
                    started_at=now,
                    updated=now,
                )
            )
            s.commit()
            if _rowcount(result) != 1:
                return None
            row = s.get(JobRow, job_id)
            assert row is not None
        self._events.publish("job", row)
        return Claim(row.id, row.attempt, json.loads(row.payload_json))

    def complete(
        self,
        job_id: str,
        attempt: int,
        driver_id: str,
        *,
        result_json: str | None,
        error: str | None,
        execution_seconds: float,
    ) -> bool:
        """Stores a driver's result if it holds the current lease; charges the owner once."""
        if result_json is not None:
            problem = self._result_problem(result_json)
            if problem:
                result_json, error = None, problem
        seconds = execution_seconds if math.isfinite(execution_seconds) else 0.0
        now = self._clock.now()
        with self._db.session() as s:
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
            if _rowcount(updated) != 1:
                s.rollback()
                return False
            job = s.get(JobRow, job_id)
            assert job is not None
            user = s.exec(select(UserRow).where(UserRow.id == job.user_id).with_for_update()).one()
            charged, balance = rules.charge_seconds(seconds, user.qpu_seconds, user.is_superuser)
            user.qpu_seconds = balance
            job.charged_seconds = charged if not user.is_superuser else max(seconds, 0.0)
            s.add(user)
            s.add(job)
            s.commit()
        self._events.publish("job", job)
        self._events.publish("dispatch", job.qpu_id)
        return True

    def _result_problem(self, result_json: str) -> str:
        """Why a driver's result cannot be stored ("" when it can)."""
        size = len(result_json.encode())
        if size > self._max_result_bytes:
            return (
                f"The result is {size} bytes, above the server's limit of "
                f"{self._max_result_bytes} bytes."
            )
        try:
            if isinstance(json.loads(result_json), dict):
                return ""
        except ValueError:
            pass
        return "The driver sent a result that is not a JSON object."

    def release(self, job_id: str, attempt: int, driver_id: str) -> bool:
        """Returns one lease to the queue (driver hand-back)."""
        return bool(
            self._requeue(
                JobRow.id == job_id,
                col(JobRow.attempt) == attempt,
                col(JobRow.lease_driver_id) == driver_id,
            )
        )

    def requeue_driver(self, driver_id: str) -> list[str]:
        """Returns every lease of a driver to the queue at once."""
        return self._requeue(col(JobRow.lease_driver_id) == driver_id)

    def requeue_session(self, session_id: str) -> list[str]:
        """Returns the leases held by one (ended) driver stream to the queue at once."""
        return self._requeue(col(JobRow.lease_session) == session_id)

    def recover_stale(self) -> list[str]:
        """Requeues running jobs whose lease expired without heartbeats (last resort)."""
        now = self._clock.now()
        return self._requeue(col(JobRow.lease_expires_at) < now)

    def _requeue(self, *conditions: Any) -> list[str]:
        now = self._clock.now()
        with self._db.session() as s:
            rows = s.exec(
                select(JobRow).where(JobRow.state == "running", *conditions).limit(500)
            ).all()
            ids = [r.id for r in rows]
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
            fresh = s.exec(select(JobRow).where(col(JobRow.id).in_(ids))).all()
        for row in fresh:
            self._events.publish("job", row)
            self._events.publish("dispatch", row.qpu_id)
        return ids

    def renew_leases(self, driver_id: str) -> None:
        """Extends a live driver's leases (called on heartbeats)."""
        expires = self._clock.now() + timedelta(seconds=self._job_timeout)
        with self._db.session() as s:
            s.execute(
                update(JobRow)
                .where(col(JobRow.lease_driver_id) == driver_id, col(JobRow.state) == "running")
                .values(lease_expires_at=expires)
            )
            s.commit()

    def resume(
        self,
        driver_id: str,
        qpu_id: str,
        held: Sequence[tuple[str, int]],
        session_id: str = "",
    ) -> list[tuple[str, int]]:
        """Re-attaches leases a reconnecting driver still holds, if they are still current."""
        resumed: list[tuple[str, int]] = []
        expires = self._clock.now() + timedelta(seconds=self._job_timeout)
        with self._db.session() as s:
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
                if _rowcount(result) == 1:
                    resumed.append((job_id, attempt))
            s.commit()
        return resumed

    def leases_of(self, driver_id: str) -> list[tuple[str, int]]:
        """Running leases held by a driver."""
        with self._db.session() as s:
            rows = s.exec(
                select(JobRow.id, JobRow.attempt).where(
                    JobRow.lease_driver_id == driver_id, JobRow.state == "running"
                )
            ).all()
        return [(r[0], r[1]) for r in rows]

    def qpus_with_pending(self) -> list[str]:
        """QPUs whose queues are not empty."""
        with self._db.session() as s:
            return list(
                s.exec(select(JobRow.qpu_id).where(JobRow.state == "pending").distinct()).all()
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

    def __init__(self, s: Session) -> None:
        self._s = s
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
        return accounting.can_reserve(balance, reserved, estimate, is_superuser)


def display_names(db: Database, rows: Sequence[JobRow]) -> tuple[dict[str, str], dict[str, str]]:
    """QPU names and owner e-mails for a set of jobs (for display fields)."""
    qpu_ids = {r.qpu_id for r in rows}
    user_ids = {r.user_id for r in rows}
    with db.session() as s:
        qpus = dict(s.exec(select(QpuRow.id, QpuRow.name).where(col(QpuRow.id).in_(qpu_ids))).all())
        users = dict(
            s.exec(select(UserRow.id, UserRow.email).where(col(UserRow.id).in_(user_ids))).all()
        )
    return qpus, users
