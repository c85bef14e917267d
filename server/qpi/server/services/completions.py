"""Group commit of driver results: results that arrive together are stored together.

Each result is one short transaction; under load many arrive while the database thread is
busy with the previous one. Instead of one thread hop and one commit each, results queue
here and one hop stores every queued result in one transaction (no added wait: a lone
result goes at once, and the queue only fills while a store is already running).
"""

from __future__ import annotations

from qpi.server.services.coalescer import Coalescer
from qpi.server.services.database import Database
from qpi.server.services.lease_service import DriverResult, LeaseService

MAX_BATCH = 64
"""Most results one transaction stores."""


class CompletionQueue:
    """Coalesces concurrent :meth:`LeaseService.complete` calls into batches."""

    def __init__(self, db: Database, leases: LeaseService, max_batch: int = MAX_BATCH) -> None:
        self._leases = leases
        self._batch: Coalescer[DriverResult, bool] = Coalescer(
            db, self._complete_one, self._complete_many, max_group=max_batch, name="Completions"
        )

    async def complete(self, result: DriverResult) -> bool:
        """Stores `result` (with whatever else is queued); whether it was accepted.

        Raises:
            UnavailableError: DATABASE_UNAVAILABLE, as :meth:`Database.run`.
        """
        return await self._batch.run(result)

    def _complete_many(self, results: list[DriverResult]) -> list[bool]:
        return self._leases.complete_many(results)

    def _complete_one(self, result: DriverResult) -> bool:
        return self._leases.complete(
            result.job_id,
            result.attempt,
            result.driver_id,
            result_json=result.result_json,
            error=result.error,
            execution_seconds=result.execution_seconds,
        )
