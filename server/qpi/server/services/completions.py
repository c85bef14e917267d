"""Group commit of driver results: results that arrive together are stored together.

Each result is one short transaction; under load many arrive while the database thread is
busy with the previous one. Instead of one thread hop and one commit each, results queue
here and one hop stores every queued result in one transaction (no added wait: a lone
result goes at once, and the queue only fills while a store is already running).
"""

from __future__ import annotations

import asyncio
import logging

from qpi.server.domain.errors import UnavailableError
from qpi.server.services.database import Database
from qpi.server.services.lease_service import DriverResult, LeaseService

logger = logging.getLogger(__name__)

MAX_BATCH = 64
"""Most results one transaction stores."""


class CompletionQueue:
    """Coalesces concurrent :meth:`LeaseService.complete` calls into batches."""

    def __init__(self, db: Database, leases: LeaseService, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._leases = leases
        self._max_batch = max_batch
        self._queued: list[tuple[DriverResult, asyncio.Future[bool]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def complete(self, result: DriverResult) -> bool:
        """Stores `result` (with whatever else is queued); whether it was accepted.

        Raises:
            UnavailableError: DATABASE_UNAVAILABLE, as :meth:`Database.run`.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.append((result, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away must not cancel the store of the others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queued:
            batch = self._queued[: self._max_batch]
            del self._queued[: self._max_batch]
            await self._store(batch)

    async def _store(self, batch: list[tuple[DriverResult, asyncio.Future[bool]]]) -> None:
        try:
            if len(batch) == 1:
                accepted = [await self._db.run(self._complete_one, batch[0][0])]
            else:
                accepted = await self._db.run(self._leases.complete_many, [r for r, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            if len(batch) > 1 and not isinstance(exc, UnavailableError):
                # One bad result must not fail the others: store them one by one.
                logger.warning("[Completions] a batch of %d failed; storing one by one", len(batch))
                for item in batch:
                    await self._store([item])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), ok in zip(batch, accepted, strict=True):
            if not future.done():
                future.set_result(ok)

    def _complete_one(self, result: DriverResult) -> bool:
        return self._leases.complete(
            result.job_id,
            result.attempt,
            result.driver_id,
            result_json=result.result_json,
            error=result.error,
            execution_seconds=result.execution_seconds,
        )
