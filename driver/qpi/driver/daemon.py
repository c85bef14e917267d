"""The driver daemon: job bookkeeping between the server stream and the worker process.

Invariants:
    * At most one job runs in the worker; accepted jobs wait in `pending` in arrival order.
    * A result stays in `unacked` until the server acknowledges it; it is re-sent after
      every reconnect and, with backoff, while the server has not acknowledged it (the
      server does not acknowledge a result it could not store), so results survive stream
      losses and database outages. Heartbeats list it until then, so its lease is kept.
    * A job is never executed twice for the same driver: a re-assignment (new attempt) of a
      job that is running or already finished is answered from that run.
    * A job that must end early (cancelled, timed out, no longer resumed) is stopped in
      place when the executor stops cleanly (`draining` until the worker confirms), so the
      warm worker keeps serving; otherwise, or past STOP_GRACE, the worker is killed and a
      new one is started and warmed up before it gets the next job. Neither the warm-up
      nor the wait for a stop counts against any job's timeout or bill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from qpi.driver import __version__
from qpi.driver.bootstrap import Endpoint, discover
from qpi.driver.capabilities import hello_fields
from qpi.driver.link import CHANNEL_OPTIONS, ServerLink
from qpi.driver.payload import JobPayload
from qpi.driver.settings import DriverSettings
from qpi.driver.timing import RunningTimeout
from qpi.driver.worker import WorkerConfig
from qpi.driver.worker_handle import WorkerHandle, WorkerResult
from qpi.v1 import driver_service_pb2 as pb

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "driver shutting down"
ACK_WAIT = 3.0
STALE_RESULTS_KEPT = 64
RESEND_FIRST = 2.0
"""Seconds an unacknowledged result waits before it is sent again (then doubling)."""
RESEND_MAX = 8.0
SEND_LIMIT = int(dict(CHANNEL_OPTIONS)["grpc.max_send_message_length"])
"""This driver's own gRPC send limit: a larger message would break the stream too."""
STOP_GRACE = 5.0
"""Seconds a stopped job may take to reach its executor's next check point before the
worker is killed (and restarted) instead."""


@dataclass
class Lease:
    """An accepted assignment. `orphan` marks a job the server no longer recognises."""

    job_id: str
    attempt: int
    payload: JobPayload
    orphan: bool = False

    def held(self) -> pb.HeldJob:
        """The lease as sent in hello/heartbeats."""
        return pb.HeldJob(job_id=self.job_id, attempt=self.attempt)


def _log_outcome(lease: Lease, error: str | None, seconds: float) -> None:
    """The one INFO line a job leaves in the log: id, attempt, duration and outcome."""
    if error is None:
        outcome = "completed"
    else:
        first_line = error.strip().splitlines()[0] if error.strip() else "no message"
        outcome = f"failed: {first_line[:200]}"
    log.info("job %s attempt %d %s in %.2f s", lease.job_id, lease.attempt, outcome, seconds)


class DriverDaemon:
    """Runs the driver until SIGTERM/SIGINT or a fatal error.

    Args:
        settings: Driver settings.
        discover_fn: Bootstrap function (tests replace it to skip HTTP discovery).
    """

    def __init__(
        self, settings: DriverSettings, discover_fn: Callable[..., Endpoint] = discover
    ) -> None:
        self.settings = settings
        self.link = ServerLink(settings, self, discover_fn)
        data_dir = settings.data_dir.resolve()
        config = WorkerConfig(
            executor=settings.executor,
            options=settings.executor_kwargs(),
            data_dir=data_dir,
            workdir=data_dir / "work",
            save_raw_data=settings.save_raw_data,
            log_level=settings.log_level,
        )
        self.worker = WorkerHandle(config, self._on_worker_result, self._on_worker_exit)
        self.pending: deque[Lease] = deque()
        self.running: Lease | None = None
        self.unacked: dict[str, pb.JobResult] = {}
        self._resend_at: dict[str, tuple[float, float]] = {}  # job id -> (when, backoff)
        self._stale: OrderedDict[str, pb.JobResult] = OrderedDict()
        self._capabilities: dict[str, object] = {}
        self._worker_ready = False
        self._timeout: RunningTimeout | None = None
        self.max_result_bytes = 0
        """The server's result size limit from the last welcome (0: not announced)."""
        self.max_message_bytes = SEND_LIMIT
        """What one message to the server may weigh: its receive limit and ours."""
        self.draining: Lease | None = None
        """A job the worker is still stopping; no other job is handed over meanwhile."""
        self._drain_timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self.stopping = False
        self._worker_failed = False

    # ----------------------------------------------------------------- lifecycle

    async def run(self, handle_signals: bool = True) -> int:
        """Starts the worker, serves the stream, and shuts down gracefully.

        Args:
            handle_signals: Install SIGTERM/SIGINT handlers (off when embedded, e.g. tests).

        Returns:
            The process exit code.
        """
        from qpi.driver.worker_handle import WorkerStartError

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT) if handle_signals else ():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            self._capabilities = await self.worker.start()
        except WorkerStartError as exc:
            log.critical("the %s executor failed to start: %s", self.settings.executor, exc)
            return 1
        self._worker_ready = True
        self._idle.set()
        link_task = asyncio.create_task(self.link.run())
        stop_task = asyncio.create_task(self._stop.wait())
        await asyncio.wait({link_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        if link_task.done():
            self.worker.kill()
            error = link_task.exception()
            if error is not None:
                log.critical("%s", error)
                return 2
            return 0
        await self._shutdown()
        link_task.cancel()
        await asyncio.gather(link_task, return_exceptions=True)
        return 3 if self._worker_failed else 0

    def request_stop(self) -> None:
        """Begins a graceful shutdown; a second request skips the grace period."""
        if self._stop.is_set():
            log.warning("second stop request: abandoning the running job")
            self._force.set()
        log.info("shutdown requested")
        self._stop.set()

    async def _shutdown(self) -> None:
        self.stopping = True
        # Said first, so the server leases nothing more to this driver: a job handed back
        # below would otherwise come straight back, and go back again at every attempt.
        self.link.send(pb.ConnectRequest(heartbeat=self.heartbeat()))
        while self.pending:
            self._release(self.pending.popleft())
        if self.running is not None:
            grace = self.settings.shutdown_grace
            log.info("waiting up to %.0f s for job %s", grace, self.running.job_id)
            done = asyncio.create_task(self._idle.wait())
            forced = asyncio.create_task(self._force.wait())
            await asyncio.wait({done, forced}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            done.cancel()
            forced.cancel()
        if self.running is not None:
            lease = self.running
            self._clear_running()
            self.worker.kill()
            self._release(lease)
        if self.unacked:
            # Results live only in memory: give a dropped link the grace period to come
            # back and acknowledge them, or the server will run those jobs again.
            wait = (
                ACK_WAIT
                if self.link.connected.is_set()
                else max(ACK_WAIT, self.settings.shutdown_grace)
            )
            deadline = time.monotonic() + wait
            while self.unacked and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await self.link.close(SHUTDOWN_REASON)
        await self.worker.stop()
        log.info("driver stopped")

    def _release(self, lease: Lease) -> None:
        if not lease.orphan:
            release = pb.JobRelease(
                job_id=lease.job_id, attempt=lease.attempt, reason=SHUTDOWN_REASON
            )
            self.link.send(pb.ConnectRequest(job_release=release))

    # ----------------------------------------------------------------- link callbacks

    def hello(self) -> pb.DriverHello:
        """Builds the hello, listing every lease and unacknowledged result."""
        held = [lease.held() for lease in self._leases() if not lease.orphan]
        held += [pb.HeldJob(job_id=r.job_id, attempt=r.attempt) for r in self.unacked.values()]
        return pb.DriverHello(
            name=self.settings.name,
            version=__version__,
            executor=self.settings.executor,
            capacity=1,
            # Queued jobs run in assignment order; the server takes back what a booking
            # of another user must not wait behind (a JobCancellation).
            prefetch=self.settings.prefetch,
            host=socket.gethostname(),
            executes_jobs=True,
            held_jobs=held,
            **hello_fields(self._capabilities),
        )

    def heartbeat(self) -> pb.DriverHeartbeat:
        """Lists every job this driver holds: leases (running first), then results the
        server has not acknowledged; first re-sends the results that waited too long."""
        self._resend_due()
        held = [lease.held() for lease in self._leases() if not lease.orphan]
        held += [pb.HeldJob(job_id=r.job_id, attempt=r.attempt) for r in self.unacked.values()]
        return pb.DriverHeartbeat(running_jobs=held, stopping=self.stopping)

    def _resend_due(self) -> None:
        now = time.monotonic()
        for job_id, result in self.unacked.items():
            when, backoff = self._resend_at.get(job_id, (now, RESEND_FIRST))
            if now < when:
                continue
            log.info("re-sending the unacknowledged result of job %s", job_id)
            self.link.send(pb.ConnectRequest(job_result=result))
            self._resend_at[job_id] = (now + backoff, min(backoff * 2, RESEND_MAX))
        for job_id in set(self._resend_at) - set(self.unacked):
            del self._resend_at[job_id]

    def on_welcome(self, welcome: pb.ServerWelcome) -> None:
        """Drops what the server forgot and re-sends the results it still expects."""
        self.max_result_bytes = max(welcome.max_result_bytes, 0)
        self.max_message_bytes = min(welcome.max_message_bytes or SEND_LIMIT, SEND_LIMIT)
        if self.stopping:  # a new stream while shutting down: say so again
            self.link.send(pb.ConnectRequest(heartbeat=self.heartbeat()))
        resumed = {(h.job_id, h.attempt) for h in welcome.resumed_jobs}
        kept: deque[Lease] = deque(
            lease for lease in self.pending if (lease.job_id, lease.attempt) in resumed
        )
        self.pending = kept
        if self.running is not None and (self.running.job_id, self.running.attempt) not in resumed:
            # The server no longer holds this lease (requeued, or cancelled while we were
            # away): stop it so the QPU serves what the scheduler decides next.
            lease = self.running
            log.info("job %s attempt %d was not resumed; stopping it", lease.job_id, lease.attempt)
            self._clear_running()
            self._stop_job(lease)
        for job_id, result in list(self.unacked.items()):
            if (job_id, result.attempt) in resumed:
                self._send_result(result)
            else:
                self._keep_stale(self.unacked.pop(job_id))

    def on_message(self, message: pb.ConnectResponse) -> None:
        """Dispatches one server message."""
        kind = message.WhichOneof("message")
        if kind == "job_assignment":
            self._on_assignment(message.job_assignment)
        elif kind == "job_cancellation":
            self._on_cancellation(message.job_cancellation)
        elif kind == "result_ack":
            ack = message.result_ack
            held = self.unacked.get(ack.job_id)
            if held is not None and held.attempt == ack.attempt:
                del self.unacked[ack.job_id]
        elif kind == "ping":
            self.link.send(pb.ConnectRequest(heartbeat=self.heartbeat()))

    # ----------------------------------------------------------------- jobs

    def _leases(self) -> list[Lease]:
        return ([self.running] if self.running is not None else []) + list(self.pending)

    def _accept(self, job_id: str, attempt: int) -> None:
        accepted = pb.JobAccepted(job_id=job_id, attempt=attempt)
        self.link.send(pb.ConnectRequest(job_accepted=accepted))

    def _on_assignment(self, assignment: pb.JobAssignment) -> None:
        job_id, attempt = assignment.job_id, assignment.attempt
        if self.stopping:
            release = pb.JobRelease(job_id=job_id, attempt=attempt, reason=SHUTDOWN_REASON)
            self.link.send(pb.ConnectRequest(job_release=release))
            return
        previous = self.unacked.pop(job_id, None) or self._stale.pop(job_id, None)
        if previous is not None:
            # Already executed under an earlier lease: answer from that run.
            self._accept(job_id, attempt)
            previous.attempt = attempt
            self._send_result(previous)
            return
        for lease in self._leases():
            if lease.job_id == job_id:
                lease.attempt, lease.orphan = attempt, False
                self._accept(job_id, attempt)
                return
        self._accept(job_id, attempt)
        try:
            payload = JobPayload.from_proto(job_id, assignment.payload)
        except ValueError as exc:
            self._send_result(pb.JobResult(job_id=job_id, attempt=attempt, error=str(exc)))
            return
        self.pending.append(Lease(job_id, attempt, payload))
        self._dispatch()

    def _on_cancellation(self, cancellation: pb.JobCancellation) -> None:
        job_id = cancellation.job_id
        if cancellation.attempt and cancellation.attempt != self._attempt_held(job_id):
            return  # about an earlier lease of a job re-assigned since
        log.info("job %s cancelled: %s", job_id, cancellation.reason or "no reason given")
        self.pending = deque(lease for lease in self.pending if lease.job_id != job_id)
        self.unacked.pop(job_id, None)
        self._stale.pop(job_id, None)
        if self.running is not None and self.running.job_id == job_id:
            lease = self.running
            self._clear_running()
            self._stop_job(lease)

    def _attempt_held(self, job_id: str) -> int:
        for lease in self._leases():
            if lease.job_id == job_id:
                return lease.attempt
        result = self.unacked.get(job_id)
        return result.attempt if result is not None else 0

    def _dispatch(self) -> None:
        if self.running is not None or not self._worker_ready or not self.pending:
            return
        if self.draining is not None:
            return
        if self.stopping:
            return
        lease = self.pending.popleft()
        self.running = lease
        self._idle.clear()
        try:
            self.worker.submit(lease.job_id, lease.attempt, lease.payload)
        except (OSError, RuntimeError, ValueError) as exc:
            log.error("could not hand job %s to the worker: %s", lease.job_id, exc)
            self._finish_running(f"worker process unavailable: {exc}", 0.0)
            self._restart_worker()
            return
        if self.settings.job_timeout > 0:
            # Counts running time only: a stopped driver does not time its job out.
            self._timeout = RunningTimeout(
                self.settings.job_timeout,
                lambda: self._on_timeout(lease),
                paused=self.worker.is_stopped,
            ).start()

    def _clear_running(self) -> None:
        self.running = None
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._idle.set()

    def _send_result(self, result: pb.JobResult) -> None:
        result = self._within_limits(result)
        self.unacked[result.job_id] = result
        self._resend_at[result.job_id] = (time.monotonic() + RESEND_FIRST, RESEND_FIRST * 2)
        self.link.send(pb.ConnectRequest(job_result=result))

    def _within_limits(self, result: pb.JobResult) -> pb.JobResult:
        """The result, or a failure naming the limit when the server would refuse it.

        A result above the server's limits would fail its job on the server at best, and
        at worst (above the gRPC receive limit) break the stream; resent after every
        reconnect and re-assignment, it would then keep the job bouncing forever.
        """
        if result.WhichOneof("outcome") != "result_json":
            return result
        size = len(result.result_json.encode())
        if self.max_result_bytes and size > self.max_result_bytes:
            problem = (
                f"The result is {size} bytes, above the server's result size limit of "
                f"{self.max_result_bytes} bytes (max_result_bytes)"
            )
        elif (framed := pb.ConnectRequest(job_result=result).ByteSize()) > self.max_message_bytes:
            problem = (
                f"The result message is {framed} bytes, above the limit of "
                f"{self.max_message_bytes} bytes for one message to the server"
            )
        else:
            return result
        problem += "; use fewer shots or circuits, or meas_return 'avg'."
        log.error("job %s: %s", result.job_id, problem)
        return pb.JobResult(
            job_id=result.job_id,
            attempt=result.attempt,
            error=problem,
            execution_seconds=result.execution_seconds,
        )

    def _keep_stale(self, result: pb.JobResult) -> None:
        self._stale[result.job_id] = result
        while len(self._stale) > STALE_RESULTS_KEPT:
            self._stale.popitem(last=False)

    def _finish_running(self, error: str | None, seconds: float, result_json: str = "") -> None:
        lease = self.running
        if lease is None:
            return
        self._clear_running()
        _log_outcome(lease, error, seconds)
        result = pb.JobResult(job_id=lease.job_id, attempt=lease.attempt, execution_seconds=seconds)
        if error is not None:
            result.error = error
        else:
            result.result_json = result_json
        if lease.orphan:
            self._keep_stale(result)
        else:
            self._send_result(result)

    def _on_worker_result(self, done: WorkerResult) -> None:
        draining = self.draining
        if draining is not None and (draining.job_id, draining.attempt) == (
            done.job_id,
            done.attempt,
        ):
            log.info("job %s stopped; the worker is free", done.job_id)
            self._end_drain()
            self._dispatch()
            return
        if self.running is None or self.running.job_id != done.job_id or done.stopped:
            return  # a job cancelled while its result was already in the pipe
        self._finish_running(done.error, done.seconds, done.result_json or "")
        self._dispatch()

    def _stop_job(self, lease: Lease) -> None:
        """Ends a job that was taken off `running`: in place if the executor can, else by
        restarting the worker."""
        if not self.worker.stops_cleanly:
            self._restart_worker()
            return
        try:
            self.worker.stop_job(lease.job_id, lease.attempt)
        except RuntimeError:
            self._restart_worker()
            return
        self.draining = lease
        self._drain_timer = asyncio.get_running_loop().call_later(
            STOP_GRACE, self._on_stop_overdue, lease
        )

    def _on_stop_overdue(self, lease: Lease) -> None:
        if self.draining is not lease:
            return
        log.warning(
            "job %s did not stop within %g s; restarting the worker", lease.job_id, STOP_GRACE
        )
        self._restart_worker()

    def _end_drain(self) -> None:
        self.draining = None
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def _on_worker_exit(self, code: int | None) -> None:
        if self.running is not None:
            message = f"worker process crashed (exit code {code}) while running the job"
            self._finish_running(message, 0.0)
        self._restart_worker()

    def _on_timeout(self, lease: Lease) -> None:
        if self.running is not lease:
            return
        limit = self.settings.job_timeout
        # The bill is the running time counted, not the limit: the same figure unless the
        # loop was late, and never time in which the worker was stopped.
        ran = self._timeout.ran if self._timeout is not None else limit
        log.error("job %s exceeded the job timeout of %g s", lease.job_id, limit)
        message = f"job exceeded the driver's job timeout of {limit:g} s and was stopped"
        self._finish_running(message, ran)
        self._stop_job(lease)

    def _restart_worker(self) -> None:
        self._end_drain()
        self._worker_ready = False
        self.worker.kill()
        if not self.stopping:
            asyncio.get_running_loop().create_task(self._start_worker())

    async def _start_worker(self) -> None:
        from qpi.driver.worker_handle import WorkerStartError

        try:
            self._capabilities = await self.worker.start()
        except WorkerStartError as exc:
            log.critical("the worker could not be restarted: %s", exc)
            self._worker_failed = True
            self.request_stop()
            return
        self._worker_ready = True
        self._dispatch()
