"""The driver hub: what every transport (gRPC stream, NNG compat) calls into.

It owns the live sessions, turns connects/disconnects into QPU status, hands results and
releases to the lease service, and revokes leases when jobs are cancelled.

One driver token, one live stream. When a second stream authenticates with the token of a
driver that already has a session, the hub pings the older stream: if it answers within
`DUPLICATE_PROBE` seconds it is healthy and the NEWER stream is refused with
DRIVER_ALREADY_CONNECTED (and a RetryInfo), so the running daemon and its jobs are never
disturbed; the refused daemon stands by and retries. If the older stream stays silent (a
crashed process, a half-open connection, the same daemon reconnecting after a network cut)
the newer one replaces it at once, as does a newcomer holding the older stream's leases (the
same daemon reconnecting, whose old stream the server has not yet seen die). Replacing on
every connect instead let two daemons started with one token take the stream from each
other every half second forever, each time requeueing the job they were given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import tenacity

from qpi.server.domain.errors import (
    FailedPreconditionError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from qpi.server.domain.leases import reconcile
from qpi.server.domain.models import Qpu, QpuCapabilities, ReportedDevice, Revocation
from qpi.server.domain.replicas import SessionHolder
from qpi.server.drivers.rate_limit import TokenBucket
from qpi.server.drivers.session import Ack, DriverSession, Revoke
from qpi.server.services.auth_service import DriverIdentity
from qpi.server.services.completions import CompletionQueue
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.lease_service import DriverResult, LeaseService
from qpi.server.services.qpu_service import MONITOR_KINDS, QpuService
from qpi.server.services.telemetry_service import TelemetryService

logger = logging.getLogger(__name__)

RESENDING_TRANSPORTS = frozenset({"grpc"})
"""Transports whose drivers keep unacknowledged results and resend them (qpi.driver does);
for the others (the published daemon over NNG) the hub keeps retrying the store itself."""
# What the hub reacts to (see _on_event).
_HUB_TOPICS = ("cancel", "driver", "qpu_deleted", "qpu_toggled")
_STORE_BACKOFF = tenacity.wait_exponential_jitter(initial=0.5, max=5.0)
DUPLICATE_PROBE = 2.0
"""Seconds an existing session of a driver has to answer a ping before a newer stream with
the same token replaces it (see the module docstring)."""
MAX_PREFETCH = 4
"""Most leases a driver may queue beyond its capacity (DriverHello.prefetch)."""
REFUSED_RETRY_AFTER = 2.0
"""RetryInfo sent with DRIVER_DISABLED and DRIVER_ALREADY_CONNECTED: the daemon keeps
retrying at about this pace, so it re-attaches within seconds once the refusal ends."""


def driver_disabled() -> PermissionDeniedError:
    """The refusal a disabled driver gets at connect, and when it is disconnected."""
    return PermissionDeniedError(
        "DRIVER_DISABLED",
        "Driver is currently disabled by administrator.",
        retry_after=REFUSED_RETRY_AFTER,
    )


def already_connected(driver_id: str, connected_host: str) -> FailedPreconditionError:
    """The refusal of a second live stream with one driver token (here or on a replica)."""
    return FailedPreconditionError(
        "DRIVER_ALREADY_CONNECTED",
        "Another driver process is connected with this access token and is "
        "alive; this connection was refused. Use one token per daemon.",
        metadata={"driver": driver_id, "connected_host": connected_host},
        retry_after=REFUSED_RETRY_AFTER,
    )


class SessionDirectory(Protocol):
    """The cluster-wide record of driver streams (see cluster/registry.py); blocking
    calls, run on the database thread."""

    def claim(
        self, session: DriverSession, held: Sequence[tuple[str, int]]
    ) -> SessionHolder | None:
        """Records a new stream, or returns the live holder refusing it."""
        ...

    def release(self, driver_id: str, session_id: str) -> bool:
        """Forgets an ended stream unless a newer one replaced it."""
        ...

    def refresh_status(self, qpu_id: str) -> None:
        """Re-derives a QPU's status from the executing streams of every live replica."""
        ...


@dataclass(frozen=True)
class Hello:
    """What a driver says when it connects."""

    name: str
    version: str
    executor: str
    capacity: int
    host: str
    executes_jobs: bool
    num_qubits: int
    native_gates: Sequence[str]
    held_jobs: Sequence[tuple[str, int]]
    coupling_map: Sequence[tuple[int, int]] = ()
    capabilities: QpuCapabilities = field(default_factory=QpuCapabilities)
    prefetch: int = 0

    def device(self) -> ReportedDevice:
        """What the hello says about the device."""
        return ReportedDevice(
            num_qubits=max(0, self.num_qubits),
            native_gates=tuple(self.native_gates),
            coupling_map=tuple(self.coupling_map),
            capabilities=self.capabilities,
        )


class DriverHub:
    """Live driver sessions and their effects on jobs and QPUs."""

    def __init__(
        self,
        db: Database,
        events: EventBus,
        jobs: LeaseService,
        qpus: QpuService,
        telemetry: TelemetryService,
        heartbeat_timeout: float,
        event_rate_limit: float = 0.0,
        directory: SessionDirectory | None = None,
    ) -> None:
        self._db = db
        # None: this process alone decides (no registry), as in unit tests.
        self._directory = directory
        self._events = events
        self._jobs = jobs
        # Results arriving together are stored in one transaction (group commit).
        self._completions = CompletionQueue(db, jobs)
        self._qpus = qpus
        self._telemetry = telemetry
        self._heartbeat_timeout = heartbeat_timeout
        self._sessions: dict[str, DriverSession] = {}
        self._event_rate = event_rate_limit
        self._buckets: dict[str, TokenBucket] = {}
        self._teardowns: dict[str, asyncio.Task[None]] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._refusals_logged: dict[str, float] = {}
        self.duplicate_probe = DUPLICATE_PROBE
        self.on_change: Callable[[str], None] = lambda qpu_id: None

    def sessions_for(self, qpu_id: str) -> list[DriverSession]:
        """Live sessions of a QPU."""
        return [s for s in self._sessions.values() if s.qpu_id == qpu_id and not s.closed]

    def qpus_with_sessions(self) -> set[str]:
        """QPUs that have at least one live session."""
        return {s.qpu_id for s in self._sessions.values() if not s.closed}

    def live_sessions(self) -> list[DriverSession]:
        """Every live session of this process."""
        return [s for s in self._sessions.values() if not s.closed]

    def evict(self, session: DriverSession, reason: str) -> None:
        """Ends a session this process must no longer serve (its driver moved to another
        replica); leases it still holds return to the queue."""
        logger.info("[DriverHub] ending stream of driver %s: %s", session.driver_id, reason)
        session.close()
        self._teardown(session, reason)

    def session(self, driver_id: str) -> DriverSession | None:
        """The live session of a driver."""
        return self._sessions.get(driver_id)

    async def connect(
        self,
        who: DriverIdentity,
        hello: Hello,
        transport: str,
        session_type: Callable[..., DriverSession] = DriverSession,
    ) -> tuple[DriverSession, list[tuple[str, int]]]:
        """Registers a session; an older session of the same driver is replaced only if it
        no longer answers (see the module docstring).

        `session_type` lets a transport refine flow control (see drivers/nng/session.py).

        Raises:
            PermissionDeniedError: DRIVER_DISABLED.
            FailedPreconditionError: DRIVER_ALREADY_CONNECTED.
        """
        if not who.enabled:
            raise driver_disabled()
        # One connect per driver at a time: two racing newcomers must not both pass the
        # duplicate check.
        lock = self._connecting.setdefault(who.driver_id, asyncio.Lock())
        async with lock:
            previous = self._sessions.get(who.driver_id)
            if previous is not None and await self._still_served(previous, hello):
                self._log_refusal(who.driver_id, hello.host, previous.host)
                raise already_connected(who.driver_id, previous.host)
            return await self._open(who, hello, transport, session_type)

    def _log_refusal(self, driver_id: str, host: str, holder: str) -> None:
        # A refused daemon stands by and retries every few seconds: say it once a minute,
        # not on every attempt.
        now = time.monotonic()
        if now - self._refusals_logged.get(driver_id, -1e9) >= 60.0:
            self._refusals_logged[driver_id] = now
            logger.warning(
                "[DriverHub] refused a second connection for driver %s (host %s): "
                "its session from %s is alive (logged once a minute)",
                driver_id,
                host or "?",
                holder or "?",
            )

    async def _still_served(self, previous: DriverSession, hello: Hello) -> bool:
        """Whether `previous` is a live stream of ANOTHER process using the same token.

        A newcomer that holds leases of the previous stream is that same daemon coming back
        (its old connection is dead or dying): it takes over at once, before the liveness
        check could requeue those leases. Otherwise the previous stream must answer a ping,
        within less than the heartbeat timeout.
        """
        if previous.closed or set(hello.held_jobs) & previous.leases:
            return False
        return await previous.answers(min(self.duplicate_probe, self._heartbeat_timeout / 2))

    async def _open(
        self,
        who: DriverIdentity,
        hello: Hello,
        transport: str,
        session_type: Callable[..., DriverSession],
    ) -> tuple[DriverSession, list[tuple[str, int]]]:
        executes = hello.executes_jobs and who.kind not in MONITOR_KINDS
        session = session_type(
            driver_id=who.driver_id,
            qpu_id=who.qpu_id,
            name=hello.name or who.name,
            executor=hello.executor or who.kind,
            transport=transport,
            capacity=max(1, min(hello.capacity or 1, 64)),
            prefetch=max(0, min(hello.prefetch, MAX_PREFETCH)),
            executes_jobs=executes,
            host=hello.host,
        )
        if self._directory is not None:
            holder = await self._db.run(self._directory.claim, session, list(hello.held_jobs))
            if holder is not None:
                self._log_refusal(who.driver_id, hello.host, f"replica {holder.replica_host}")
                raise already_connected(who.driver_id, holder.driver_host)
        # Resume before replacing an older stream of this driver, so that stream's
        # teardown knows which leases now belong to the new one.
        resumed = await self._db.run(
            self._jobs.resume, who.driver_id, who.qpu_id, list(hello.held_jobs), session.session_id
        )
        session.leases.update(resumed)
        session.confirmed.update(resumed)
        previous = self._sessions.get(who.driver_id)
        self._sessions[who.driver_id] = session
        if previous is not None:
            previous.close()
        await self._db.run(
            self._qpus.mark_driver,
            who.driver_id,
            online=True,
            name=hello.name,
            host=hello.host,
            version=hello.version,
            transport=transport,
        )
        if executes:
            await self._db.run(self._qpus.learn_device, who.qpu_id, hello.device())
        await self._refresh_qpu(who.qpu_id)
        logger.info(
            "[DriverHub] driver %s (%s) connected for qpu %s via %s, resumed %d lease(s)",
            who.driver_id,
            session.name,
            who.qpu_id,
            transport,
            len(resumed),
        )
        self.on_change(who.qpu_id)
        return session, resumed

    async def disconnect(self, session: DriverSession, reason: str) -> None:
        """Ends a session and returns its leases to the queue at once.

        The work runs in its own task: gRPC cancels the handler of a vanished peer, possibly
        while it is already tearing down, and an interrupted teardown would leave the leases
        to the much slower stale-job recovery.
        """
        await asyncio.shield(self._teardown(session, reason))

    def _teardown(self, session: DriverSession, reason: str) -> asyncio.Task[None]:
        task = self._teardowns.get(session.session_id)
        if task is None:
            task = asyncio.create_task(self._end_session(session, reason))
            self._teardowns[session.session_id] = task
            task.add_done_callback(lambda t: self._teardown_done(session, t))
        return task

    def _teardown_done(self, session: DriverSession, task: asyncio.Task[None]) -> None:
        self._teardowns.pop(session.session_id, None)
        if not task.cancelled() and task.exception() is not None:
            # The liveness loop retries while the session is still registered.
            logger.error(
                "[DriverHub] teardown of driver %s failed: %s", session.driver_id, task.exception()
            )

    async def _end_session(self, session: DriverSession, reason: str) -> None:
        session.close()
        # Only this stream's leases: a newer stream of the same driver (here or on another
        # replica) owns whatever it resumed.
        requeued = await self._db.run(self._jobs.requeue_session, session.session_id)
        current = self._sessions.get(session.driver_id)
        if current is session:
            del self._sessions[session.driver_id]
        elif current is not None:
            logger.info(
                "[DriverHub] replaced stream of driver %s ended; requeued %s",
                session.driver_id,
                requeued or "nothing",
            )
            return
        released = self._directory is None or await self._db.run(
            self._directory.release, session.driver_id, session.session_id
        )
        if released:  # else the driver's newer stream lives on another replica
            await self._db.run(self._qpus.mark_driver, session.driver_id, online=False)
        await self._refresh_qpu(session.qpu_id)
        logger.info(
            "[DriverHub] driver %s disconnected (%s); requeued %s",
            session.driver_id,
            reason,
            requeued or "nothing",
        )
        self.on_change(session.qpu_id)

    async def _refresh_qpu(self, qpu_id: str) -> None:
        if self._directory is not None:  # the union over every live replica
            await self._db.run(self._directory.refresh_status, qpu_id)
            return
        executors = [s for s in self.sessions_for(qpu_id) if s.executes_jobs]
        kind = executors[0].executor if executors else ""
        await self._db.run(self._qpus.set_status, qpu_id, len(executors), kind)

    async def accepted(self, session: DriverSession, job_id: str, attempt: int) -> None:
        """The driver acknowledged an assignment: from now on its heartbeats must list it."""
        session.touch()
        if (job_id, attempt) in session.leases:
            session.confirmed.add((job_id, attempt))

    async def heartbeat(
        self, session: DriverSession, held: Sequence[tuple[str, int]] = (), stopping: bool = False
    ) -> None:
        """Marks the session alive, extends its leases and reconciles them with `held`,
        the jobs the driver reports holding (see domain/leases.py). A `stopping` driver
        gets no new leases on this stream (a job it hands back goes to another driver)."""
        session.touch()
        session.stopping = session.stopping or stopping
        reported = set(held)
        # A heartbeat that no longer lists an answered job was sent after its ack was read.
        session.answered &= reported
        if not session.leases and not reported:
            return
        leased = set(await self._db.run(self._jobs.renew_leases, session.driver_id))
        plan = reconcile(
            held=reported,
            leased=leased,
            confirmed=session.confirmed,
            answered=session.answered,
        )
        for job_id, attempt in sorted(plan.cancel_on_driver):
            session.send(Revoke(job_id, attempt, "the server no longer leases this job"))
        for lease in plan.forget | plan.requeue:
            session.drop_lease(lease)
        for job_id, attempt in sorted(plan.requeue):
            await self._db.run(self._jobs.release, job_id, attempt, session.driver_id)
        if plan.cancel_on_driver or plan.requeue or plan.forget:
            logger.warning(
                "[DriverHub] reconciled driver %s: cancelled on driver %s, requeued %s, forgot %s",
                session.driver_id,
                sorted(plan.cancel_on_driver),
                sorted(plan.requeue),
                sorted(plan.forget),
            )
            self.on_change(session.qpu_id)

    async def result(
        self,
        session: DriverSession,
        job_id: str,
        attempt: int,
        *,
        result_json: str | None,
        error: str | None,
        execution_seconds: float,
    ) -> bool:
        """Stores a result if the session holds that lease, then acknowledges it.

        A result that cannot be stored because the database is unreachable is not
        acknowledged: the driver keeps it, lists it in its heartbeats (so the lease is not
        requeued) and resends it until it is stored or the lease goes away.
        """
        session.touch()
        result = DriverResult(
            job_id, attempt, session.driver_id, result_json, error, execution_seconds
        )
        try:
            try:
                accepted = await self._completions.complete(result)
            except UnavailableError:
                if session.transport in RESENDING_TRANSPORTS or session.closed:
                    raise
                # Retried (the retry machinery is built only on this rare path).
                accepted = await self._store_until_stored(session, result)
        except UnavailableError:
            logger.warning(
                "[DriverHub] result of job %s attempt %d from %s not stored (database "
                "unavailable); left to the driver's resend or the lease's requeue",
                job_id,
                attempt,
                session.driver_id,
            )
            return False
        except Exception:
            # A result the store rejects for good must not wedge the lease: fail the job.
            logger.exception("[DriverHub] storing the result of job %s failed", job_id)
            accepted = await self._db.run(
                self._jobs.complete,
                job_id,
                attempt,
                session.driver_id,
                result_json=None,
                error="The server could not store this job's result.",
                execution_seconds=execution_seconds,
            )
        session.drop_lease((job_id, attempt))
        session.answered.add((job_id, attempt))
        session.send(Ack(job_id, attempt, accepted))
        if not accepted:
            logger.info(
                "[DriverHub] ignored stale/duplicate result for job %s attempt %d from %s",
                job_id,
                attempt,
                session.driver_id,
            )
        self.on_change(session.qpu_id)
        return accepted

    async def _store_until_stored(self, session: DriverSession, result: DriverResult) -> bool:
        """Retries a result the database could not take, until it is stored or the session
        ends (drivers that resend by themselves are not retried here)."""
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(UnavailableError),
            wait=_STORE_BACKOFF,
            stop=lambda _: session.transport in RESENDING_TRANSPORTS or session.closed,
            reraise=True,
        )
        stored: bool = await retrying(self._completions.complete, result)
        return stored

    async def release(self, session: DriverSession, job_id: str, attempt: int) -> None:
        """A driver hands a lease back without running it."""
        session.touch()
        await self._db.run(self._jobs.release, job_id, attempt, session.driver_id)
        session.drop_lease((job_id, attempt))
        self.on_change(session.qpu_id)

    async def telemetry(
        self, session: DriverSession, type_: str, payload_json: str, at: datetime | None
    ) -> bool:
        """Stores a telemetry event unless the driver exceeds --event-rate-limit."""
        session.touch()
        bucket = self._buckets.setdefault(session.driver_id, TokenBucket(self._event_rate))
        if not bucket.allow():
            logger.warning(
                "[DriverHub] dropping telemetry from %s: over %.0f events/s",
                session.driver_id,
                self._event_rate,
            )
            return False
        await self._db.run(
            self._telemetry.record, session.driver_id, session.qpu_id, type_, payload_json, at
        )
        return True

    def revoke(self, revocation: Revocation) -> None:
        """Cancels a lease on whichever session holds it."""
        session = self._sessions.get(revocation.driver_id)
        if session is None:
            return
        session.drop_lease((revocation.job_id, revocation.attempt))
        session.send(Revoke(revocation.job_id, revocation.attempt, "cancelled"))
        self.on_change(session.qpu_id)

    async def driver_changed(self, driver_id: str) -> None:
        """Ends the session of a driver an administrator disabled or deleted, telling the
        driver why; a rename or an enable leaves a live session alone."""
        session = self._sessions.get(driver_id)
        if session is None or session.closed:
            return
        driver = await self._db.run(self._qpus.find_driver, driver_id)
        if driver is None:
            session.close(UnauthenticatedError("TOKEN_INVALID", "This driver was deleted."))
        elif not driver.enabled:
            session.close(driver_disabled())

    def close_qpu(self, qpu: Qpu) -> None:
        """Disconnects every driver of a deleted QPU, telling it why."""
        for session in self.sessions_for(qpu.id):
            logger.info(
                "[DriverHub] QPU %s deleted; disconnecting driver %s", qpu.name, session.driver_id
            )
            session.close(
                NotFoundError(
                    "QPU_DELETED",
                    f"QPU '{qpu.name}' was deleted by an administrator; this driver's "
                    "registration and access token no longer exist.",
                    metadata={"qpu": qpu.name, "qpu_id": qpu.id},
                )
            )

    async def watch(self) -> None:
        """Background task: revokes cancelled leases, drops silent drivers."""
        checker = asyncio.create_task(self._liveness_loop())
        try:
            async with self._events.subscribe(topics=_HUB_TOPICS) as queue:
                while True:
                    event = await queue.get()
                    try:
                        await self._on_event(event.topic, event.payload)
                    except Exception:  # one failed refresh must not stop revocations
                        logger.exception("[DriverHub] handling %s failed", event.topic)
        finally:
            checker.cancel()

    async def _on_event(self, topic: str, payload: object) -> None:
        if topic == "cancel":
            assert isinstance(payload, Revocation)
            self.revoke(payload)
        elif topic == "driver":
            await self.driver_changed(str(payload))
        elif topic == "qpu_deleted":
            assert isinstance(payload, Qpu)
            self.close_qpu(payload)
        elif topic == "qpu_toggled":
            await self._refresh_qpu(str(payload))

    async def _liveness_loop(self) -> None:
        period = max(self._heartbeat_timeout / 4, 0.05)
        while True:
            await asyncio.sleep(period)
            deadline = time.monotonic() - self._heartbeat_timeout
            for session in list(self._sessions.values()):
                if session.last_seen < deadline:
                    logger.warning(
                        "[DriverHub] driver %s silent for %.1fs; closing its session",
                        session.driver_id,
                        self._heartbeat_timeout,
                    )
                    # Tear down here too: the transport may already be gone.
                    self._teardown(session, "heartbeat timeout")
