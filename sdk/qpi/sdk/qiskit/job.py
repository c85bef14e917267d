"""``QPIJob``: a Qiskit ``JobV1`` whose result arrives over the WatchJob stream."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qiskit.providers import JobStatus, JobV1
from qiskit.result import Result

from qpi.sdk.errors import FailedPreconditionError, JobCancelledError, JobFailedError
from qpi.sdk.models import Job
from qpi.sdk.qiskit._result import to_qiskit_result

if TYPE_CHECKING:
    from qpi.sdk.client import QPIClient
    from qpi.sdk.qiskit.backend import QPIBackend

_STATUS = {
    "pending": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "completed": JobStatus.DONE,
    "failed": JobStatus.ERROR,
    "cancelled": JobStatus.CANCELLED,
}


class QPIJob(JobV1):  # type: ignore[misc]
    """A job submitted through :meth:`QPIBackend.run` (or wrapped by ``client.job(id)``).

    Example:
        >>> job = backend.run(bell, shots=1000)
        >>> job.status()
        <JobStatus.QUEUED: 'job is queued'>
        >>> job.result(timeout=60).get_counts()
        {'00': 507, '11': 493}
    """

    def __init__(
        self,
        backend: QPIBackend | None,
        job_id: str,
        client: QPIClient,
        *,
        headers: Sequence[dict[str, Any] | None] | None = None,
        meas_level: int = 2,
        memory: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(backend, job_id)
        self._client = client
        self._headers = list(headers) if headers is not None else None
        self._meas_level = meas_level
        self._memory = memory
        self._seed = seed
        self._result: Result | None = None
        self._lock = threading.Lock()

    def submit(self) -> None:
        """Not supported: QPI jobs are submitted by ``backend.run``.

        Raises:
            NotImplementedError: Always.
        """
        raise NotImplementedError("QPI jobs are submitted by QPIBackend.run()")

    def status(self) -> JobStatus:
        """Returns the job's current status (one GetJob call)."""
        job = self._client.get_job(self.job_id())
        return _STATUS.get(job.state, JobStatus.ERROR)

    def cancel(self) -> bool:
        """Cancels the job; ``False`` when it had already finished."""
        try:
            self._client.cancel_job(self.job_id())
        except FailedPreconditionError:
            return False
        return True

    def qpi_job(self, timeout: float | None = None) -> Job:
        """Waits for the job (streamed) and returns QPI's own view of it."""
        return self._client.wait(self.job_id(), timeout)

    def result(self, timeout: float | None = None) -> Result:
        """Waits for the job over the WatchJob stream and returns a Qiskit ``Result``.

        Args:
            timeout: Seconds to wait at most; ``None`` waits until the job ends.

        Raises:
            TimeoutError: The job did not finish in time.
            JobFailedError: The job failed (``.job.error`` says why).
            JobCancelledError: The job was cancelled.
        """
        with self._lock:
            if self._result is None:
                job = self._client.wait(self.job_id(), timeout)
                if job.state == "failed":
                    raise JobFailedError(job)
                if job.state == "cancelled":
                    raise JobCancelledError(job)
                name = self._backend.name if self._backend is not None else job.qpu_name
                self._result = to_qiskit_result(
                    job,
                    backend_name=name,
                    headers=self._headers,
                    meas_level=self._meas_level,
                    memory=self._memory,
                    seed=self._seed,
                )
            return self._result
