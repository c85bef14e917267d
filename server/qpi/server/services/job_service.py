"""Users' job use cases: submission, visibility, listing and cancellation.

The driver-facing half (leases and results) is :mod:`qpi.server.services.lease_service`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qpi.server.domain import accounting
from qpi.server.domain import jobs as rules
from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, NotFoundError
from qpi.server.domain.models import Job, Revocation, User
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.services.qasm import count_qubits
from qpi.server.services.qpu_service import QpuService
from qpi.server.store.accounts import AccountRepository
from qpi.server.store.base import DuplicateKeyError
from qpi.server.store.jobs import JobRepository, NewJob

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
    """Job use cases of users (the lease half is LeaseService)."""

    def __init__(
        self,
        jobs: JobRepository,
        accounts: AccountRepository,
        qpus: QpuService,
        clock: Clock,
        events: EventBus,
        limits: rules.JobLimits,
        max_qubits: Callable[[list[str]], int] | None = None,
        shot_times: accounting.ShotTimes | None = None,
        max_pending_per_user: int = 0,
    ) -> None:
        self._jobs = jobs
        self._shot_times = shot_times or accounting.ShotTimes(0.0)
        self._max_pending = max_pending_per_user
        self._accounts = accounts
        self._qpus = qpus
        self._clock = clock
        self._events = events
        self._limits = limits
        # How circuits are parsed: in-process by default, a worker process in the server.
        self._max_qubits = max_qubits or (
            lambda sources: max(count_qubits(q, i) for i, q in enumerate(sources))
        )

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
    ) -> Job:
        """Validates (unless `prepared`), routes and enqueues a job."""
        if req.request_id:
            existing = self._jobs.by_request_id(who.user_id, req.request_id)
            if existing is not None:
                return existing
        validated, qubits = prepared if prepared is not None else self.prepare(req)
        now = self._clock.now()

        def admit(user: User, pending: Callable[[int], int]) -> NewJob:
            # Runs with the owner's row locked, so one user's submits see each other.
            rules.ensure_can_submit(user.qpu_seconds, user.is_superuser)
            if self._max_pending and not user.is_superuser:  # superusers have no limit
                accounting.ensure_can_queue(
                    pending(self._max_pending), self._max_pending, user.is_superuser
                )
            qpu = self._qpus.route(req.qpu, qubits)
            shots = accounting.total_shots(validated.circuits, validated.shots)
            return NewJob(
                qpu.id,
                json.dumps(_payload_document(validated, req, qpu.id)),
                accounting.estimate_seconds(shots, self._shot_times.for_qpu(qpu.name)),
            )

        try:
            job = self._jobs.insert(who.user_id, req.request_id or None, now, admit)
        except DuplicateKeyError:
            existing = self._jobs.by_request_id(who.user_id, req.request_id)
            if existing is None:
                raise
            return existing
        if job is None:
            raise job_not_found("?")
        self._events.publish("job", job)
        self._events.publish("dispatch", job.qpu_id)
        return job

    def get(self, who: Principal, job_id: str) -> Job:
        """One visible job."""
        job = self._jobs.get(job_id)
        if job is None or not who.can_see(job.user_id):
            raise job_not_found(job_id)
        return job

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
    ) -> tuple[list[Job], int]:
        """Visible jobs with filters."""
        if all_users:
            who.require_admin()
        return self._jobs.list_jobs(
            None if all_users else who.user_id,
            states=states,
            qpu_id=qpu_id,
            newest_first=newest_first,
            offset=offset,
            limit=limit,
        )

    def cancel(self, who: Principal, job_id: str) -> tuple[Job, Revocation | None]:
        """Cancels a pending or running job; a running lease must also be revoked."""
        self.get(who, job_id)  # visibility first: others' jobs are "not found"
        outcome = self._jobs.cancel(
            job_id, self._clock.now(), lambda state: rules.ensure_can_cancel(state, job_id)
        )
        if outcome is None:
            raise job_not_found(job_id)
        job, revocation = outcome
        self._events.publish("job", job)
        self._events.publish("dispatch", job.qpu_id)
        return job, revocation

    def display_names(self, jobs: Sequence[Job]) -> tuple[dict[str, str], dict[str, str]]:
        """QPU names and owner e-mails for a set of jobs (for display fields)."""
        return self._jobs.display_names({j.qpu_id for j in jobs}, {j.user_id for j in jobs})
