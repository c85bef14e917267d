"""Job submission: the expensive checks off the database thread, then one short write.

A submission goes through three steps, and only the last touches the database:

1. structural checks (counts, sizes, headers, finite numbers) in the caller's task;
2. the QASM pre-scan and parse in the parser pool (:mod:`qpi.server.services.qasm`),
   which bounds time and memory per job and runs several jobs side by side;
3. :meth:`JobService.submit` with the prepared payload: idempotency, balance and queue
   checks, routing and the insert, in one short transaction on the database thread; on
   PostgreSQL, for a QPU submitted to before, from the event loop in one round trip
   (:meth:`JobService.enqueue_on_loop`), the checks then being conditions of the insert.

When a driver of the job's QPU has a free slot and nothing is queued there, the
dispatcher offers that slot before step 3 (:class:`DirectLeases`), and the job is stored
already leased to it: the job starts without a dispatch round (one transaction, one
database hop fewer), which is most of an idle job's latency on PostgreSQL.

On SQLite there is a single database thread, so keeping steps 1 and 2 away from it is
what keeps one large submission from freezing every other request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from qpi.server.domain import jobs as rules
from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.domain.models import Job, LeaseOffer
from qpi.server.services.database import Database
from qpi.server.services.job_service import JobService, SubmitRequest, at_index
from qpi.server.services.principal import Principal
from qpi.server.services.qasm import BatchWidths
from qpi.server.services.submit_group import SubmitGroups
from qpi.server.store.database import outages_as_unavailable
from qpi.server.store.jobs import NotStored

MaxQubits = Callable[[list[str]], Awaitable[int]]
"""Parses a job's circuits (in a worker) and returns the widest one's qubit count."""

MaxQubitsEach = Callable[[list[list[str]]], Awaitable[BatchWidths]]
"""Parses several jobs' circuits in one worker task (see `QasmParserPool.max_qubits_each`)."""


class DirectLeases(Protocol):
    """Offers drivers' free slots to submissions (the dispatcher)."""

    def offer(self, qpu: str) -> LeaseOffer | None:
        """A free slot for a job submitted to `qpu` (an id, a name, or "" for any), held
        until :meth:`settle`; None when the job must go through the queue."""
        ...

    def settle(self, offer: LeaseOffer | None, job: Job | None) -> None:
        """The outcome of a submission: the job stored (None: refused, or an earlier job
        returned again); a job stored leased on the offer is handed to its driver."""
        ...


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
        *,
        on_loop: bool = False,
    ) -> None:
        """`on_loop`: the store can write submits from the event loop (see
        :meth:`JobService.enqueue_on_loop`)."""
        self._db = db
        self._jobs = jobs
        self._groups: SubmitGroups[tuple[Job, bool]] = SubmitGroups(db, jobs)
        self._max_qubits = max_qubits
        self._max_qubits_each = max_qubits_each
        self._direct: DirectLeases | None = None
        self._on_loop = on_loop
        self._settling: set[asyncio.Task[tuple[Job, bool]]] = set()

    def use_direct_leases(self, leases: DirectLeases) -> None:
        """Lets submissions be stored already leased to an idle driver (see the module)."""
        self._direct = leases

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
        offer = self._direct.offer(prepared.request.qpu) if self._direct else None
        if offer is None and not self._on_loop:  # nothing can outlive the caller
            job, new = await self._stored(who, prepared, None)
            if self._direct is not None:
                self._direct.settle(None, job if new else None)  # learns the QPU's name
            return job, new
        # The store runs to its end even if the caller goes away: a job stored from the
        # loop must still be announced (the dispatcher waits for that), a job stored
        # leased must reach its driver, and an offer must be given back either way.
        store = asyncio.ensure_future(self._stored(who, prepared, offer))
        self._settling.add(store)  # the loop keeps only a weak reference to a task
        # The answer goes out before the Assign is written (the job is safely stored):
        # the shield's callback wakes the caller, and the hand-over waits one more turn
        # of the loop, after the caller has resumed and sent its answer. A plain done
        # callback would run first, before the caller resumes.
        answer = asyncio.shield(store)
        loop = asyncio.get_running_loop()
        store.add_done_callback(lambda done: loop.call_soon(self._settle, offer, done))
        return await answer

    async def _stored(
        self, who: Principal, prepared: PreparedSubmission, offer: LeaseOffer | None
    ) -> tuple[Job, bool]:
        """The job stored from the event loop in one round trip where it can be (see
        :meth:`JobService.enqueue_on_loop`), else by a database thread."""
        built = True
        if self._on_loop:
            with outages_as_unavailable():
                stored = await self._jobs.enqueue_on_loop(
                    who, prepared.request, prepared.prepared, offer
                )
            if not isinstance(stored, NotStored):
                return stored
            built = stored is NotStored.UNTRIED
        enqueue = functools.partial(
            self._jobs.enqueue, who, prepared.request, prepared.prepared, offer, built=built
        )
        return await self._groups.run(enqueue)

    def _settle(self, offer: LeaseOffer | None, store: asyncio.Task[tuple[Job, bool]]) -> None:
        self._settling.discard(store)
        stored = None
        if not store.cancelled() and store.exception() is None:
            job, new = store.result()
            stored = job if new else None
        if self._direct is not None:
            self._direct.settle(offer, stored)

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
