"""Group commit of driver results (services/completions.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from qpi.server.domain.errors import database_unavailable
from qpi.server.services.completions import CompletionQueue
from qpi.server.services.lease_service import DriverResult
from tests.support.gated_db import GatedDb


class _Leases:
    def __init__(self, bad: str = "") -> None:
        self.calls: list[list[str]] = []
        self.bad = bad

    def complete(self, job_id: str, attempt: int, driver_id: str, **_: Any) -> bool:
        if job_id == self.bad:
            raise ValueError("cannot store this one")
        self.calls.append([job_id])
        return job_id != "stale"

    def complete_many(self, results: Sequence[DriverResult]) -> list[bool]:
        if any(r.job_id == self.bad for r in results):
            raise ValueError("cannot store this one")
        self.calls.append([r.job_id for r in results])
        return [r.job_id != "stale" for r in results]


def _result(job_id: str) -> DriverResult:
    return DriverResult(job_id, 1, "d1", "{}", None, 1.0)


async def _complete_all(queue: CompletionQueue, db: GatedDb, ids: list[str]) -> list[Any]:
    tasks = [asyncio.create_task(queue.complete(_result(i))) for i in ids]
    await asyncio.sleep(0)  # every result is queued while the first store waits
    db.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_results_arriving_together_share_one_transaction() -> None:
    db, leases = GatedDb(), _Leases()
    queue = CompletionQueue(db, leases)  # type: ignore[arg-type]
    outcomes = await _complete_all(queue, db, ["a", "b", "stale", "d"])
    # Queued before the database thread was free: all stored in one transaction.
    assert leases.calls == [["a", "b", "stale", "d"]]
    assert outcomes == [True, True, False, True]


async def test_one_bad_result_does_not_fail_the_others() -> None:
    db, leases = GatedDb(), _Leases(bad="c")
    queue = CompletionQueue(db, leases)  # type: ignore[arg-type]
    outcomes = await _complete_all(queue, db, ["a", "b", "c", "d"])
    assert outcomes[:2] == [True, True]
    assert outcomes[3] is True
    assert isinstance(outcomes[2], ValueError)
    assert leases.calls == [["a"], ["b"], ["d"]]  # retried one by one after the batch failed


async def test_an_outage_reaches_every_waiting_caller() -> None:
    db, leases = GatedDb(), _Leases()
    db.fail_with = database_unavailable()
    queue = CompletionQueue(db, leases)  # type: ignore[arg-type]
    outcomes = await _complete_all(queue, db, ["a", "b", "c"])
    assert all(type(o) is type(db.fail_with) for o in outcomes)
    assert leases.calls == []
