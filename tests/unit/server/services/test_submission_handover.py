"""A job stored leased to an idle driver (services/submission.py): its submitter's answer
comes first, the hand-over to the driver right after, and the hand-over happens even if
the submitter has gone away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from qpi.server.domain.models import Job, LeaseOffer
from qpi.server.services.submission import PreparedSubmission, SubmissionService
from tests.support.domain_jobs import running_job

NOW = datetime(2030, 1, 1, tzinfo=UTC)
OFFER = LeaseOffer(qpu_id="q1", driver_id="d1", session_id="s1", expires=NOW)
JOB = running_job(qpu_name="mock")


class _Db:
    """Runs use cases inline, after one turn of the loop (as a thread hop would)."""

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return fn(*args, **kwargs)


class _Jobs:
    @contextmanager
    def submit_group(self) -> Iterator[bool]:
        yield False

    def enqueue(
        self, who: Any, req: Any, prepared: Any, offer: Any, *, built: bool = True
    ) -> tuple[Job, bool]:
        assert offer is OFFER
        return JOB, True


class _Leases:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def offer(self, qpu: str) -> LeaseOffer | None:
        return OFFER

    def settle(self, offer: LeaseOffer | None, job: Job | None) -> None:
        assert offer is OFFER
        self.log.append(f"hand-over {job.id if job else None}")


def _service(log: list[str]) -> SubmissionService:
    service = SubmissionService(_Db(), _Jobs(), max_qubits=None)  # type: ignore[arg-type]
    service.use_direct_leases(_Leases(log))
    return service


_PREPARED = PreparedSubmission(SimpleNamespace(qpu="mock"), None, 2)  # type: ignore[arg-type]


async def test_the_submitter_is_answered_before_the_driver_gets_the_job() -> None:
    log: list[str] = []
    service = _service(log)

    async def submitter() -> None:
        job, new = await service.store(SimpleNamespace(), _PREPARED)  # type: ignore[arg-type]
        log.append(f"answer {job.id} new={new}")  # what a servicer then sends back

    await submitter()
    for _ in range(3):
        await asyncio.sleep(0)
    assert log == ["answer j1 new=True", "hand-over j1"]


async def test_the_job_reaches_its_driver_when_the_submitter_went_away() -> None:
    log: list[str] = []
    service = _service(log)
    task = asyncio.create_task(service.store(SimpleNamespace(), _PREPARED))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()  # the client hung up while the job was being stored
    for _ in range(50):  # a few turns of the loop: the store runs on without the caller
        if log:
            break
        await asyncio.sleep(0)
    assert task.cancelled()
    assert log == ["hand-over j1"]
