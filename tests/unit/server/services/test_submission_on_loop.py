"""Submits stored from the event loop (services/submission.py, PostgreSQL): which way each
submit takes, and that a stored job is announced even if its submitter went away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from qpi.server.domain.models import Job
from qpi.server.services.submission import PreparedSubmission, SubmissionService
from qpi.server.store.jobs import NotStored
from tests.support.domain_jobs import make_job

STORED = make_job(id="j-loop")
THREADED = make_job(id="j-thread")
_PREPARED = PreparedSubmission(SimpleNamespace(qpu="q1"), None, 2)  # type: ignore[arg-type]


class _Db:
    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return fn(*args, **kwargs)


class _Jobs:
    """JobService's two ways of storing a job, recording which ran."""

    def __init__(self, on_loop: tuple[Job, bool] | NotStored, pause: bool = False) -> None:
        self.on_loop = on_loop
        self.pause = pause
        self.log: list[str] = []

    @contextmanager
    def submit_group(self) -> Iterator[bool]:
        yield False

    async def enqueue_on_loop(
        self, who: Any, req: Any, prepared: Any, offer: Any
    ) -> tuple[Job, bool] | NotStored:
        if self.pause:  # a round trip to the database
            await asyncio.sleep(0.01)
        self.log.append("loop")
        if not isinstance(self.on_loop, NotStored):
            self.log.append(f"announced {self.on_loop[0].id}")  # enqueue_on_loop publishes
        return self.on_loop

    def enqueue(
        self, who: Any, req: Any, prepared: Any, offer: Any, *, built: bool = True
    ) -> tuple[Job, bool]:
        self.log.append(f"thread built={built}")
        return THREADED, True


def _service(jobs: _Jobs) -> SubmissionService:
    return SubmissionService(_Db(), jobs, max_qubits=None, on_loop=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("on_loop", "expected_log", "expected_job"),
    [
        ((STORED, True), ["loop", "announced j-loop"], STORED),
        # Nothing sent (no free connection, or no QPU known yet): the thread may build it.
        (NotStored.UNTRIED, ["loop", "thread built=True"], THREADED),
        # A guard refused: only the full admission decides, without building again.
        (NotStored.REFUSED, ["loop", "thread built=False"], THREADED),
    ],
)
async def test_each_submit_is_stored_once_by_the_first_way_that_can(
    on_loop: tuple[Job, bool] | NotStored, expected_log: list[str], expected_job: Job
) -> None:
    jobs = _Jobs(on_loop)
    job, new = await _service(jobs).store(SimpleNamespace(), _PREPARED)  # type: ignore[arg-type]
    assert (job, new) == (expected_job, True)
    assert jobs.log == expected_log


async def test_a_job_stored_from_the_loop_is_announced_when_the_submitter_went_away() -> None:
    jobs = _Jobs((STORED, True), pause=True)
    task = asyncio.create_task(_service(jobs).store(SimpleNamespace(), _PREPARED))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()  # the client hung up while its job was being stored
    for _ in range(100):
        if jobs.log:
            break
        await asyncio.sleep(0.005)
    assert task.cancelled()
    assert jobs.log == ["loop", "announced j-loop"]  # stored and announced all the same


def test_without_the_loop_way_the_thread_stores_every_submit() -> None:
    jobs = _Jobs((STORED, True))
    service = SubmissionService(_Db(), jobs, max_qubits=None)  # type: ignore[arg-type]
    job, _ = asyncio.run(service.store(SimpleNamespace(), _PREPARED))  # type: ignore[arg-type]
    assert job == THREADED
    assert jobs.log == ["thread built=True"]
