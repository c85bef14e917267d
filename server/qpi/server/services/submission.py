"""Job submission: the expensive checks off the database thread, then one short write.

A submission goes through three steps, and only the last touches the database:

1. structural checks (counts, sizes, headers, finite numbers) in the caller's task;
2. the QASM pre-scan and parse in the parser pool (:mod:`qpi.server.services.qasm`),
   which bounds time and memory per job and runs several jobs side by side;
3. :meth:`JobService.submit` with the prepared payload: idempotency, balance and queue
   checks, routing and the insert, in one short transaction on the database thread.

On SQLite there is a single database thread, so keeping steps 1 and 2 away from it is
what keeps one large submission from freezing every other request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qpi.server.domain import jobs as rules
from qpi.server.domain.models import Job
from qpi.server.services.database import Database
from qpi.server.services.job_service import JobService, SubmitRequest
from qpi.server.services.principal import Principal

MaxQubits = Callable[[list[str]], Awaitable[int]]
"""Parses a job's circuits (in a worker) and returns the widest one's qubit count."""


@dataclass(frozen=True)
class PreparedSubmission:
    """One job's payload after every check that needs no database."""

    request: SubmitRequest
    payload: rules.ValidatedPayload
    qubits: int

    @property
    def prepared(self) -> tuple[rules.ValidatedPayload, int]:
        """The form :meth:`JobService.submit` takes."""
        return self.payload, self.qubits


class SubmissionService:
    """The submit use case, as transports call it."""

    def __init__(self, db: Database, jobs: JobService, max_qubits: MaxQubits) -> None:
        self._db = db
        self._jobs = jobs
        self._max_qubits = max_qubits

    async def validate(self, req: SubmitRequest) -> PreparedSubmission:
        """Checks one job's payload without the database: structure first (cheap), then
        the circuits in the parser pool. Reusable for every job of a batch.

        Raises:
            InvalidArgumentError: INVALID_FIELD, INVALID_QASM, QASM_INCLUDE_FORBIDDEN,
                CIRCUIT_TOO_LARGE or PARSE_BUDGET_EXCEEDED.
            ResourceExhaustedError: PAYLOAD_TOO_LARGE.
            UnavailableError: PARSER_BUSY.
        """
        payload = self._jobs.validate(req)
        qubits = await self._max_qubits([c.qasm for c in payload.circuits])
        return PreparedSubmission(req, payload, qubits)

    async def enqueue(self, who: Principal, prepared: PreparedSubmission) -> Job:
        """Stores a validated job (one short transaction on the database thread)."""
        return await self._db.run(self._jobs.submit, who, prepared.request, prepared.prepared)

    async def submit(self, who: Principal, req: SubmitRequest) -> Job:
        """Validates, then enqueues one job."""
        return await self.enqueue(who, await self.validate(req))
