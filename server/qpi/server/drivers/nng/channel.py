"""One NNG driver: its listeners, adapted to a driver hub session.

Liveness comes from pipes, because the protocol has no heartbeats: the hub session exists
while the driver's PULL socket is attached to our PUSH listener (the "dispatch pipe"). On
attach the channel connects a session (resuming the leases the database says this driver
holds: after a server restart the daemon is still running them); on detach it ends it and
the hub requeues its leases at once. While the pipe is up the channel heartbeats on the
driver's behalf, which renews its leases. A newer dispatch pipe replaces an older one
(a restarted daemon whose old connection is half-open): the old session's leases return to
the queue and the old connection is dropped.

Wire rules: `Assign` becomes a JobDispatch; the hub's `Revoke` and `Ack` have no NNG
message and are not sent (see NngSession for what a cancel does to capacity). A JobResult
is accepted only for a job currently leased to this driver; the attempt, which the protocol
does not carry, is the one of that lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import pynng

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import QpiError
from qpi.server.drivers.hub import DriverHub, Hello
from qpi.server.drivers.nng import envelope
from qpi.server.drivers.nng.session import NngSession
from qpi.server.drivers.nng.sockets import ListenerPair, PipeEvent, TlsMaterial
from qpi.server.drivers.rate_limit import TokenBucket
from qpi.server.drivers.session import Assign
from qpi.server.services.auth_service import DriverIdentity
from qpi.server.services.database import Database
from qpi.server.services.job_service import JobService
from qpi.server.store.nng_ports import NngPorts, NngPortStore

logger = logging.getLogger(__name__)

_SEND_TIMEOUT = 10.0
_SESSION_WAIT = 15.0  # results may arrive just before the dispatch pipe re-attaches
_DECODE_OFF_LOOP_BYTES = 64 * 1024


@dataclass(frozen=True)
class ChannelConfig:
    """Settings every channel shares."""

    bind_host: str
    heartbeat_interval: float
    drain_seconds: float
    max_message_bytes: int


@dataclass(frozen=True)
class ChannelDeps:
    """Collaborators every channel shares."""

    db: Database
    hub: DriverHub
    jobs: JobService
    ports: NngPortStore
    clock: Clock


class NngChannel:
    """Listeners and hub session of one NNG driver."""

    def __init__(
        self, ports: NngPorts, deps: ChannelDeps, config: ChannelConfig, tls: TlsMaterial
    ) -> None:
        self.ports = ports
        self.host = ""
        self.version = ""
        self.qpu_id = ""
        self._deps = deps
        self._config = config
        self._tls = tls
        self._pair: ListenerPair | None = None
        self._session: NngSession | None = None
        self._session_up = asyncio.Event()
        self._dispatch_pipes: list[int] = []
        self._pipe_events: asyncio.Queue[PipeEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._session_tasks: list[asyncio.Task[None]] = []
        self._sent_at: dict[str, float] = {}
        self._complaints = TokenBucket(1.0)  # at most one malformed-message log line a second

    @property
    def driver_id(self) -> str:
        """The driver this channel serves."""
        return self.ports.driver_id

    @property
    def listening(self) -> bool:
        """Whether the listeners are open."""
        return self._pair is not None

    def start(self) -> None:
        """Opens both listeners; raises pynng.NNGException if a port cannot be bound."""
        self._pair = ListenerPair(
            self._config.bind_host,
            self.ports.in_port,
            self.ports.out_port,
            self._tls,
            self._config.max_message_bytes,
            self._pipe_events.put_nowait,
        )
        self._tasks = [
            asyncio.create_task(self._handle_pipe_events()),
            asyncio.create_task(self._read()),
        ]
        logger.info(
            "[NNG] driver %s listening on %s:%d (jobs) and :%d (results)",
            self.driver_id,
            self._config.bind_host,
            self.ports.in_port,
            self.ports.out_port,
        )

    async def stop(self, reason: str) -> None:
        """Closes the listeners and ends the session (its leases return to the queue)."""
        pair, self._pair = self._pair, None
        if pair is not None:
            pair.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._dispatch_pipes.clear()
        await self._end_session(reason)

    async def restart_listeners(self, tls: TlsMaterial) -> None:
        """Re-opens the listeners with new TLS material on the same ports."""
        await self.stop("listeners restarted")
        self._tls = tls
        self.start()

    async def reset(self, ports: NngPorts) -> None:
        """A daemon (re)started with this driver's token: forget the old connection.

        The old session ends (its leases return to the queue) and its pipes are dropped;
        a still-running daemon redials by itself and gets a fresh session.
        """
        self.ports = ports
        pipes = list(self._dispatch_pipes)
        await self._end_session("driver reconnected over HTTP")
        if self._pair is not None:
            for pipe in pipes:
                self._pair.close_pipe(pipe)

    # -- pipes and sessions ------------------------------------------------------------

    async def _handle_pipe_events(self) -> None:
        while True:
            role, what, pipe_id = await self._pipe_events.get()
            try:
                await self._on_pipe(role, what, pipe_id)
            except Exception:
                logger.exception("[NNG] driver %s: pipe event failed", self.driver_id)

    async def _on_pipe(self, role: str, what: str, pipe_id: int) -> None:
        logger.info("[NNG] driver %s: %s pipe %s %s", self.driver_id, role, pipe_id, what)
        if role != "in":
            return  # only the dispatch pipe says whether jobs can reach the driver
        if what == "detach":
            if pipe_id in self._dispatch_pipes:
                self._dispatch_pipes.remove(pipe_id)
                if not self._dispatch_pipes:
                    await self._end_session("pipe closed")
            return
        older = list(self._dispatch_pipes)
        self._dispatch_pipes = [pipe_id]
        if older:
            await self._end_session("replaced by a newer connection")
            if self._pair is not None:
                for old in older:
                    self._pair.close_pipe(old)
        await self._open_session(pipe_id)

    async def _open_session(self, pipe_id: int) -> None:
        d = self._deps
        driver = await d.db.run(d.ports.driver, self.driver_id)
        if driver is None or not driver.enabled:
            if self._pair is not None:
                self._pair.close_pipe(pipe_id)
            return
        self.qpu_id = driver.qpu_id
        identity = DriverIdentity(
            driver.driver_id, driver.qpu_id, driver.name, driver.kind, driver.enabled
        )
        held = await d.db.run(d.jobs.leases_of, self.driver_id)
        hello = Hello(
            name="",
            version=self.version,
            executor=driver.kind,
            capacity=1,  # the published daemons run one job at a time
            host=self.host,
            executes_jobs=True,
            num_qubits=0,
            native_gates=(),
            held_jobs=held,
        )
        make: Callable[..., NngSession] = functools.partial(
            NngSession, drain_seconds=self._config.drain_seconds
        )
        try:
            session, resumed = await d.hub.connect(identity, hello, "nng", session_type=make)
        except QpiError as exc:
            logger.warning("[NNG] driver %s refused: %s", self.driver_id, exc.message)
            if self._pair is not None:
                self._pair.close_pipe(pipe_id)
            return
        assert isinstance(session, NngSession)
        now = time.monotonic()
        for job_id, _ in resumed:
            self._sent_at.setdefault(job_id, now)
        self._session = session
        self._session_up.set()
        self._session_tasks = [
            asyncio.create_task(self._pump(session)),
            asyncio.create_task(self._keepalive(session)),
        ]

    async def _end_session(self, reason: str) -> None:
        session, self._session = self._session, None
        self._session_up.clear()
        tasks, self._session_tasks = self._session_tasks, []
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        for task in tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if session is not None:
            await self._deps.hub.disconnect(session, reason)

    async def _pump(self, session: NngSession) -> None:
        """Delivers the hub's commands; only assignments exist on the wire."""
        while True:
            command = await session.outbox.get()
            if command is None:
                break
            if isinstance(command, Assign):
                await self._dispatch(session, command)
        # The hub closed the session (driver disabled, replaced, silent): drop the
        # connection so a still-running daemon redials into a fresh session.
        if self._session is session:
            pipes = list(self._dispatch_pipes)
            await self._end_session("closed by the server")
            if self._pair is not None:
                for pipe in pipes:
                    self._pair.close_pipe(pipe)

    async def _dispatch(self, session: NngSession, command: Assign) -> None:
        pair = self._pair
        data = envelope.encode_dispatch(
            self.ports.wire,
            self.driver_id,
            command.job_id,
            command.payload,
            self._deps.clock.now(),
        )
        failure = "listeners closed" if pair is None else ""
        if pair is not None:
            try:
                await asyncio.wait_for(pair.send(data), _SEND_TIMEOUT)
            except (TimeoutError, pynng.NNGException) as exc:
                failure = type(exc).__name__
        if failure:
            logger.warning(
                "[NNG] driver %s: dispatch of job %s failed (%s); back to the queue",
                self.driver_id,
                command.job_id,
                failure,
            )
            await self._deps.hub.release(session, command.job_id, command.attempt)
            return
        self._sent_at[command.job_id] = time.monotonic()

    async def _keepalive(self, session: NngSession) -> None:
        """Heartbeats for the driver while its pipe is attached: pipe liveness renews leases."""
        while not session.closed:
            await asyncio.sleep(self._config.heartbeat_interval)
            try:
                await self._deps.hub.heartbeat(session)
            except Exception:
                logger.exception("[NNG] driver %s: lease renewal failed", self.driver_id)
            if session.expire_drains():
                self._deps.hub.on_change(session.qpu_id)

    # -- inbound -------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._pair is not None
        pair = self._pair
        while True:
            try:
                data = await pair.receive()
            except pynng.NNGException:  # closed
                return
            try:
                await self._handle(data)
            except Exception:
                logger.exception("[NNG] driver %s: inbound message failed", self.driver_id)

    async def _handle(self, data: bytes) -> None:
        try:
            if len(data) > _DECODE_OFF_LOOP_BYTES:
                message = await asyncio.to_thread(envelope.decode, data)
            else:
                message = envelope.decode(data)
        except envelope.Malformed as exc:
            if self._complaints.allow():
                logger.warning("[NNG] driver %s: dropped message: %s", self.driver_id, exc)
            return
        session = await self._live_session()
        if session is None:
            logger.warning(
                "[NNG] driver %s: dropped %s: no dispatch connection within %.0fs",
                self.driver_id,
                type(message).__name__,
                _SESSION_WAIT,
            )
            return
        if isinstance(message, envelope.TelemetryMessage):
            await self._deps.hub.telemetry(session, message.type, message.payload_json, message.at)
            return
        await self._result(session, message)

    async def _live_session(self) -> NngSession | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._session_up.wait(), _SESSION_WAIT)
        session = self._session
        return session if session is not None and not session.closed else None

    async def _result(self, session: NngSession, message: envelope.ResultMessage) -> None:
        job_id = message.job_id
        if session.finish_draining(job_id):
            logger.info(
                "[NNG] driver %s finished cancelled job %s; result discarded",
                self.driver_id,
                job_id,
            )
            self._sent_at.pop(job_id, None)
            self._deps.hub.on_change(session.qpu_id)
            return
        attempt = next((a for j, a in session.leases if j == job_id), None)
        if attempt is None:  # leased to this driver by a session we do not know about
            leases = await self._deps.db.run(self._deps.jobs.leases_of, self.driver_id)
            attempt = next((a for j, a in leases if j == job_id), None)
        if attempt is None:
            logger.info(
                "[NNG] driver %s: result for job %s it does not hold; ignored",
                self.driver_id,
                job_id,
            )
            return
        started = self._sent_at.pop(job_id, None)
        seconds = time.monotonic() - started if started is not None else 0.0
        await self._deps.hub.result(
            session,
            job_id,
            attempt,
            result_json=message.result_json,
            error=message.error,
            execution_seconds=seconds,
        )
