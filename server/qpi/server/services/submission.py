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

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from qpi.server.domain import jobs as rules
from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.domain.models import Job
from qpi.server.services.database import Database
from qpi.server.services.job_service import JobService, SubmitRequest, at_index
from qpi.server.services.principal import Principal
from qpi.server.services.qasm import BatchWidths
from qpi.server.services.submit_group import SubmitGroups

MaxQubits = Callable[[list[str]], Awaitable[int]]
"""Parses a job's circuits (in a worker) and returns the widest one's qubit count."""

MaxQubitsEach = Callable[[list[list[str]]], Awaitable[BatchWidths]]
"""Parses several jobs' circuits in one worker task (see `QasmParserPool.max_qubits_each`)."""


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

    def __init__(
        self,
        db: Database,
        jobs: JobService,
        max_qubits: MaxQubits,
        max_qubits_each: MaxQubitsEach | None = None,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._groups: SubmitGroups[tuple[Job, bool]] = SubmitGroups(db, jobs)
        self._max_qubits = max_qubits
        self._max_qubits_each = max_qubits_each

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
        return (await self.store(who, prepared))[0]

    async def store(self, who: Principal, prepared: PreparedSubmission) -> tuple[Job, bool]:
        """Stores a validated job, in one transaction with the submits that arrive at the
        same time where the store allows (see :mod:`qpi.server.services.submit_group`);
        the job and whether it is new (False: an earlier job of the same request id)."""
        return await self._groups.run(
            functools.partial(self._jobs.enqueue, who, prepared.request, prepared.prepared)
        )

    async def submit(self, who: Principal, req: SubmitRequest) -> Job:
        """Validates, then enqueues one job."""
        return await self.enqueue(who, await self.validate(req))

    async def submit_batch(self, who: Principal, reqs: Sequence[SubmitRequest]) -> list[Job]:
        """Validates every job of a batch (structure, then each distinct circuit list once,
        in one parser task), then enqueues them all or nothing in one transaction."""
        payloads = self._jobs.validate_batch(reqs)
        groups = [tuple(c.qasm for c in p.circuits) for p in payloads]
        unique = list(dict.fromkeys(groups))
        widths = await self._widths([list(g) for g in unique])
        if isinstance(widths, tuple):
            index, exc = widths
            raise at_index(exc, groups.index(unique[index]), "payload") from exc
        width_of = dict(zip(unique, widths, strict=True))
        prepared = [(p, width_of[g]) for p, g in zip(payloads, groups, strict=True)]
        return await self._db.run(self._jobs.submit_batch, who, reqs, prepared)

    async def _widths(
        self, groups: list[list[str]]
    ) -> list[int] | tuple[int, InvalidArgumentError]:
        """Per group the widest circuit, or the first refused group and its error."""
        if self._max_qubits_each is not None:
            widths, refused = await self._max_qubits_each(groups)
            return refused if refused is not None else widths
        out = []
        for index, group in enumerate(groups):
            try:
                out.append(await self._max_qubits(group))
            except InvalidArgumentError as exc:
                return index, exc
        return out
