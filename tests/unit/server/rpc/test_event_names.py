"""Job events share one name lookup across subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from qpi.server.domain.errors import NotFoundError, UnavailableError, database_unavailable
from qpi.server.domain.models import Job
from qpi.server.rpc import event_servicer
from qpi.server.services.principal import Principal
from tests.support.domain_jobs import make_job


class _CountingDb:
    def __init__(self, fail_first: bool = False) -> None:
        self.lookups = 0
        self._fail_first = fail_first

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.lookups += 1
        await asyncio.sleep(0.01)  # concurrent callers overlap with the lookup
        if self._fail_first and self.lookups == 1:
            raise RuntimeError("database hiccup")
        return {"q1": "Q-one"}, {"u1": "a@example.com"}


def _row() -> Job:
    return make_job()


def _unused_lookup(jobs: object) -> Any:
    raise AssertionError("the fake database answers instead")


async def test_many_subscribers_cost_one_lookup() -> None:
    db = _CountingDb()
    names = event_servicer._DisplayNames(db, _unused_lookup)  # type: ignore[arg-type]
    results = await asyncio.gather(*(names.of(_row()) for _ in range(100)))
    assert set(results) == {("Q-one", "a@example.com")}
    assert db.lookups == 1


async def test_names_expire_and_failures_are_retried() -> None:
    db = _CountingDb(fail_first=True)
    now = [1000.0]
    names = event_servicer._DisplayNames(db, _unused_lookup, clock=lambda: now[0])  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await names.of(_row())
    assert await names.of(_row()) == ("Q-one", "a@example.com")
    assert db.lookups == 2
    await names.of(_row())
    assert db.lookups == 2  # still cached
    now[0] += event_servicer.NAMES_TTL + 1
    await names.of(_row())
    assert db.lookups == 3  # expired: looked up again


class _FailingDb:
    """A database whose every read raises `error`."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise self._error


def _servicer(db: Any) -> event_servicer.EventServicer:
    unused: Any = SimpleNamespace(display_names=_unused_lookup, get=_unused_lookup)
    return event_servicer.EventServicer(db, unused, unused, unused, unused, unused)


@pytest.mark.parametrize(
    ("topic", "topics"), [("qpu", {"qpus"}), ("notification", {"notifications"})]
)
async def test_an_event_that_cannot_be_read_ends_the_stream_instead_of_vanishing(
    topic: str, topics: set[str]
) -> None:
    who = Principal("u1", "a@example.com", is_superuser=False)
    gone = _servicer(_FailingDb(NotFoundError("QPU_NOT_FOUND", "deleted meanwhile")))
    assert await gone._translate(who, topics, topic, "id1") is None  # nothing to send
    outage = _servicer(_FailingDb(database_unavailable()))
    with pytest.raises(UnavailableError):  # the subscriber reconnects and re-reads
        await outage._translate(who, topics, topic, "id1")
