"""DriverService.Connect: the bidirectional driver stream, adapted to the driver hub.

The servicer only translates messages; leases, status and requeueing live in the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import duration_pb2

from qpi.server.domain.errors import FailedPreconditionError, QpiError
from qpi.server.drivers.hub import DriverHub, Hello
from qpi.server.drivers.session import Ack, Assign, Command, DriverSession, Ping, Revoke
from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.errors import streaming
from qpi.server.services.database import Database
from qpi.server.services.qpu_service import QpuService
from qpi.v1 import driver_service_pb2 as pb
from qpi.v1 import driver_service_pb2_grpc

logger = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext[Any, Any]
_HELLO_TIMEOUT = 10.0
_RESULTS_IN_FLIGHT = 64
"""Results of one stream being stored at once; the stream reads no further until one is."""


class _Stores:
    """The results of one stream being stored. Every other message waits until they are
    all stored: an O(1) wait on an event, where `asyncio.wait` over the set would wrap
    every task again for each heartbeat or acceptance."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self, store: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(store)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def drained(self) -> None:
        await self._idle.wait()

    async def below(self, limit: int) -> None:
        while len(self._tasks) >= limit:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def _outgoing(command: Command) -> pb.ConnectResponse:
    if isinstance(command, Assign):
        return pb.ConnectResponse(
            job_assignment=pb.JobAssignment(
                job_id=command.job_id,
                attempt=command.attempt,
                payload=convert.payload(command.payload),
            )
        )
    if isinstance(command, Revoke):
        return pb.ConnectResponse(
            job_cancellation=pb.JobCancellation(
                job_id=command.job_id, attempt=command.attempt, reason=command.reason
            )
        )
    if isinstance(command, Ping):
        return pb.ConnectResponse(ping=pb.ServerPing())
    assert isinstance(command, Ack)
    return pb.ConnectResponse(
        result_ack=pb.ResultAck(
            job_id=command.job_id, attempt=command.attempt, accepted=command.accepted
        )
    )


@dataclass(frozen=True)
class ResultLimits:
    """What the welcome announces so a driver never sends a result the server refuses.

    Attributes:
        max_result_bytes: Largest stored result JSON (a larger one fails its job).
        max_message_bytes: The gRPC receive limit (a larger message breaks the stream).
    """

    max_result_bytes: int
    max_message_bytes: int


class DriverServicer(driver_service_pb2_grpc.DriverServiceServicer):
    """Runs driver sessions over gRPC."""

    def __init__(
        self,
        db: Database,
        auth: Authenticator,
        hub: DriverHub,
        qpus: QpuService,
        version: str,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        limits: ResultLimits | None = None,
    ) -> None:
        self._db = db
        self._limits = limits or ResultLimits(0, 0)
        self._auth = auth
        self._hub = hub
        self._qpus = qpus
        self._version = version
        self._interval = heartbeat_interval
        self._timeout = heartbeat_timeout

    @streaming
    async def Connect(
        self, request_iterator: AsyncIterator[pb.ConnectRequest], context: Ctx
    ) -> AsyncIterator[pb.ConnectResponse]:
        identity = await self._auth.driver(context)
        try:
            first = await asyncio.wait_for(anext(aiter(request_iterator), None), _HELLO_TIMEOUT)
        except TimeoutError:
            first = None
        if first is None or first.WhichOneof("message") != "hello":
            raise FailedPreconditionError(
                "PROTOCOL_VIOLATION", "The first driver message must be hello."
            )
        h = first.hello
        hello = Hello(
            name=h.name,
            version=h.version,
            executor=h.executor,
            capacity=h.capacity,
            host=h.host,
            executes_jobs=h.executes_jobs,
            num_qubits=h.num_qubits,
            native_gates=list(h.native_gates),
            held_jobs=[(j.job_id, j.attempt) for j in h.held_jobs],
            coupling_map=convert.hello_coupling(h.coupling_map),
            capabilities=convert.hello_capabilities(h.capabilities),
            prefetch=h.prefetch,
        )
        session, resumed = await self._hub.connect(identity, hello, "grpc")
        reader = asyncio.create_task(self._read(session, request_iterator))
        try:
            qpu, n = await self._db.run(self._qpus.get, identity.qpu_id)
            yield pb.ConnectResponse(
                welcome=pb.ServerWelcome(
                    driver_id=identity.driver_id,
                    qpu=convert.qpu(qpu, n),
                    heartbeat_interval=_duration(self._interval),
                    heartbeat_timeout=_duration(self._timeout),
                    server_version=self._version,
                    resumed_jobs=[pb.HeldJob(job_id=j, attempt=a) for j, a in resumed],
                    max_result_bytes=self._limits.max_result_bytes,
                    max_message_bytes=self._limits.max_message_bytes,
                )
            )
            while True:
                command = await session.outbox.get()
                if command is None:
                    break
                yield _outgoing(command)
            if session.close_error is not None:
                raise session.close_error  # e.g. DRIVER_DISABLED: the driver learns why
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await self._hub.disconnect(session, "stream ended")

    async def _read(
        self, session: DriverSession, requests: AsyncIterator[pb.ConnectRequest]
    ) -> None:
        # Results are stored concurrently (so results that arrive together share one group
        # commit, and one slow store does not hold the stream); every other message waits
        # until the results before it are stored, so heartbeats reconcile against them.
        storing = _Stores()
        try:
            async for message in requests:
                if message.WhichOneof("message") != "job_result":
                    await storing.drained()
                    await self._handle_logged(session, message)
                    continue
                await storing.below(_RESULTS_IN_FLIGHT)
                storing.start(self._handle_logged(session, message))
            await storing.drained()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            storing.cancel()
            session.close()

    async def _handle_logged(self, session: DriverSession, message: pb.ConnectRequest) -> None:
        try:
            await self._handle(session, message)
        except QpiError as exc:  # e.g. malformed telemetry: drop it, keep the stream
            logger.warning("[DriverService.Connect] driver %s: %s", session.driver_id, exc.message)
        except Exception:  # a failed store write must not requeue every lease
            logger.exception("[DriverService.Connect] driver %s: message failed", session.driver_id)

    async def _handle(self, session: DriverSession, message: pb.ConnectRequest) -> None:
        kind = message.WhichOneof("message")
        if kind == "heartbeat":
            held = [(j.job_id, j.attempt) for j in message.heartbeat.running_jobs]
            await self._hub.heartbeat(session, held, message.heartbeat.stopping)
        elif kind == "job_accepted":
            accepted = message.job_accepted
            await self._hub.accepted(session, accepted.job_id, accepted.attempt)
        elif kind == "job_result":
            r = message.job_result
            outcome = r.WhichOneof("outcome")
            await self._hub.result(
                session,
                r.job_id,
                r.attempt,
                result_json=r.result_json if outcome == "result_json" else None,
                error=(r.error or "The driver reported a failure without a message.")
                if outcome != "result_json"
                else None,
                execution_seconds=r.execution_seconds,
            )
        elif kind == "job_release":
            await self._hub.release(
                session, message.job_release.job_id, message.job_release.attempt
            )
        elif kind == "telemetry":
            t = message.telemetry
            at = convert.from_ts(t.event_time, "event_time") if t.HasField("event_time") else None
            await self._hub.telemetry(session, t.type, t.payload_json, at)
        elif kind == "goodbye":
            session.close()
        else:
            session.touch()
