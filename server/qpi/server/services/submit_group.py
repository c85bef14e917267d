"""Group commit of submissions: submits that arrive together are stored together.

On SQLite every write goes through the one database thread, and a job's insert touches a
page of each of the jobs table's indexes: one transaction per submit pays that, and the
commit, for every job. Under load many submits arrive while the thread is busy; they queue
here and one hop stores them all in one transaction (no added wait: a lone submit goes at
once, and the queue only fills while a store is already running). A submit refused by its
own checks (funds, queue limit, routing, a reused request id) is refused alone.

On PostgreSQL the queued submits share the hop but keep a transaction each (see
`JobRepository.submit_group`), so any failure is its own submit's alone: one replica stores
its submits one after another instead of on eight threads that contend for the same
owners' rows, which measured 150-220 completed jobs/s against 120-130 before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from qpi.server.domain.errors import QpiError, UnavailableError
from qpi.server.services.database import Database
from qpi.server.services.job_service import JobService
from qpi.server.store.database import outages_as_unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_GROUP = 32
"""Most submits one transaction stores."""


class SubmitGroups(Generic[T]):
    """Runs submit use cases (blocking callables, each one :meth:`JobService.enqueue`
    and what it reads besides) in shared transactions."""

    def __init__(self, db: Database, jobs: JobService, max_group: int = MAX_GROUP) -> None:
        self._db = db
        self._jobs = jobs
        self._max_group = max_group
        self._queued: list[tuple[Callable[[], T], asyncio.Future[T]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def run(self, submit: Callable[[], T]) -> T:
        """`submit()` on the database thread, in a transaction shared with whatever else
        is queued; its result, or the error it raised.

        Raises:
            UnavailableError: DATABASE_UNAVAILABLE, as :meth:`Database.run`.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((submit, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away must not cancel the store of the others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queued:
            group = self._queued[: self._max_group]
            del self._queued[: self._max_group]
            await self._store(group)

    async def _store(self, group: list[tuple[Callable[[], T], asyncio.Future[T]]]) -> None:
        if len(group) == 1:
            submit, future = group[0]
            try:
                outcome: T | BaseException = await self._db.run(submit)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                outcome = exc
            _settle(future, outcome)
            return
        try:
            outcomes = await self._db.run(self._in_one_transaction, [s for s, _ in group])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            if isinstance(exc, UnavailableError):
                for _, future in group:
                    _settle(future, exc)
                return
            # Not one submit's own refusal (those are kept apart): store them one by one,
            # so one unexpected failure fails only its own submit.
            logger.warning("[SubmitGroups] a group of %d failed; storing one by one", len(group))
            for item in group:
                await self._store([item])
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            _settle(future, outcome)

    def _in_one_transaction(self, submits: list[Callable[[], T]]) -> list[T | Exception]:
        outcomes: list[T | Exception] = []
        with self._jobs.submit_group() as shared:
            for submit in submits:
                try:
                    with outages_as_unavailable():
                        outcomes.append(submit())
                except Exception as exc:
                    refused = isinstance(exc, QpiError) and not isinstance(exc, UnavailableError)
                    if shared and not refused:
                        # The shared transaction is suspect: roll it all back (the caller
                        # then stores the group one by one, or reports the outage to all).
                        raise
                    # Refused before it wrote, or its own transaction failed: the others
                    # stand (re-running them would store them twice where each committed).
                    outcomes.append(exc)
        return outcomes


def _settle(future: asyncio.Future[T], outcome: T | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
