"""This replica's row in the registry, and the cluster-wide directory of driver streams.

Every replica heartbeats its row; every driver stream it accepts is recorded with it, so
QPU status is the union over live replicas and a driver token is refused on one replica
while a live other one holds it. The leader sweeps dead replicas (their rows, sessions,
and the status they implied); their drivers' leases stay `running` for the drivers to
report on reconnect (resume), or for stale-lease recovery once they expire.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import QpiError
from qpi.server.domain.replicas import (
    Replica,
    ReplicaTiming,
    SessionHolder,
    SessionRecord,
    may_take_over,
)
from qpi.server.drivers.session import DriverSession
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.store.replicas import ReplicaRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicaAddress:
    """Where this replica serves, for operators reading the registry."""

    host: str
    grpc_port: int
    http_port: int
    version: str


class ReplicaRegistry:
    """This replica's registration and the driver-session directory of the cluster.

    The synchronous methods are use cases for the database thread (`Database.run`).
    """

    def __init__(
        self,
        replicas: ReplicaRepository,
        clock: Clock,
        events: EventBus,
        timing: ReplicaTiming,
        *,
        sole_server: bool,
    ) -> None:
        self._replicas = replicas
        self._clock = clock
        self._events = events
        self.timing = timing
        self._sole = sole_server
        self.replica_id = uuid.uuid4().hex
        self.address = ReplicaAddress("", 0, 0, "")
        self.started_at = clock.now()
        self.leader_since: datetime | None = None

    # -- this replica ---------------------------------------------------------------------

    def join(self) -> None:
        """Registers this replica and clears what dead ones left behind.

        Only replicas known dead are cleared, so a new replica never takes a live one's
        QPUs offline; a sole server (SQLite) knows every other row is a past run of itself.
        """
        self.announce()
        now = self._clock.now()
        gone = self._replicas.others(self.replica_id) if self._sole else self._replicas.dead(now)
        self._replicas.remove(gone)
        self._publish(self._replicas.recompute_statuses(now))

    def announce(self) -> None:
        """Writes this replica's row (address, liveness, leadership)."""
        now = self._clock.now()
        a = self.address
        self._replicas.register(
            Replica(
                id=self.replica_id,
                host=a.host,
                grpc_port=a.grpc_port,
                http_port=a.http_port,
                version=a.version,
                started_at=self.started_at,
                heartbeat_at=now,
                expires_at=self.timing.expiry(now),
                leader_since=self.leader_since,
            )
        )

    def heartbeat(self) -> bool:
        """Renews this replica's row; re-registers if it was swept (False then)."""
        now = self._clock.now()
        if self._replicas.heartbeat(
            self.replica_id, now, self.timing.expiry(now), self.leader_since
        ):
            return True
        logger.warning(
            "[Cluster] replica %s was taken for dead (no heartbeat for %.0fs); registering again",
            self.replica_id,
            self.timing.timeout,
        )
        self.announce()
        return False

    def leave(self) -> None:
        """Removes this replica (clean stop): its drivers are free to connect elsewhere."""
        self._replicas.remove([self.replica_id])
        self._publish(self._replicas.recompute_statuses(self._clock.now()))

    def live_replicas(self) -> list[Replica]:
        """Replicas alive now, oldest first."""
        return self._replicas.live(self._clock.now())

    # -- the leader's sweep ---------------------------------------------------------------

    def sweep_dead(self) -> list[str]:
        """Removes replicas whose heartbeat expired, with their sessions, and re-derives
        QPU and driver status; returns the removed replicas.

        The sweeper is alive by definition: it renews its own row first, so a heartbeat
        that a stalled database thread delayed past the timeout never makes the leader
        sweep itself (and take its own drivers' QPUs offline).
        """
        self.heartbeat()
        now = self._clock.now()
        dead = [r for r in self._replicas.dead(now) if r != self.replica_id]
        if not dead:
            return []
        self._replicas.remove(dead)
        self._publish(self._replicas.recompute_statuses(now))
        logger.warning("[Cluster] removed dead replica(s) %s and their driver sessions", dead)
        return dead

    # -- the driver-session directory -----------------------------------------------------

    def claim(
        self, session: DriverSession, held: Sequence[tuple[str, int]]
    ) -> SessionHolder | None:
        """Records `session` as its driver's stream; returns the live holder that refuses
        it (see `may_take_over`), else None."""
        now = self._clock.now()
        return self._replicas.claim_session(
            self._record(session),
            held,
            now,
            lambda replica, expires, resumes: may_take_over(
                replica, expires, self.replica_id, now, resumes
            ),
        )

    def release(self, driver_id: str, session_id: str) -> bool:
        """Forgets an ended stream unless a newer one replaced it; whether it did."""
        return self._replicas.release_session(driver_id, session_id)

    def executors(self, qpu_id: str) -> tuple[int, str]:
        """Executing driver streams of a QPU on every live replica, and one's kind."""
        return self._replicas.qpu_executors(qpu_id, self._clock.now())

    def refresh_status(self, qpu_id: str) -> None:
        """Re-derives a QPU's status from the streams of every live replica."""
        if self._replicas.refresh_qpu(qpu_id, self._clock.now()):
            self._events.publish("qpu", qpu_id)

    def held_here(self) -> dict[str, str]:
        """Driver streams recorded for this replica: driver id -> session id."""
        return self._replicas.sessions_of(self.replica_id)

    def reclaim(self, session: DriverSession) -> bool:
        """Records a live local stream whose record vanished (this replica was swept
        while alive), unless another stream of its driver is recorded meanwhile."""
        return self._replicas.reclaim_session(self._record(session), self._clock.now())

    def _record(self, session: DriverSession) -> SessionRecord:
        return SessionRecord(
            driver_id=session.driver_id,
            session_id=session.session_id,
            replica_id=self.replica_id,
            qpu_id=session.qpu_id,
            executes=session.executes_jobs,
            executor=session.executor,
            host=session.host,
        )

    def _publish(self, qpu_ids: Sequence[str]) -> None:
        for qpu_id in qpu_ids:
            self._events.publish("qpu", qpu_id)
            self._events.publish("dispatch", qpu_id)


class ReplicaHeartbeat:
    """Background task: heartbeats this replica and keeps its streams recorded.

    A local stream whose record another replica replaced (the daemon reconnected there)
    is ended here, so jobs are never dispatched to a stream nobody reads.
    """

    def __init__(
        self,
        db: Database,
        registry: ReplicaRegistry,
        local_sessions: Callable[[], list[DriverSession]],
        evict: Callable[[DriverSession, str], None],
    ) -> None:
        self._db = db
        self._registry = registry
        self._local = local_sessions
        self._evict = evict

    async def run(self) -> None:
        """Runs until cancelled."""
        while True:
            await asyncio.sleep(self._registry.timing.heartbeat_interval)
            try:
                await self.beat()
            except QpiError as error:  # database unavailable: try again next time
                logger.warning("[Cluster] heartbeat failed: %s", error)
            except Exception:
                logger.exception("[Cluster] heartbeat failed")

    async def beat(self) -> None:
        """One heartbeat and one reconciliation of the local streams with their records."""
        await self._db.run(self._registry.heartbeat)
        local = [s for s in self._local() if not s.closed]
        recorded = await self._db.run(self._registry.held_here)
        for session in local:
            if recorded.get(session.driver_id) == session.session_id or session.closed:
                continue
            if await self._db.run(self._registry.reclaim, session):
                # Swept while alive: its QPU was taken offline meanwhile.
                await self._db.run(self._registry.refresh_status, session.qpu_id)
            else:
                self._evict(session, "its driver reconnected through another replica")
