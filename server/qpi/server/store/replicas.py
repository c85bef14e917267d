"""Replicas, the driver sessions they hold, and the status derived from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from qpi.server.domain.replicas import Replica, SessionHolder, SessionRecord
from qpi.server.store.base import SqlRepository, rowcount
from qpi.server.store.tables import DRIVER_SESSIONS, JOBS, QPUS, REPLICAS, DriverRow

TakeOverRule = Callable[[str, datetime, bool], bool]
"""(holder's replica id, its expiry, newcomer resumes the holder's leases) -> may replace."""

_DRIVERS = DriverRow.__table__  # type: ignore[attr-defined]


class ReplicaRepository(Protocol):
    """The replica registry and the cluster-wide directory of driver sessions."""

    def register(self, replica: Replica) -> None:
        """Adds or rewrites a replica's row (its sessions stay)."""
        ...

    def heartbeat(
        self, replica_id: str, now: datetime, expires: datetime, leader_since: datetime | None
    ) -> bool:
        """Renews a replica's row; False when it is gone (swept as dead)."""
        ...

    def remove(self, replica_ids: Sequence[str]) -> None:
        """Deletes replicas with their sessions."""
        ...

    def dead(self, now: datetime) -> list[str]:
        """Replicas whose row expired before `now`."""
        ...

    def others(self, replica_id: str) -> list[str]:
        """Every replica but this one."""
        ...

    def live(self, now: datetime) -> list[Replica]:
        """Replicas alive at `now`, oldest first."""
        ...

    def recompute_statuses(self, now: datetime) -> list[str]:
        """Derives every QPU's and driver's status from the sessions of live replicas;
        returns the QPUs whose status changed."""
        ...

    def claim_session(
        self,
        session: SessionRecord,
        held: Sequence[tuple[str, int]],
        now: datetime,
        may_take_over: TakeOverRule,
    ) -> SessionHolder | None:
        """Records `session` as its driver's stream unless `may_take_over` refuses to
        replace the recorded one; returns the refusing holder, else None."""
        ...

    def reclaim_session(self, session: SessionRecord, now: datetime) -> bool:
        """Records `session` only if its driver has no recorded stream at all."""
        ...

    def release_session(self, driver_id: str, session_id: str) -> bool:
        """Forgets a stream if it is still the recorded one; whether it was."""
        ...

    def sessions_of(self, replica_id: str) -> dict[str, str]:
        """Recorded streams of a replica: driver id -> session id."""
        ...

    def qpu_executors(self, qpu_id: str, now: datetime) -> tuple[int, str]:
        """Executing streams of a QPU on live replicas, and one's executor kind."""
        ...

    def refresh_qpu(self, qpu_id: str, now: datetime) -> bool:
        """Derives one QPU's status from the executing streams of live replicas, in one
        transaction that replicas refreshing the same QPU take in turn; whether it changed."""
        ...


def _replica(row: Any) -> Replica:
    return Replica(
        id=row.id,
        host=row.host,
        grpc_port=row.grpc_port,
        http_port=row.http_port,
        version=row.version,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        expires_at=row.expires_at,
        leader_since=row.leader_since,
    )


def _session_values(session: SessionRecord, now: datetime) -> dict[str, Any]:
    return {
        "driver_id": session.driver_id,
        "session_id": session.session_id,
        "replica_id": session.replica_id,
        "qpu_id": session.qpu_id,
        "executes": session.executes,
        "executor": session.executor[:100],
        "host": session.host[:255],
        "started_at": now,
    }


_LIVE_SESSIONS = (
    select(DRIVER_SESSIONS)
    .join(REPLICAS, REPLICAS.c.id == DRIVER_SESSIONS.c.replica_id)
    .where(REPLICAS.c.expires_at >= bindparam("now"))
)
_LEASES_OF_SESSION = select(JOBS.c.id, JOBS.c.attempt).where(
    JOBS.c.lease_session == bindparam("session_id"), JOBS.c.state == "running"
)


_QPU_STATUS = select(QPUS.c.id, QPUS.c.status, QPUS.c.enabled, QPUS.c.executor)


def _store_status(conn: Connection, qpu: Any, executor: str | None, now: datetime) -> bool:
    """Writes "online" (an executing stream and enabled) or "offline", and the executor
    kind of a connected stream; whether anything changed."""
    status = "online" if executor is not None and qpu.enabled else "offline"
    kind = executor or qpu.executor
    if (status, kind) == (qpu.status, qpu.executor):
        return False
    conn.execute(
        update(QPUS).where(QPUS.c.id == qpu.id).values(status=status, executor=kind, updated=now)
    )
    return True


class SqlReplicaRepository(SqlRepository):
    """ReplicaRepository on SQLite or PostgreSQL."""

    def register(self, replica: Replica) -> None:
        values = {
            "id": replica.id,
            "host": replica.host[:255],
            "grpc_port": replica.grpc_port,
            "http_port": replica.http_port,
            "version": replica.version[:50],
            "started_at": replica.started_at,
            "heartbeat_at": replica.heartbeat_at,
            "expires_at": replica.expires_at,
            "leader_since": replica.leader_since,
        }
        with self._engine.begin() as conn:
            # An update when the row exists: deleting it would cascade to its sessions.
            found = conn.execute(
                update(REPLICAS).where(REPLICAS.c.id == replica.id).values(**values)
            )
            if rowcount(found) == 0:
                conn.execute(insert(REPLICAS).values(**values))

    def heartbeat(
        self, replica_id: str, now: datetime, expires: datetime, leader_since: datetime | None
    ) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(REPLICAS)
                .where(REPLICAS.c.id == replica_id)
                .values(heartbeat_at=now, expires_at=expires, leader_since=leader_since)
            )
        return rowcount(result) == 1

    def remove(self, replica_ids: Sequence[str]) -> None:
        if not replica_ids:
            return
        with self._engine.begin() as conn:
            # Explicitly, not only by ON DELETE CASCADE: a connection may lack FK enforcement.
            conn.execute(
                delete(DRIVER_SESSIONS).where(DRIVER_SESSIONS.c.replica_id.in_(replica_ids))
            )
            conn.execute(delete(REPLICAS).where(REPLICAS.c.id.in_(replica_ids)))

    def dead(self, now: datetime) -> list[str]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(REPLICAS.c.id).where(REPLICAS.c.expires_at < now))
            return [r[0] for r in rows]

    def others(self, replica_id: str) -> list[str]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(REPLICAS.c.id).where(REPLICAS.c.id != replica_id))
            return [r[0] for r in rows]

    def live(self, now: datetime) -> list[Replica]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(REPLICAS)
                .where(REPLICAS.c.expires_at >= now)
                .order_by(REPLICAS.c.started_at, REPLICAS.c.id)
            )
            return [_replica(r) for r in rows]

    def recompute_statuses(self, now: datetime) -> list[str]:
        with self._engine.begin() as conn:
            sessions = conn.execute(_LIVE_SESSIONS, {"now": now}).all()
            online_drivers = {s.driver_id for s in sessions}
            executors: dict[str, str] = {}
            for s in sessions:
                if s.executes:
                    executors.setdefault(s.qpu_id, s.executor)
            for row in conn.execute(select(_DRIVERS.c.id, _DRIVERS.c.status)).all():
                status = "online" if row.id in online_drivers else "offline"
                if row.status != status:
                    conn.execute(
                        update(_DRIVERS).where(_DRIVERS.c.id == row.id).values(status=status)
                    )
            qpus = conn.execute(_QPU_STATUS).all()
            return [q.id for q in qpus if _store_status(conn, q, executors.get(q.id), now)]

    def refresh_qpu(self, qpu_id: str, now: datetime) -> bool:
        query = _QPU_STATUS.where(QPUS.c.id == qpu_id)
        with self._engine.begin() as conn:
            # Locked first, so a replica counting streams while another records one
            # cannot write its older answer last.
            qpu = conn.execute(query.with_for_update() if self._is_postgres else query).first()
            if qpu is None:
                return False
            executing = conn.execute(
                _LIVE_SESSIONS.where(
                    DRIVER_SESSIONS.c.qpu_id == qpu_id, DRIVER_SESSIONS.c.executes.is_(True)
                ).order_by(DRIVER_SESSIONS.c.started_at),
                {"now": now},
            ).first()
            return _store_status(conn, qpu, executing.executor if executing else None, now)

    def claim_session(
        self,
        session: SessionRecord,
        held: Sequence[tuple[str, int]],
        now: datetime,
        may_take_over: TakeOverRule,
    ) -> SessionHolder | None:
        try:
            with self._engine.begin() as conn:
                holder = self._recorded(conn, session.driver_id)
                if holder is not None:
                    leases = {
                        (r[0], r[1])
                        for r in conn.execute(_LEASES_OF_SESSION, {"session_id": holder.session_id})
                    }
                    resumes = bool(leases & set(held))
                    if not may_take_over(holder.replica_id, holder.expires_at, resumes):
                        return SessionHolder(holder.replica_id, holder.replica_host, holder.host)
                    conn.execute(
                        delete(DRIVER_SESSIONS).where(
                            DRIVER_SESSIONS.c.driver_id == session.driver_id
                        )
                    )
                conn.execute(insert(DRIVER_SESSIONS).values(**_session_values(session, now)))
        except IntegrityError:
            # Another replica recorded a stream of this driver at the same moment.
            return SessionHolder("", "", "")
        return None

    def _recorded(self, conn: Connection, driver_id: str) -> Any:
        query = (
            select(
                DRIVER_SESSIONS.c.session_id,
                DRIVER_SESSIONS.c.replica_id,
                DRIVER_SESSIONS.c.host,
                REPLICAS.c.expires_at,
                REPLICAS.c.host.label("replica_host"),
            )
            .join(REPLICAS, REPLICAS.c.id == DRIVER_SESSIONS.c.replica_id)
            .where(DRIVER_SESSIONS.c.driver_id == driver_id)
        )
        if self._is_postgres:
            # Two replicas judging the same recorded stream decide one after the other.
            query = query.with_for_update(of=DRIVER_SESSIONS)
        return conn.execute(query).first()

    def reclaim_session(self, session: SessionRecord, now: datetime) -> bool:
        try:
            with self._engine.begin() as conn:
                if self._recorded(conn, session.driver_id) is not None:
                    return False
                conn.execute(insert(DRIVER_SESSIONS).values(**_session_values(session, now)))
        except IntegrityError:
            return False
        return True

    def release_session(self, driver_id: str, session_id: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(DRIVER_SESSIONS).where(
                    and_(
                        DRIVER_SESSIONS.c.driver_id == driver_id,
                        DRIVER_SESSIONS.c.session_id == session_id,
                    )
                )
            )
        return rowcount(result) == 1

    def sessions_of(self, replica_id: str) -> dict[str, str]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(DRIVER_SESSIONS.c.driver_id, DRIVER_SESSIONS.c.session_id).where(
                    DRIVER_SESSIONS.c.replica_id == replica_id
                )
            )
            return {r[0]: r[1] for r in rows}

    def qpu_executors(self, qpu_id: str, now: datetime) -> tuple[int, str]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                _LIVE_SESSIONS.where(
                    DRIVER_SESSIONS.c.qpu_id == qpu_id, DRIVER_SESSIONS.c.executes.is_(True)
                ).order_by(DRIVER_SESSIONS.c.started_at),
                {"now": now},
            ).all()
        return len(rows), (rows[0].executor if rows else "")
