"""Job submission, inspection and streaming (WatchJob / Subscribe; never polling)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]
import tenacity

from qpi.sdk._base import ClientBase
from qpi.sdk._circuits import build_payload
from qpi.sdk.errors import JobFailedError, from_rpc_error, retry_delay_of
from qpi.sdk.models import Job
from qpi.sdk.records import Event
from qpi.v1 import event_service_pb2, job_pb2, job_service_pb2

_STATES = {
    name: job_pb2.Job.State.Value(f"STATE_{name.upper()}")
    for name in ("pending", "running", "completed", "failed", "cancelled")
}
# Backoff between reopenings of a watch stream that ended early (server restart, proxy
# idle cut, database outage), unless the server's RetryInfo asks for a longer pause.
_RECONNECT_BACKOFF = tenacity.wait_exponential_jitter(initial=0.2, max=2.0)


class _StreamEnded(Exception):
    """The watch stream closed before the job was terminal (reopened like an outage)."""


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, _StreamEnded):
        return True
    return isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAVAILABLE


def _reconnect_wait(state: tenacity.RetryCallState) -> float:
    backoff = _RECONNECT_BACKOFF(state)
    error = state.outcome.exception() if state.outcome is not None else None
    hint = retry_delay_of(error) if isinstance(error, grpc.RpcError) else None
    return max(backoff, hint or 0.0)


class JobsMixin(ClientBase):
    """Methods of :class:`qpi.sdk.QPIClient` about jobs and live events."""

    def submit_job(
        self,
        circuits: Any,
        shots: int = 1024,
        meas_level: int = 2,
        meas_return: str = "single",
        qpu_target: str = "",
        request_id: str | None = None,
        *,
        acq_rotation: float | None = None,
        acq_threshold: float | None = None,
    ) -> Job:
        """Submits circuits as one job.

        Args:
            circuits: QASM strings, Qiskit ``QuantumCircuit`` objects, or dicts
                ``{"circuit"|"qasm": ..., "parameter_values": [[...]], "shots": n}``.
            shots: Default shots per circuit.
            meas_level: 2 for counts, 1 for IQ points, 0 for raw traces.
            meas_return: ``"single"`` or ``"avg"``.
            qpu_target: QPU id or name; empty lets the server route the job.
            request_id: Idempotency key; a retried submission with the same key returns
                the original job. Generated when omitted.
            acq_rotation: IQ discrimination rotation in degrees (meas_level 2); None
                keeps the device's setting.
            acq_threshold: IQ discrimination threshold after rotation (meas_level 2).

        Returns:
            The new job (state ``pending``).

        Raises:
            InvalidQasmError: A circuit does not parse.
            QpuNotFoundError: ``qpu_target`` names no QPU.
            InsufficientQpuSecondsError: The caller's balance is exhausted.
            FailedPreconditionError: ``MEAS_LEVEL_UNSUPPORTED``: the QPU's executor did not
                announce ``meas_level``.

        Example:
            >>> job = client.submit_job(["OPENQASM 2.0; ..."], shots=100, qpu_target="qpu-1")
            >>> client.wait(job.id).counts
        """
        payload = build_payload(
            circuits,
            shots=shots,
            meas_level=meas_level,
            meas_return=meas_return,
            acq_rotation=acq_rotation,
            acq_threshold=acq_threshold,
        )
        request = job_service_pb2.CreateJobRequest(
            payload=payload, qpu=qpu_target, request_id=request_id or uuid.uuid4().hex
        )
        return Job._from_proto(self._unary(self._jobs.CreateJob, request).job)

    def submit_jobs(
        self,
        jobs: Iterable[Any],
        shots: int = 1024,
        meas_level: int = 2,
        meas_return: str = "single",
        qpu_target: str = "",
        request_ids: Sequence[str] | None = None,
    ) -> list[Job]:
        """Submits many jobs in one call (at most 1,000), all or nothing.

        Args:
            jobs: One entry per job, each what :meth:`submit_job` takes as ``circuits``
                (a QASM string, a ``QuantumCircuit``, a dict, or a list of those).
            shots: Default shots per circuit, for every job.
            meas_level: 2 for counts, 1 for IQ points, 0 for raw traces.
            meas_return: ``"single"`` or ``"avg"``.
            qpu_target: QPU id or name for every job; empty lets the server route them.
            request_ids: One idempotency key per job; a retried batch returns the jobs the
                first attempt created. Generated when omitted (so the SDK's own retries
                never duplicate a job).

        Returns:
            The new jobs (state ``pending``), in the order of ``jobs``.

        Raises:
            QPIError: Nothing was submitted; ``error.metadata["index"]`` names the job
                that was refused (``BATCH_TOO_LARGE`` above 1,000 jobs).

        Example:
            >>> batch = client.submit_jobs([bell_qasm] * 500, shots=100, qpu_target="qpu-1")
            >>> [client.wait(job.id).counts for job in batch]
        """
        items = list(jobs)
        keys = list(request_ids) if request_ids is not None else []
        if request_ids is not None and len(keys) != len(items):
            raise ValueError("request_ids must hold one key per job")
        keys = keys or [uuid.uuid4().hex for _ in items]
        request = job_service_pb2.BatchCreateJobsRequest(
            requests=[
                job_service_pb2.CreateJobRequest(
                    payload=build_payload(
                        circuits, shots=shots, meas_level=meas_level, meas_return=meas_return
                    ),
                    qpu=qpu_target,
                    request_id=key,
                )
                for circuits, key in zip(items, keys, strict=True)
            ]
        )
        response = self._unary(self._jobs.BatchCreateJobs, request)
        return [Job._from_proto(job) for job in response.jobs]

    def get_job(self, job_id: str) -> Job:
        """Returns a job by id (raises :class:`JobNotFoundError` for others' jobs)."""
        request = job_service_pb2.GetJobRequest(id=job_id)
        return Job._from_proto(self._unary(self._jobs.GetJob, request).job)

    def list_jobs(
        self,
        *,
        states: Iterable[str] = (),
        qpu_id: str = "",
        oldest_first: bool = False,
        all_users: bool = False,
        limit: int | None = None,
    ) -> Iterator[Job]:
        """Iterates over jobs, newest first, fetching pages lazily.

        Example:
            >>> for job in client.list_jobs(states=["completed"], limit=10):
            ...     print(job.id, job.counts)
        """
        request = job_service_pb2.ListJobsRequest(
            states=[_STATES[s.lower()] for s in states],
            qpu_id=qpu_id,
            order_by="create_time asc" if oldest_first else "",
            all_users=all_users,
        )
        return self._paginate(self._jobs.ListJobs, request, "jobs", Job._from_proto, limit)

    def cancel_job(self, job_id: str) -> Job:
        """Cancels a pending or running job and returns it (state ``cancelled``)."""
        request = job_service_pb2.CancelJobRequest(id=job_id)
        return Job._from_proto(self._unary(self._jobs.CancelJob, request).job)

    def watch(self, job_id: str) -> Iterator[Job]:
        """Yields the job now and after every change; ends after a terminal state.

        Closing the generator early cancels the underlying stream.

        Example:
            >>> for update in client.watch(job.id):
            ...     print(update.state)
        """
        call = self._jobs.WatchJob(
            job_service_pb2.WatchJobRequest(id=job_id), metadata=self._metadata()
        )
        try:
            for response in call:
                job = Job._from_proto(response.job)
                yield job
                if job.done:
                    return
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        finally:
            call.cancel()

    def wait(
        self, job_id: str, timeout: float | None = None, *, raise_on_failure: bool = False
    ) -> Job:
        """Blocks until the job is terminal, using the WatchJob stream (no polling).

        Args:
            job_id: The job to wait for.
            timeout: Seconds to wait at most; ``None`` waits forever.
            raise_on_failure: Raise :class:`JobFailedError` when the job failed instead
                of returning it.

        Returns:
            The terminal job.

        Raises:
            TimeoutError: The job did not finish within ``timeout`` (the stream is cancelled).
            JobFailedError: The job failed and ``raise_on_failure`` is set.
            JobNotFoundError: No such job visible to the caller.

        Example:
            >>> job = client.wait(client.submit_job([qasm]).id, timeout=60)
            >>> job.state
            'completed'
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        request = job_service_pb2.WatchJobRequest(id=job_id)

        def watch_once() -> Job:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"job {job_id} not finished after {timeout} s")
            # wait_for_ready: while the server restarts, the call waits for the channel to
            # reconnect instead of failing at once.
            call = self._jobs.WatchJob(
                request, metadata=self._metadata(), timeout=remaining, wait_for_ready=True
            )
            try:
                for response in call:
                    job = Job._from_proto(response.job)
                    if job.done:
                        return job
            finally:
                call.cancel()
            raise _StreamEnded(job_id)

        # Reopen the stream for as long as the server is unavailable and time remains.
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_unavailable),
            wait=_reconnect_wait,
            stop=tenacity.stop_never if timeout is None else tenacity.stop_before_delay(timeout),
            reraise=True,
        )
        try:
            job = retrying(watch_once)
        except _StreamEnded as err:
            raise TimeoutError(f"job {job_id} not finished after {timeout} s") from err
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED or _unavailable(err):
                raise TimeoutError(f"job {job_id} not finished after {timeout} s") from err
            raise from_rpc_error(err) from err
        if raise_on_failure and job.state == "failed":
            raise JobFailedError(job)
        return job

    def subscribe(self, topics: Iterable[str] = ()) -> Iterator[Event]:
        """Yields live changes ("jobs", "qpus", "notifications"; all when empty).

        The stream runs until the generator is closed, which cancels it.

        Example:
            >>> for event in client.subscribe(["jobs"]):
            ...     if event.job and event.job.done:
            ...         break
        """
        call = self._events.Subscribe(
            event_service_pb2.SubscribeRequest(topics=list(topics)), metadata=self._metadata()
        )
        try:
            for response in call:
                yield Event._from_proto(response)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise from_rpc_error(err) from err
        finally:
            call.cancel()
