"""Group commit of submissions (services/submit_group.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from qpi.server.domain.errors import (
    FailedPreconditionError,
    UnavailableError,
    database_unavailable,
)
from qpi.server.services.submit_group import SubmitGroups
from tests.support.gated_db import GatedDb


class _Jobs:
    """Records which submits ran in which group."""

    def __init__(self, shared: bool = True) -> None:
        self.groups: list[list[str]] = []
        self.ran: list[str] = []
        self.shared = shared  # whether the store shares one transaction (SQLite)
        self._current: list[str] | None = None

    @contextmanager
    def submit_group(self) -> Iterator[bool]:
        self._current = []
        self.groups.append(self._current)
        try:
            yield self.shared
        finally:
            self._current = None

    def submit(self, name: str) -> Callable[[], str]:
        def run() -> str:
            if self._current is not None:
                self._current.append(name)
            self.ran.append(name)
            if name == "broke":
                raise ValueError("not a refusal")
            if name.startswith("refused"):
                raise FailedPreconditionError("QPU_DISABLED", name)
            return f"job-{name}"

        return run


async def _submit_all(
    groups: SubmitGroups[str], db: GatedDb, jobs: _Jobs, names: list[str]
) -> list[Any]:
    tasks = [asyncio.create_task(groups.run(jobs.submit(n))) for n in names]
    await asyncio.sleep(0)  # every submit is queued while the first store waits
    db.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_submits_arriving_together_share_one_transaction() -> None:
    db, jobs = GatedDb(), _Jobs()
    groups: SubmitGroups[str] = SubmitGroups(db, jobs)  # type: ignore[arg-type]
    outcomes = await _submit_all(groups, db, jobs, ["a", "b", "c", "d"])
    assert outcomes == ["job-a", "job-b", "job-c", "job-d"]
    assert jobs.groups == [["a", "b", "c", "d"]]


async def test_a_lone_submit_goes_at_once_without_a_group() -> None:
    db, jobs = GatedDb(), _Jobs()
    db.gate.set()
    groups: SubmitGroups[str] = SubmitGroups(db, jobs)  # type: ignore[arg-type]
    assert await groups.run(jobs.submit("a")) == "job-a"
    assert (jobs.groups, jobs.ran) == ([], ["a"])


async def test_a_refused_submit_is_refused_alone() -> None:
    db, jobs = GatedDb(), _Jobs()
    groups: SubmitGroups[str] = SubmitGroups(db, jobs)  # type: ignore[arg-type]
    outcomes = await _submit_all(groups, db, jobs, ["a", "refused", "c"])
    assert outcomes[0] == "job-a"
    assert outcomes[2] == "job-c"
    assert isinstance(outcomes[1], FailedPreconditionError)
    assert jobs.groups == [["a", "refused", "c"]]  # still one transaction


async def test_an_unexpected_failure_stores_the_others_one_by_one() -> None:
    db, jobs = GatedDb(), _Jobs()
    groups: SubmitGroups[str] = SubmitGroups(db, jobs)  # type: ignore[arg-type]
    outcomes = await _submit_all(groups, db, jobs, ["a", "broke", "c"])
    assert outcomes[0] == "job-a"
    assert outcomes[2] == "job-c"
    assert isinstance(outcomes[1], ValueError)
    # The group rolled back at "broke"; then each ran alone, outside any group.
    assert jobs.groups == [["a", "broke"]]
    assert jobs.ran == ["a", "broke", "a", "broke", "c"]


async def test_an_outage_reaches_every_waiting_submit() -> None:
    db, jobs = GatedDb(), _Jobs()
    db.fail_with = database_unavailable()
    groups: SubmitGroups[str] = SubmitGroups(db, jobs)  # type: ignore[arg-type]
    outcomes = await _submit_all(groups, db, jobs, ["a", "b", "c"])
    assert all(type(o) is type(database_unavailable()) for o in outcomes)
    assert jobs.ran == []


async def test_groups_are_capped() -> None:
    db, jobs = GatedDb(), _Jobs()
    groups: SubmitGroups[str] = SubmitGroups(db, jobs, max_group=2)  # type: ignore[arg-type]
    outcomes = await _submit_all(groups, db, jobs, ["a", "b", "c", "d", "e"])
    assert outcomes == ["job-a", "job-b", "job-c", "job-d", "job-e"]
    # Groups of at most two; the last one left goes alone.
    assert [len(g) for g in jobs.groups] == [2, 2]
    assert jobs.ran == ["a", "b", "c", "d", "e"]


async def test_without_a_shared_transaction_a_failure_stays_with_its_submit() -> None:
    # PostgreSQL: each submit committed on its own, so none may be stored a second time.
    db, jobs = GatedDb(), _Jobs(shared=False)
    groups: SubmitGroups[str] = SubmitGroups(db, jobs)  # type: ignore[arg-type]
    outcomes = await _submit_all(groups, db, jobs, ["a", "broke", "refused", "d"])
    assert outcomes[0] == "job-a"
    assert outcomes[3] == "job-d"
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], FailedPreconditionError)
    assert jobs.ran == ["a", "broke", "refused", "d"]  # each once


async def test_an_outage_inside_a_shared_group_fails_the_whole_group() -> None:
    db, jobs = GatedDb(), _Jobs()
    groups: SubmitGroups[str] = SubmitGroups(db, jobs)  # type: ignore[arg-type]

    def lost_connection() -> str:
        jobs.ran.append("lost")
        raise sqlite3.OperationalError("disk I/O error")

    tasks = [
        asyncio.create_task(groups.run(jobs.submit("a"))),
        asyncio.create_task(groups.run(lost_connection)),
        asyncio.create_task(groups.run(jobs.submit("c"))),
    ]
    await asyncio.sleep(0)
    db.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    # SQLite may have rolled the shared transaction back: nobody is told "stored".
    assert all(isinstance(o, UnavailableError) for o in outcomes)
    assert jobs.ran == ["a", "lost"]
