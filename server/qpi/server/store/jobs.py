"""Jobs and their leases.

Lease rules (exactly-once acceptance): a claim is a conditional UPDATE from `pending`
that bumps `attempt` and records the lease holder; a result is accepted only by a
conditional UPDATE matching `running` + that attempt + that driver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

import psycopg
from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    exists,
    func,
    insert,
    or_,
    true,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import FromClause
from sqlmodel import col, select

from qpi.server.domain.errors import QpiError
from qpi.server.domain.models import Job, LeaseOffer, Qpu, Revocation, User
from qpi.server.domain.policy import Booking, PendingJob, QueueSnapshot
from qpi.server.store.account_rows import USER_COLUMNS, user_of_row
from qpi.server.store.admission_guards import GENERIC_PLANS, guarded_insert, qpu_params
from qpi.server.store.base import (
    DuplicateKeyError,
    SqlRepository,
    capped_count,
    in_state,
    rowcount,
)
from qpi.server.store.loop_connections import BUSY, LoopConnections
from qpi.server.store.prepared import Prepared, rows_together
from qpi.server.store.qpu_rows import QPU_BY_KEY, qpu_of_row
from qpi.server.store.tables import JOBS, QPUS, TIME_SLOTS, USERS, JobRow
from qpi.server.store.types import new_id

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


@dataclass(frozen=True)
class Completion:
    """One driver result to store (see :meth:`LeaseRepository.complete`)."""

    job_id: str
    attempt: int
    driver_id: str
    result_json: str | None
    error: str | None
    charge: ChargeRule


Admission = Callable[[User, int, Qpu | None], NewJob]
"""Decides a submission given its (locked) owner, the owner's pending jobs counted up to
the insert's `pending_cap` (so the count costs the same in any queue; 0 without a cap),
and the QPU its `qpu_key` names (None without a key, or if there is no such QPU); raises
to refuse it."""

Route = Callable[[Qpu], NewJob]
"""An :data:`Admission` for a known QPU, without the owner's checks (see `insert`)."""


class NotStored(Enum):
    """Why :meth:`JobRepository.insert_on_loop` stored nothing."""

    UNTRIED = "untried"
    """Nothing was sent: no QPU row known for the key, or no free connection on the loop;
    :meth:`JobRepository.insert` may still build the job."""
    REFUSED = "refused"
    """A guard refused (or the known QPU refuses the job): only the full admission of
    :meth:`JobRepository.insert`, with `route` left out, can decide and say why."""


class JobRepository(Protocol):
    """What users' job use cases read and write."""

    def by_request_id(self, user_id: str, request_id: str) -> Job | None:
        """A user's job submitted with this idempotency key."""
        ...

    def insert(
        self,
        user_id: str,
        request_id: str | None,
        now: datetime,
        admit: Admission,
        *,
        pending_cap: int = 0,
        qpu_key: str = "",
        offer: LeaseOffer | None = None,
        can_reserve: ReserveRule | None = None,
        route: Route | None = None,
    ) -> tuple[Job, bool] | None:
        """Enqueues the job `admit` builds while the owner's row is locked (so one user's
        submits are serialised), and whether it is new: the owner's earlier job of the
        same request id is returned as it is, without admitting anything. None if there
        is no such user. DuplicateKeyError if the request id was used meanwhile.

        With an `offer` (a driver's free slot), a job admitted to the offer's QPU is
        stored already running on that driver when no job is pending there (nothing to
        overtake) and `can_reserve` lets its owner start it, exactly as a claim would;
        otherwise it is stored pending.

        `route` is `admit` without the owner's checks (the rules of
        :mod:`qpi.server.store.admission_guards`): given, and the QPU `qpu_key` names
        read before, the store may build the job first and insert it with those checks
        as SQL conditions, in one round trip."""
        ...

    async def insert_on_loop(
        self,
        user_id: str,
        request_id: str | None,
        now: datetime,
        route: Route,
        *,
        qpu_key: str,
        pending_cap: int = 0,
        offer: LeaseOffer | None = None,
    ) -> tuple[Job, bool] | NotStored:
        """:meth:`insert`'s one-round-trip way only (a QPU named by `qpu_key` read before),
        sent from the event loop where the store can (PostgreSQL); never waits for a
        connection. A leased job's `offer` is taken only when its owner can reserve the
        estimate (the guard's form of `can_reserve`). A request id used before is
        REFUSED: `insert` returns the job that used it."""
        ...

    def submit_group(self) -> AbstractContextManager[bool]:
        """One transaction that every :meth:`insert` and :meth:`by_request_id` on this
        thread joins until the block ends (group commit of concurrent submits): an insert
        refused by its admission or its request id leaves the others in place; the block
        commits them all at its end, or none if it raises. Yields whether the inserts do
        share it (False where each keeps a transaction of its own)."""
        ...

    def get(self, job_id: str) -> Job | None:
        """One job."""
        ...

    def get_named(self, job_id: str) -> tuple[Job, str, str] | None:
        """One job with its QPU's current name and its owner's e-mail ("" when gone)."""
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

    def dispatch_round(self) -> AbstractContextManager[None]:
        """Makes the snapshot and claim inside it (same thread) one transaction that
        skips candidates another replica is claiming, where the store can (PostgreSQL)."""
        ...

    def claim_batch(self) -> AbstractContextManager[None]:
        """Makes the rounds inside it (same thread) share one transaction where that is
        safe (SQLite, one writer); on PostgreSQL each round stays its own transaction."""
        ...

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

    def complete_many(self, results: Sequence[Completion], now: datetime) -> list[Job | None]:
        """:meth:`complete` for several results in one transaction (one commit), in order."""
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

    def extend_expiring_leases(self, expires: datetime) -> int:
        """Moves every running lease that would expire before `expires` to `expires`;
        returns how many moved."""
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


# -- prebuilt Core statements of the hot path ----------------------------------------------
# Built once at import: the ORM's per-call unit-of-work and identity-map bookkeeping cost
# more than the SQL itself here (0.5 ms per Session.get against 0.04 ms per statement).

J, U = JOBS.c, USERS.c
_JOB_COLUMNS = (
    J.id,
    J.user_id,
    J.qpu_id,
    J.request_id,
    J.payload_json,
    J.state,
    J.result_json,
    J.error,
    J.attempt,
    J.lease_driver_id,
    J.charged_seconds,
    J.estimated_seconds,
    J.created,
    J.updated,
    J.started_at,
    J.finished_at,
    J.qpu_name,
)  # the order of Job's fields, so a row maps with _job(row)

_GET_JOB = Prepared(core_select(*_JOB_COLUMNS).where(J.id == bindparam("id")))
# A job with its display names (current QPU name, owner's e-mail) in one statement.
_GET_NAMED_JOB = Prepared(
    core_select(*_JOB_COLUMNS, QPUS.c.name, U.email)
    .select_from(JOBS.outerjoin(QPUS, QPUS.c.id == J.qpu_id).outerjoin(USERS, U.id == J.user_id))
    .where(J.id == bindparam("id"))
)
_BY_REQUEST_ID = Prepared(
    core_select(*_JOB_COLUMNS).where(
        J.user_id == bindparam("user_id"), J.request_id == bindparam("request_id")
    )
)
_OWNER_QUERY = core_select(*USER_COLUMNS).where(U.id == bindparam("id"))
_OWNER = Prepared(_OWNER_QUERY)
_OWNER_LOCKED = Prepared(_OWNER_QUERY.with_for_update())
_LOCK_OWNER = Prepared(core_select(U.id).where(U.id == bindparam("id")).with_for_update())
_INSERT_JOB = Prepared(insert(JOBS).values({c.name: bindparam(c.name) for c in _JOB_COLUMNS}))
_LEASE_COLUMNS = (J.lease_session, J.lease_expires_at)
_INSERT_LEASED_JOB = Prepared(
    insert(JOBS).values({c.name: bindparam(c.name) for c in (*_JOB_COLUMNS, *_LEASE_COLUMNS)})
)
_GUARDED_INSERT = Prepared(guarded_insert(_JOB_COLUMNS, leased=False))
_GUARDED_LEASED_INSERT = Prepared(guarded_insert((*_JOB_COLUMNS, *_LEASE_COLUMNS), leased=True))
_QPU_ROWS_KEPT = 1024


def _in_state(table: FromClause, state: str) -> ColumnElement[bool]:
    return in_state(table.c.state, state)


# Whether a job is pending on a QPU, and what one user's running jobs reserve: whether a
# new job may skip the queue and start at once (read with the owner locked).
_LEASABLE = Prepared(
    core_select(
        exists().where(J.qpu_id == bindparam("qpu_id"), _in_state(JOBS, "pending")),
        core_select(func.coalesce(func.sum(J.estimated_seconds), 0.0))
        .where(J.user_id == bindparam("user_id"), _in_state(JOBS, "running"))
        .scalar_subquery(),
    )
)
_RUNNING = JOBS.alias("running_jobs")
_RESERVED = (
    core_select(func.coalesce(func.sum(_RUNNING.c.estimated_seconds), 0.0))
    .where(_RUNNING.c.user_id == U.id, _in_state(_RUNNING, "running"))
    .correlate(USERS)
    .scalar_subquery()
)
# Balance, superuser flag and running reservations of one user, in one statement.
_FUNDS = Prepared(
    core_select(U.qpu_seconds, U.is_superuser, _RESERVED).where(U.id == bindparam("id"))
)
# A pending job with its owner's funds, for a claim.
_CLAIMABLE_QUERY = (
    core_select(J.user_id, J.estimated_seconds, U.qpu_seconds, U.is_superuser, _RESERVED)
    .select_from(JOBS.join(USERS, USERS.c.id == J.user_id))
    .where(J.id == bindparam("id"), J.state == "pending")
)
_CLAIMABLE = Prepared(_CLAIMABLE_QUERY)
_CLAIMABLE_LOCKED = Prepared(_CLAIMABLE_QUERY.with_for_update(of=USERS))
_CLAIM = Prepared(
    update(JOBS)
    .where(J.id == bindparam("job_id"), J.state == "pending")
    .values(
        state="running",
        attempt=J.attempt + 1,
        lease_driver_id=bindparam("driver_id"),
        lease_session=bindparam("session_id"),
        lease_expires_at=bindparam("expires"),
        started_at=bindparam("now"),
        updated=bindparam("now"),
    )
    .returning(*_JOB_COLUMNS)
)
_LEASE_MATCH = (
    J.id == bindparam("job_id"),
    J.state == "running",
    J.attempt == bindparam("lease_attempt"),
    J.lease_driver_id == bindparam("lease_driver"),
)
# The owner of a job whose lease matches, with the balance a result charges.
_LEASED_OWNER_QUERY = (
    core_select(U.id, U.qpu_seconds, U.is_superuser)
    .select_from(JOBS.join(USERS, USERS.c.id == J.user_id))
    .where(*_LEASE_MATCH)
)
_LEASED_OWNER = Prepared(_LEASED_OWNER_QUERY)
_LEASED_OWNER_LOCKED = Prepared(_LEASED_OWNER_QUERY.with_for_update(of=USERS))
_OWNERS_LOCKED = (
    core_select(U.id)
    .select_from(JOBS.join(USERS, USERS.c.id == J.user_id))
    .where(J.id.in_(bindparam("ids", expanding=True)))
    .order_by(U.id)
    .with_for_update(of=USERS)
)
_COMPLETE = Prepared(
    update(JOBS)
    .where(*_LEASE_MATCH)
    .values(
        state=bindparam("new_state"),
        result_json=bindparam("new_result"),
        error=bindparam("new_error"),
        charged_seconds=bindparam("charged"),
        finished_at=bindparam("now"),
        updated=bindparam("now"),
        lease_driver_id=None,
        lease_session=None,
        lease_expires_at=None,
    )
    .returning(*_JOB_COLUMNS)
)
# Every driver heartbeat: its leases extended, and which they are.
_RENEW_LEASES = Prepared(
    update(JOBS)
    .where(J.lease_driver_id == bindparam("driver_id"), J.state == "running")
    .values(lease_expires_at=bindparam("expires"))
    .returning(J.id, J.attempt)
)
_SET_BALANCE = Prepared(
    update(USERS).where(U.id == bindparam("user_id")).values(qpu_seconds=bindparam("balance"))
)
# PostgreSQL: _COMPLETE and the owner's new balance in one statement (one round trip
# fewer per result); the balance is written only if the job was.
_COMPLETED = _COMPLETE.statement.cte("completed")
_COMPLETE_AND_CHARGE = Prepared(
    core_select(_COMPLETED).add_cte(
        update(USERS)
        .where(U.id == bindparam("user_id"), exists(core_select(_COMPLETED.c.id)))
        .values(qpu_seconds=bindparam("balance"))
        .cte("charged")
    )
)
# Only current and future slots: ordered by end time, so an index range over end_time
# starts at "now" and never reads the past ones (the policy takes bookings in any order).
_UPCOMING_SLOTS = (
    core_select(
        TIME_SLOTS.c.id,
        TIME_SLOTS.c.user_id,
        TIME_SLOTS.c.qpu_id,
        TIME_SLOTS.c.start_time,
        TIME_SLOTS.c.end_time,
    )
    .where(
        TIME_SLOTS.c.end_time > bindparam("now"),
        or_(TIME_SLOTS.c.qpu_id.is_(None), TIME_SLOTS.c.qpu_id == bindparam("qpu_id")),
    )
    .order_by(TIME_SLOTS.c.end_time)
    .limit(20)
)
_UPCOMING = _UPCOMING_SLOTS.subquery("upcoming")
# The QPU's enabled flag with those slots, in one round trip: no row when the QPU is gone,
# one row with NULL slot columns when nothing is booked.
_QPU_AND_SLOTS = Prepared(
    core_select(QPUS.c.enabled, *_UPCOMING.c)
    .select_from(QPUS.outerjoin(_UPCOMING, true()))
    .where(QPUS.c.id == bindparam("qpu_id"))
)
# Oldest first with the id as tie-breaker: matches ix_jobs_pending_qpu_created_id exactly,
# so the first row of the index range is the answer (no sort).
# With the owner's balance, superuser flag and reservations (as _FUNDS reads them), so a
# snapshot knows whether the candidate's owner can pay without another round trip.
_OLDEST_QUERY = (
    core_select(
        J.id, J.user_id, J.created, J.estimated_seconds, U.qpu_seconds, U.is_superuser, _RESERVED
    )
    .select_from(JOBS.join(USERS, USERS.c.id == J.user_id))
    .where(J.qpu_id == bindparam("qpu_id"), _in_state(JOBS, "pending"))
    .order_by(J.created, J.id)
    .limit(1)
)
_OLDEST = Prepared(_OLDEST_QUERY)
# The oldest two, where a round may read past the candidate (SQLite: nothing to lock):
# whether a second one exists tells the dispatcher if the queue is empty after this claim.
_OLDEST_TWO = Prepared(_OLDEST_QUERY.limit(2))
# Inside a dispatch round on PostgreSQL: the candidate stays locked until the round's claim
# commits, and another replica dispatching the same queue skips it for the next job
# instead of waiting for (then losing) the same one. Whether any other job is pending
# (locked or not) comes with it, so the round knows if this claim empties the queue
# without a further round (four round trips) to find out.
_OTHERS = JOBS.alias("others")
_OTHERS_PENDING = (
    exists()
    .where(
        _OTHERS.c.qpu_id == bindparam("qpu_id"),
        _in_state(_OTHERS, "pending"),
        _OTHERS.c.id != J.id,
    )
    .correlate(JOBS)
)
_OLDEST_UNCLAIMED = Prepared(
    _OLDEST_QUERY.add_columns(_OTHERS_PENDING).with_for_update(of=JOBS, skip_locked=True)
)
# Runs only while a booking is active (its IN list would not prepare).
_LAST_FINISHED = core_select(func.max(J.finished_at)).where(
    J.qpu_id == bindparam("qpu_id"),
    J.user_id == bindparam("user_id"),
    J.state.in_(("completed", "failed")),
    J.finished_at >= bindparam("since"),
)
_QPU_NAMES = core_select(QPUS.c.id, QPUS.c.name).where(
    QPUS.c.id.in_(bindparam("ids", expanding=True))
)
_USER_EMAILS = core_select(U.id, U.email).where(U.id.in_(bindparam("ids", expanding=True)))


def read_display_names(
    conn: Connection, qpu_ids: Collection[str], user_ids: Collection[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """QPU names and owner e-mails by id, read on `conn` (nothing read for no ids)."""
    qpus = {r[0]: r[1] for r in conn.execute(_QPU_NAMES, {"ids": list(qpu_ids)})} if qpu_ids else {}
    users = (
        {r[0]: r[1] for r in conn.execute(_USER_EMAILS, {"ids": list(user_ids)})}
        if user_ids
        else {}
    )
    return qpus, users


# A user's pending jobs, counted up to :cap (prebuilt: it runs on every submit).
_PENDING_OF = Prepared(
    capped_count(
        core_select(J.id)
        .where(J.user_id == bindparam("user_id"), J.state == "pending")
        # The index's own order, so PostgreSQL walks ix_jobs_user_state_qpu_created and
        # stops at the cap instead of scanning the table when it expects many matches.
        .order_by(J.qpu_id, J.created, J.id),
        bindparam("cap"),
    )
)


def _job(row: Any) -> Job:
    job = Job(*row)
    # qpu_id is NULL once the QPU is deleted (the job keeps its qpu_name).
    return job if job.qpu_id is not None else replace(job, qpu_id="")


class _Funds:
    """Balances and reservations looked up once per dispatch snapshot."""

    def __init__(self, conn: Connection, rule: ReserveRule) -> None:
        self._conn = conn
        self._rule = rule
        self._known: dict[str, tuple[float, float, bool] | None] = {}

    def learn(self, row: Any) -> None:
        """Keeps the owner's funds read along with a pending job (see _OLDEST_QUERY)."""
        self._known.setdefault(row[1], (row[4], float(row[6]), row[5]))

    def can_reserve(self, user_id: str, estimate: float) -> bool:
        """Whether ``user_id`` may start a job with ``estimate`` now."""
        if user_id not in self._known:
            row = _FUNDS.first(self._conn, {"id": user_id})
            self._known[user_id] = None if row is None else (row[0], float(row[2]), row[1])
        known = self._known[user_id]
        if known is None:
            return False
        balance, reserved, is_superuser = known
        return self._rule(balance, reserved, estimate, is_superuser)


def _oldest_pending(
    conn: Connection,
    qpu_id: str,
    user_id: str | None,
    funds: _Funds,
    oldest: Prepared = _OLDEST,
) -> PendingJob | None:
    """The oldest pending job (of ``user_id``, if given) whose owner can pay for it."""
    return _oldest_pending_and_completeness(conn, qpu_id, user_id, funds, oldest)[0]


def _oldest_pending_and_completeness(
    conn: Connection,
    qpu_id: str,
    user_id: str | None,
    funds: _Funds,
    oldest: Prepared = _OLDEST,
) -> tuple[PendingJob | None, bool]:
    """:func:`_oldest_pending`, and whether the store saw every pending job of the QPU:
    none at all, or only the one returned (known when asked for everyone's jobs with
    ``_OLDEST_TWO`` or ``_OLDEST_UNCLAIMED``; otherwise False)."""
    skipped: set[str] = set()
    complete = False
    while True:
        if user_id is None and not skipped and oldest is _OLDEST_TWO:
            rows = oldest.rows(conn, {"qpu_id": qpu_id})
            complete = len(rows) <= 1
            row = rows[0] if rows else None
        elif user_id is None and not skipped:
            row = oldest.first(conn, {"qpu_id": qpu_id})
            # SKIP LOCKED: no row can also mean another replica's round is claiming the
            # rest; that replica dispatches them (or its loop decides again).
            complete = oldest is _OLDEST_UNCLAIMED and (row is None or not row[7])
        else:
            query = oldest.statement
            if user_id:
                query = query.where(J.user_id == user_id)
            if skipped:
                query = query.where(J.user_id.not_in(skipped))
            row = conn.execute(query, {"qpu_id": qpu_id}).first()
        if row is None:
            return None, complete and not user_id and not skipped
        funds.learn(row)
        if funds.can_reserve(row[1], row[3]):
            return PendingJob(row[0], row[1], qpu_id, row[2]), complete and not skipped
        if user_id:
            return None, False
        skipped.add(row[1])


_REQUEUE_LIMIT = 500


def _insert_values(job: Job) -> dict[str, Any]:
    return {c.name: getattr(job, c.name) for c in _JOB_COLUMNS}


def _admission_reads(
    user_id: str,
    request_id: str | None,
    pending_cap: int,
    qpu_key: str,
    offer: LeaseOffer | None,
    locked: bool,
) -> list[tuple[Prepared, dict[str, Any]]]:
    """What a submit reads before its insert, owner (and its lock) first: the statements
    after it read with a snapshot taken once the lock is granted, so they see every
    earlier submit of this owner."""
    reads: list[tuple[Prepared, dict[str, Any]]] = [
        (_OWNER_LOCKED if locked else _OWNER, {"id": user_id})
    ]
    if request_id:
        reads.append((_BY_REQUEST_ID, {"user_id": user_id, "request_id": request_id}))
    if pending_cap:
        reads.append((_PENDING_OF, {"user_id": user_id, "cap": pending_cap}))
    if qpu_key:
        reads.append((QPU_BY_KEY, {"key": qpu_key}))
    if offer is not None:
        reads.append((_LEASABLE, {"qpu_id": offer.qpu_id, "user_id": user_id}))
    return reads


def _leasable(
    owner: User, new: NewJob, offer: LeaseOffer, row: Any, can_reserve: ReserveRule
) -> bool:
    """Whether a job may be stored leased on `offer`: it goes to the offer's QPU, nothing
    is pending there to overtake (`row`: _LEASABLE's), and its owner (locked) may reserve
    its estimate on top of their running jobs."""
    queued, reserved = row
    return (
        new.qpu_id == offer.qpu_id
        and not queued
        and can_reserve(
            owner.qpu_seconds, float(reserved), new.estimated_seconds, owner.is_superuser
        )
    )


def _built_insert(
    user_id: str,
    request_id: str | None,
    now: datetime,
    route: Route,
    qpu_row: Any,
    pending_cap: int,
    offer: LeaseOffer | None,
) -> tuple[Job, list[tuple[Prepared, dict[str, Any]]]] | None:
    """The job `route` builds for a QPU row read before, and the statements that store it
    if every guard agrees: on PostgreSQL generic plans (see GENERIC_PLANS) and the owner's
    lock (the insert's snapshot follows it), then the guarded insert, on any store. None
    if the QPU as read refuses the job."""
    try:
        new = route(qpu_of_row(qpu_row))
    except QpiError:
        return None
    lease = offer if offer is not None and new.qpu_id == offer.qpu_id else None
    job = _new_job(user_id, request_id, now, new, lease)
    params = _insert_values(job) | qpu_params(qpu_row) | {"cap": pending_cap}
    if lease is not None:
        params |= {"lease_session": lease.session_id, "lease_expires_at": lease.expires}
    insert_job = _GUARDED_LEASED_INSERT if lease is not None else _GUARDED_INSERT
    return job, [(GENERIC_PLANS, {}), (_LOCK_OWNER, {"id": user_id}), (insert_job, params)]


def _new_job(
    user_id: str, request_id: str | None, now: datetime, new: NewJob, lease: LeaseOffer | None
) -> Job:
    """A new job: pending, or with a `lease` as its first claim leaves it (running,
    attempt 1, on the offered driver)."""
    return Job(
        id=new_id(),
        user_id=user_id,
        qpu_id=new.qpu_id,
        qpu_name=new.qpu_name,
        request_id=request_id,
        payload_json=new.payload_json,
        state="running" if lease else "pending",
        result_json=None,
        error=None,
        attempt=1 if lease else 0,
        lease_driver_id=lease.driver_id if lease else None,
        charged_seconds=0.0,
        estimated_seconds=new.estimated_seconds,
        created=now,
        updated=now,
        started_at=now if lease else None,
        finished_at=None,
    )


class SqlJobRepository(SqlRepository):
    """JobRepository and LeaseRepository on SQLite or PostgreSQL."""

    def __init__(self, engine: Any, loop: LoopConnections | None = None) -> None:
        super().__init__(engine)
        self._loop = loop  # PostgreSQL connections the event loop drives (insert_on_loop)
        self._round = threading.local()  # a dispatch round's connection, per thread
        self._group = threading.local()  # a submit group's connection, per thread
        self._qpu_rows: dict[str, tuple[Any, ...]] = {}  # by submit key, see _insert_built

    @contextmanager
    def claim_batch(self) -> Iterator[None]:
        # PostgreSQL: a transaction over several claims would hold several owners' locks
        # and can deadlock against a batch of results; SQLite has one writer, and one
        # transaction saves a checkout and a commit per claim.
        if self._is_postgres or getattr(self._round, "conn", None) is not None:
            yield
            return
        with self._pinned_transaction():
            yield

    @contextmanager
    def dispatch_round(self) -> Iterator[None]:
        if not self._is_postgres:  # one writer: claims never race on SQLite
            yield
            return
        with self._pinned_transaction():
            yield

    @contextmanager
    def _pinned_transaction(self) -> Iterator[None]:
        """One transaction that this thread's snapshots and claims use until it ends."""
        with self._write_transaction() as conn:
            self._round.conn = conn
            try:
                yield
            finally:
                self._round.conn = None

    @contextmanager
    def _round_or(
        self, fresh: Callable[[], AbstractContextManager[Connection]]
    ) -> Iterator[Connection]:
        """The current dispatch round's connection, else a `fresh` one."""
        pinned = getattr(self._round, "conn", None)
        if pinned is not None:
            yield pinned
        else:
            with fresh() as conn:
                yield conn

    # -- users' side ------------------------------------------------------------------

    def by_request_id(self, user_id: str, request_id: str) -> Job | None:
        with self._reading() as conn:  # a submit group's transaction sees its own inserts
            found = _BY_REQUEST_ID.first(conn, {"user_id": user_id, "request_id": request_id})
        return _job(found) if found else None

    @contextmanager
    def submit_group(self) -> Iterator[bool]:
        if self._is_postgres:
            # An error aborts a whole PostgreSQL transaction, and owners locked across a
            # group could deadlock with claims: each submit keeps its own transaction.
            yield False
            return
        with self._engine.begin() as conn, self._lending(conn):
            self._group.conn = conn
            try:
                yield True
            finally:
                self._group.conn = None

    @contextmanager
    def _submit_transaction(self) -> Iterator[Connection]:
        """The submit group's transaction on this thread, else a transaction of its own."""
        grouped = getattr(self._group, "conn", None)
        if grouped is not None:
            yield grouped
            return
        with self._write_transaction() as conn:
            yield conn

    def insert(
        self,
        user_id: str,
        request_id: str | None,
        now: datetime,
        admit: Admission,
        *,
        pending_cap: int = 0,
        qpu_key: str = "",
        offer: LeaseOffer | None = None,
        can_reserve: ReserveRule | None = None,
        route: Route | None = None,
    ) -> tuple[Job, bool] | None:
        offer = offer if can_reserve is not None else None
        known = self._qpu_rows.get(qpu_key) if route is not None and qpu_key else None
        if known is not None and route is not None:
            built = self._insert_built(user_id, request_id, now, route, known, pending_cap, offer)
            if built is not None:
                return built
        # PostgreSQL: the owner's lock and every read after it go out in one round trip.
        reads = _admission_reads(
            user_id, request_id, pending_cap, qpu_key, offer, self._is_postgres
        )
        try:
            with self._submit_transaction() as conn, self._lending(conn):
                found = iter(rows_together(conn, reads))
                owner = next(found)
                earlier = next(found) if request_id else None
                pending = int(next(found)[0][0]) if pending_cap else 0
                named = next(found) if qpu_key else None
                lease_row = next(found)[0] if offer is not None else None
                self._remember_qpu(qpu_key, named[0] if named else None)
                if not owner:
                    return None
                if earlier:
                    return _job(earlier[0]), False
                user = user_of_row(owner[0])
                new = admit(user, pending, qpu_of_row(named[0]) if named else None)
                if offer and can_reserve and _leasable(user, new, offer, lease_row, can_reserve):
                    job = _new_job(user_id, request_id, now, new, offer)
                    lease = {"lease_session": offer.session_id, "lease_expires_at": offer.expires}
                    _INSERT_LEASED_JOB.write(conn, _insert_values(job) | lease, commit=True)
                    return job, True
                job = _new_job(user_id, request_id, now, new, None)
                _INSERT_JOB.write(conn, _insert_values(job), commit=True)
        except IntegrityError as exc:
            raise DuplicateKeyError(request_id or "") from exc
        return job, True

    def _insert_built(
        self,
        user_id: str,
        request_id: str | None,
        now: datetime,
        route: Route,
        qpu_row: Any,
        pending_cap: int,
        offer: LeaseOffer | None,
    ) -> tuple[Job, bool] | None:
        """The job built by `route` for the QPU row an earlier submit read, stored by one
        guarded insert (see :mod:`qpi.server.store.admission_guards`) after the owner's
        lock, in one round trip; None, with nothing written, when a guard refuses (or the
        QPU as read before refuses the job): the full admission then decides and says why.
        """
        built = _built_insert(user_id, request_id, now, route, qpu_row, pending_cap, offer)
        if built is None:
            return None
        job, steps = built
        if not self._is_postgres:  # one writer: no lock needed to serialise an owner
            steps = steps[-1:]
        try:
            with self._submit_transaction() as conn:
                inserted = rows_together(conn, steps, commit=True)[-1]
        except IntegrityError:
            return None  # the request id was used: the full admission returns that job
        return (job, True) if inserted else None

    async def insert_on_loop(
        self,
        user_id: str,
        request_id: str | None,
        now: datetime,
        route: Route,
        *,
        qpu_key: str,
        pending_cap: int = 0,
        offer: LeaseOffer | None = None,
    ) -> tuple[Job, bool] | NotStored:
        known = self._qpu_rows.get(qpu_key) if qpu_key else None
        if self._loop is None or known is None:
            return NotStored.UNTRIED
        built = _built_insert(user_id, request_id, now, route, known, pending_cap, offer)
        if built is None:
            return NotStored.REFUSED
        job, steps = built
        try:
            rows = await self._loop.transaction(steps)
        except psycopg.IntegrityError:
            return NotStored.REFUSED  # the request id was used (see _insert_built)
        if rows is BUSY:
            return NotStored.UNTRIED
        return (job, True) if rows[-1] else NotStored.REFUSED

    def _remember_qpu(self, key: str, row: Any) -> None:
        """Keeps the QPU row a submit read by `key`, for the next submits' guarded insert."""
        if not key:
            return
        if row is None:
            self._qpu_rows.pop(key, None)
            return
        if len(self._qpu_rows) >= _QPU_ROWS_KEPT and key not in self._qpu_rows:
            self._qpu_rows.clear()  # names and ids of existing QPUs only: rarely reached
        self._qpu_rows[key] = tuple(row)

    def get(self, job_id: str) -> Job | None:
        with self._reading() as conn:
            row = _GET_JOB.first(conn, {"id": job_id})
        return _job(row) if row else None

    def get_named(self, job_id: str) -> tuple[Job, str, str] | None:
        with self._reading() as conn:
            row = _GET_NAMED_JOB.first(conn, {"id": job_id})
        if row is None:
            return None
        *job, qpu_name, email = row
        return _job(job), qpu_name or "", email or ""

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
        with self._reading() as conn:
            return read_display_names(conn, qpu_ids, user_ids)

    # -- leases -----------------------------------------------------------------------

    def snapshot(
        self, qpu_id: str, now: datetime, can_reserve: ReserveRule
    ) -> tuple[QueueSnapshot, bool]:
        if not self._is_postgres:
            oldest = _OLDEST_TWO  # one writer: reading a second row locks nothing
        elif getattr(self._round, "conn", None):
            oldest = _OLDEST_UNCLAIMED
        else:
            oldest = _OLDEST
        with self._round_or(self._engine.connect) as conn:
            rows = _QPU_AND_SLOTS.rows(conn, {"now": now, "qpu_id": qpu_id})
            if not rows:
                return QueueSnapshot(qpu_id, now), False
            enabled = rows[0][0]
            bookings = [Booking(*row[1:]) for row in rows if row[1] is not None]
            pending: list[PendingJob] = []
            funds = _Funds(conn, can_reserve)
            first, complete = _oldest_pending_and_completeness(conn, qpu_id, None, funds, oldest)
            if first:
                pending.append(first)
            finished: dict[str, datetime] = {}
            for booking in (b for b in bookings if b.covers(now)):
                mine = _oldest_pending(conn, qpu_id, booking.user_id, funds, oldest)
                if mine:
                    pending.append(mine)
                last = conn.execute(
                    _LAST_FINISHED,
                    {"qpu_id": qpu_id, "user_id": booking.user_id, "since": booking.start},
                ).scalar()
                if last is not None:
                    finished[booking.user_id] = last
        snapshot = QueueSnapshot(qpu_id, now, pending, bookings, finished, complete=complete)
        return snapshot, bool(enabled)

    def claim(
        self,
        job_id: str,
        driver_id: str,
        session_id: str,
        now: datetime,
        expires: datetime,
        can_reserve: ReserveRule,
    ) -> Job | None:
        # Locking the owner serialises reservations of one user across dispatchers
        # (SQLite has one writer anyway), so two QPUs cannot both spend the same seconds.
        claimable = _CLAIMABLE_LOCKED if self._is_postgres else _CLAIMABLE
        alone = getattr(self._round, "conn", None) is None  # else the round commits
        with self._round_or(self._write_transaction) as conn:
            found = claimable.first(conn, {"id": job_id})
            if found is None:
                return None
            _, estimate, balance, is_superuser, reserved = found
            if not can_reserve(balance, float(reserved), estimate, is_superuser):
                return None
            row = _CLAIM.first(
                conn,
                {
                    "job_id": job_id,
                    "driver_id": driver_id,
                    "session_id": session_id or None,
                    "expires": expires,
                    "now": now,
                },
                commit=alone,
            )
        return _job(row) if row else None

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
        done = Completion(job_id, attempt, driver_id, result_json, error, charge)
        with self._write_transaction() as conn:
            return self._complete_in(conn, done, now, last=True)

    def complete_many(self, results: Sequence[Completion], now: datetime) -> list[Job | None]:
        with self._write_transaction() as conn:
            if self._is_postgres and len(results) > 1:
                # Every owner of the batch locked at once, in id order: two transactions
                # storing results of the same users (another replica's batch, a claim)
                # then wait for each other instead of deadlocking.
                conn.execute(_OWNERS_LOCKED, {"ids": [done.job_id for done in results]}).all()
            last = len(results) - 1
            return [
                self._complete_in(conn, done, now, last=index == last)
                for index, done in enumerate(results)
            ]

    def _complete_in(
        self, conn: Connection, done: Completion, now: datetime, *, last: bool
    ) -> Job | None:
        """Stores one result; `last`: no statement follows in this transaction (so its
        COMMIT may travel with this one's)."""
        lease = {
            "job_id": done.job_id,
            "lease_attempt": done.attempt,
            "lease_driver": done.driver_id,
        }
        owner_query = _LEASED_OWNER_LOCKED if self._is_postgres else _LEASED_OWNER
        owner = owner_query.first(conn, lease)
        if owner is None:
            return None  # stale or duplicate: no write at all
        user_id, balance, is_superuser = owner
        charged, left = done.charge(balance, is_superuser)
        outcome = {
            **lease,
            "new_state": "failed" if done.error is not None else "completed",
            "new_result": done.result_json,
            "new_error": done.error,
            "charged": charged,
            "now": now,
        }
        if self._is_postgres:
            charged_to = {"user_id": user_id, "balance": left}
            row = _COMPLETE_AND_CHARGE.first(conn, outcome | charged_to, commit=last)
            return None if row is None else _job(row)
        row = _COMPLETE.first(conn, outcome)
        if row is None:
            return None
        _SET_BALANCE.write(conn, {"user_id": user_id, "balance": left})
        return _job(row)

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
        with self._write_transaction() as conn:
            renewed = _RENEW_LEASES.rows(
                conn, {"driver_id": driver_id, "expires": expires}, commit=True
            )
        return [(row[0], row[1]) for row in renewed]

    def extend_expiring_leases(self, expires: datetime) -> int:
        with self._session() as s:
            moved = s.execute(
                update(JobRow)
                .where(col(JobRow.state) == "running", col(JobRow.lease_expires_at) < expires)
                .values(lease_expires_at=expires)
            )
            s.commit()
        return rowcount(moved)

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
