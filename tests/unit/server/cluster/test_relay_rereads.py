"""A watched job the relay could not re-read (the database away) is read again until it
is, or until nobody watches it: the events sent meanwhile are lost, so that read is its
watchers' only news."""

from __future__ import annotations

import asyncio
from typing import Any

from qpi.server.cluster.relay import EventRelay
from qpi.server.domain.errors import database_unavailable
from qpi.server.domain.models import Job
from qpi.server.services.events import EventBus
from tests.support.domain_jobs import make_job


class _DatabaseAway:
    """Runs reads inline; the first `failures` report the database unavailable, as
    `Database.run` does during an outage."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reads = 0

    async def run(self, fn: Any, *args: Any) -> Any:
        self.reads += 1
        if self.failures:
            self.failures -= 1
            raise database_unavailable()
        return fn(*args)


def _relay(bus: EventBus, db: _DatabaseAway, job: Job) -> EventRelay:
    unused: Any = db
    # Never started: no connection is made, only the re-read path runs.
    return EventRelay("postgresql://unused", bus, unused, lambda job_id: job)


async def test_a_watched_job_is_read_again_until_the_database_answers() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    job = make_job(id="job1", state="completed", attempt=1)
    db = _DatabaseAway(failures=3)
    relay = _relay(bus, db, job)
    async with bus.watch_job("job1") as queue:
        relay._refresh("job1")  # what a relayed "job" event or a catch-up does
        async with asyncio.timeout(30):
            event = await queue.get()
    assert event.topic == "job"
    assert event.payload == job
    assert db.reads == 4


async def test_the_reads_stop_once_nobody_watches_the_job() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    db = _DatabaseAway(failures=10**6)
    relay = _relay(bus, db, make_job(id="job1"))
    async with bus.watch_job("job1"):
        relay._refresh("job1")
        async with asyncio.timeout(30):
            while db.reads < 2:
                await asyncio.sleep(0.01)
    async with asyncio.timeout(30):
        while "job1" in relay._reading:  # the read task ended
            await asyncio.sleep(0.01)
    reads = db.reads
    await asyncio.sleep(0.3)
    assert db.reads == reads
