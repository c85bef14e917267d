"""Users' job use cases: submission, visibility, listing and cancellation.

The driver-facing half (leases and results) is :mod:`qpi.server.services.lease_service`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qpi.server.domain import accounting
from qpi.server.domain import jobs as rules
from qpi.server.domain.capabilities import ensure_meas_level_supported
from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import InvalidArgumentError, NotFoundError, QpiError
from qpi.server.domain.listing import ListQuery, Total
from qpi.server.domain.models import Job, LeaseOffer, Qpu, Revocation, User
from qpi.server.services.events import EventBus
from qpi.server.services.principal import Principal
from qpi.server.services.qasm import in_process
from qpi.server.services.qpu_service import QpuService
from qpi.server.store.accounts import AccountRepository
from qpi.server.store.base import DuplicateKeyError
from qpi.server.store.job_batches import JobBatches
from qpi.server.store.job_listing import JobListing
from qpi.server.store.jobs import JobRepository, NewJob, NotStored

MEAS_RETURNS = {"single", "avg"}
MAX_BATCH = 1000
"""Most jobs one BatchCreateJobs call submits (AIP-233 leaves the bound to the service)."""


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


def check_batch(reqs: Sequence[SubmitRequest]) -> None:
    """The batch's own limits: 1..MAX_BATCH jobs, each idempotency key used once."""
    if not reqs:
        raise InvalidArgumentError(
            "INVALID_FIELD", "A batch needs at least one job.", field="requests"
        )
    if len(reqs) > MAX_BATCH:
        raise InvalidArgumentError(
            "BATCH_TOO_LARGE",
            f"A batch holds at most {MAX_BATCH} jobs; this one has {len(reqs)}.",
            field="requests",
            metadata={"max": MAX_BATCH, "size": len(reqs)},
        )
    seen: dict[str, int] = {}
    for index, req in enumerate(reqs):
        if req.request_id and seen.setdefault(req.request_id, index) != index:
            raise InvalidArgumentError(
                "INVALID_FIELD",
                f"Jobs {seen[req.request_id]} and {index} of the batch share the request_id "
                f"{req.request_id!r}.",
                field=f"requests[{index}].request_id",
                metadata={"index": index, "request_id": req.request_id},
            )


def at_index(exc: QpiError, index: int, prefix: str) -> QpiError:
    """`exc` as the error of job `index` of a batch (the whole batch is refused)."""
    inner = f"{prefix}.{exc.field}" if exc.field else prefix
    return type(exc)(
        exc.reason,
        f"Job {index} of the batch: {exc.message}",
        metadata={**exc.metadata, "index": index},
        field=f"requests[{index}].{inner}",
        retry_after=exc.retry_after,
    )


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
        listing: JobListing | None = None,
        batches: JobBatches | None = None,
    ) -> None:
        self._jobs = jobs
        self._listing = listing
        self._batches = batches
        self._shot_times = shot_times or accounting.ShotTimes(0.0)
        self._max_pending = max_pending_per_user
        self._accounts = accounts
        self._qpus = qpus
        self._clock = clock
        self._events = events
        self._limits = limits
        # How circuits are parsed when `submit` is not given a prepared payload: in this
        # process. The server prepares payloads in its parser pool instead (see
        # qpi.server.services.submission).
        self._max_qubits = max_qubits or in_process()

    def validate(self, req: SubmitRequest) -> rules.ValidatedPayload:
        """Structural checks of a submission (counts, sizes, headers, finite numbers):
        cheap, CPU only, no database, no QASM parsing."""
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
        return validated

    def prepare(self, req: SubmitRequest) -> tuple[rules.ValidatedPayload, int]:
        """:meth:`validate`, then parses the circuits in this process (no database)."""
        validated = self.validate(req)
        return validated, self._max_qubits([c.qasm for c in validated.circuits])

    def submit(
        self,
        who: Principal,
        req: SubmitRequest,
        prepared: tuple[rules.ValidatedPayload, int] | None = None,
    ) -> Job:
        """Validates (unless `prepared`), routes and enqueues a job.

        Everything that needs the database happens here, in one short transaction;
        checks against the chosen QPU belong in ``admit``.
        """
        return self.enqueue(who, req, prepared)[0]

    @contextmanager
    def submit_group(self) -> Iterator[bool]:
        """Every :meth:`enqueue` in the block shares one transaction where the store
        allows (see :meth:`JobRepository.submit_group`, whose answer it yields); their
        events go out once the block ends."""
        with self._events.held(), self._jobs.submit_group() as shared:
            yield shared

    def enqueue(
        self,
        who: Principal,
        req: SubmitRequest,
        prepared: tuple[rules.ValidatedPayload, int] | None = None,
        offer: LeaseOffer | None = None,
        *,
        built: bool = True,
    ) -> tuple[Job, bool]:
        """:meth:`submit`, and whether the job is new (False: an earlier job with the same
        `request_id`, returned as it is now).

        With a lease `offer` for the QPU the job is routed to, the job is stored already
        leased to that driver when nothing is queued ahead of it (see
        :meth:`JobRepository.insert`): the caller then hands it to the driver. Without
        `built`, the store does not try its one-round-trip way first (:meth:`enqueue_on_loop`
        was refused already)."""
        validated, qubits = prepared if prepared is not None else self.prepare(req)
        limited = self._max_pending
        route = self._router(req, validated, qubits)

        def admit(user: User, pending: int, named: Qpu | None) -> NewJob:
            # Runs with the owner's row locked, so one user's submits see each other.
            # The store may check these two rules itself instead (admission_guards).
            rules.ensure_can_submit(user.qpu_seconds, user.is_superuser)
            if limited and not user.is_superuser:  # superusers have no limit
                accounting.ensure_can_queue(pending, limited, user.is_superuser)
            return route(named)

        try:
            stored = self._jobs.insert(
                who.user_id,
                req.request_id or None,
                self._clock.now(),
                admit,
                pending_cap=limited,
                qpu_key=req.qpu,  # read with the owner, for routing
                offer=offer,
                can_reserve=accounting.can_reserve,
                route=route if built else None,
            )
        except DuplicateKeyError:  # a concurrent submit of the same request id won
            existing = self._jobs.by_request_id(who.user_id, req.request_id)
            if existing is None:
                raise
            return existing, False
        if stored is None:
            raise job_not_found("?")
        return self._published(*stored)

    async def enqueue_on_loop(
        self,
        who: Principal,
        req: SubmitRequest,
        prepared: tuple[rules.ValidatedPayload, int],
        offer: LeaseOffer | None = None,
    ) -> tuple[Job, bool] | NotStored:
        """:meth:`enqueue` in one round trip from the event loop, where the store can
        (PostgreSQL, a QPU the store read before, a free connection); what it could not
        store goes to :meth:`enqueue` (with ``built=False`` if it was refused)."""
        validated, qubits = prepared
        stored = await self._jobs.insert_on_loop(
            who.user_id,
            req.request_id or None,
            self._clock.now(),
            self._router(req, validated, qubits),
            qpu_key=req.qpu,
            pending_cap=self._max_pending,
            offer=offer,
        )
        if isinstance(stored, NotStored):
            return stored
        return self._published(*stored)

    def _router(
        self, req: SubmitRequest, validated: rules.ValidatedPayload, qubits: int
    ) -> Callable[[Qpu | None], NewJob]:
        """The part of a submit's admission that depends on the QPU it is routed to."""

        def route(named: Qpu | None) -> NewJob:
            qpu = self._qpus.route(req.qpu, qubits, named)
            ensure_meas_level_supported(qpu, validated.meas_level)
            shots = accounting.total_shots(validated.circuits, validated.shots)
            return NewJob(
                qpu.id,
                json.dumps(_payload_document(validated, req, qpu.id)),
                accounting.estimate_seconds(shots, self._shot_times.for_qpu(qpu.name)),
                qpu.name,
            )

        return route

    def _published(self, job: Job, new: bool) -> tuple[Job, bool]:
        """Announces a newly stored job (and wakes the dispatcher for a pending one)."""
        if new:
            self._events.publish("job", job)
            if job.state == "pending":  # a job stored leased adds nothing to the queue
                self._events.publish("dispatch", job.qpu_id)
        return job, new

    def validate_batch(self, reqs: Sequence[SubmitRequest]) -> list[rules.ValidatedPayload]:
        """:meth:`validate` for each job of a batch (after the batch's own limits); an
        error names the job's index."""
        check_batch(reqs)
        validated = []
        for index, req in enumerate(reqs):
            try:
                validated.append(self.validate(req))
            except QpiError as exc:
                raise at_index(exc, index, "payload") from exc
        return validated

    def prepare_batch(
        self, reqs: Sequence[SubmitRequest]
    ) -> list[tuple[rules.ValidatedPayload, int]]:
        """:meth:`validate_batch`, then parses in this process (each distinct circuit
        list once). The server parses in its pool instead (qpi.server.services.submission)."""
        validated = self.validate_batch(reqs)
        counted: dict[tuple[str, ...], int] = {}
        prepared = []
        for index, payload in enumerate(validated):
            group = tuple(c.qasm for c in payload.circuits)
            try:
                if group not in counted:
                    counted[group] = self._max_qubits(list(group))
            except QpiError as exc:
                raise at_index(exc, index, "payload") from exc
            prepared.append((payload, counted[group]))
        return prepared

    def submit_batch(
        self,
        who: Principal,
        reqs: Sequence[SubmitRequest],
        prepared: Sequence[tuple[rules.ValidatedPayload, int]] | None = None,
    ) -> list[Job]:
        """Enqueues a batch all or nothing (one transaction), in request order.

        Jobs whose ``request_id`` the caller used before are returned as they are, so a
        retried batch creates no duplicates.
        """
        if self._batches is None:
            raise RuntimeError("JobService was built without batch submission")
        if prepared is None:
            prepared = self.prepare_batch(reqs)
        check_batch(reqs)
        now = self._clock.now()

        def admit(user: User, pending: Callable[[], int], fresh: Sequence[int]) -> list[NewJob]:
            if not fresh:
                return []
            rules.ensure_can_submit(user.qpu_seconds, user.is_superuser)
            if self._max_pending:
                # Room for the whole batch, or none of it.
                waiting = pending() + len(fresh) - 1
                accounting.ensure_can_queue(waiting, self._max_pending, user.is_superuser)
            routes: dict[tuple[str, int], Any] = {}
            admitted = []
            for index in fresh:
                req, (validated, qubits) = reqs[index], prepared[index]
                try:
                    if (req.qpu, qubits) not in routes:
                        routes[(req.qpu, qubits)] = self._qpus.route(req.qpu, qubits)
                except QpiError as exc:
                    raise at_index(exc, index, "qpu") from exc
                qpu = routes[(req.qpu, qubits)]
                try:
                    ensure_meas_level_supported(qpu, validated.meas_level)
                except QpiError as exc:
                    raise at_index(exc, index, "payload") from exc
                shots = accounting.total_shots(validated.circuits, validated.shots)
                admitted.append(
                    NewJob(
                        qpu.id,
                        json.dumps(_payload_document(validated, req, qpu.id)),
                        accounting.estimate_seconds(shots, self._shot_times.for_qpu(qpu.name)),
                        qpu.name,
                    )
                )
            return admitted

        keys = [r.request_id or None for r in reqs]
        try:
            jobs = self._batches.insert_batch(who.user_id, keys, now, admit)
        except DuplicateKeyError:
            # A concurrent retry of the same batch won the race: answer with its jobs.
            jobs = self._batches.insert_batch(who.user_id, keys, now, admit)
        if jobs is None:
            raise job_not_found("?")
        fresh = [j for j in jobs if j.created >= now]
        for job in fresh:
            self._events.publish("job", job)
        for qpu_id in dict.fromkeys(j.qpu_id for j in fresh):
            self._events.publish("dispatch", qpu_id)
        return jobs

    def get(self, who: Principal, job_id: str) -> Job:
        """One visible job."""
        job = self._jobs.get(job_id)
        if job is None or not who.can_see(job.user_id):
            raise job_not_found(job_id)
        return job

    def get_named(
        self, who: Principal, job_id: str
    ) -> tuple[Job, tuple[dict[str, str], dict[str, str]]]:
        """One visible job with its display names (as :meth:`display_names` gives them),
        read together."""
        found = self._jobs.get_named(job_id)
        if found is None or not who.can_see(found[0].user_id):
            raise job_not_found(job_id)
        job, qpu_name, email = found
        qpus = {job.qpu_id: qpu_name} if job.qpu_id and qpu_name else {}
        return job, (qpus, {job.user_id: email} if email else {})

    def query_jobs_named(
        self, who: Principal, query: ListQuery, *, all_users: bool
    ) -> tuple[list[Job], Total | None, tuple[dict[str, str], dict[str, str]]]:
        """One page of visible jobs matching an arbitrary filter and order, run in the
        database; the count of all matches unless the query skips it; and the page's
        display names (see :meth:`display_names`), read in the same database session."""
        if all_users:
            who.require_admin()
        if self._listing is None:
            raise RuntimeError("JobService was built without a job listing")
        owner = None if all_users else who.user_id
        return self._listing.list_jobs_named(owner, query, self._clock.now())

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
        """QPU names and owner e-mails for a set of jobs (for display fields).

        A job of a deleted QPU has an empty `qpu_id`; it is shown under the name it kept.
        """
        return self._jobs.display_names(
            {j.qpu_id for j in jobs if j.qpu_id}, {j.user_id for j in jobs}
        )
