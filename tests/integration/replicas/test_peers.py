"""A replica alone sends no events; one that hears another starts at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from qpi.server.cluster.relay import START_GRACE, EventRelay
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus, Subscription
from qpi.server.store.database import create_db_engine
from qpi.server.store.notify import conninfo
from tests.support.harness import drop_postgres, fresh_postgres_url

TTL = 1.0


@pytest.fixture
def database() -> Iterator[Database]:
    url = fresh_postgres_url()
    db = Database(create_db_engine(url))
    yield db
    db.close()
    drop_postgres(url)


async def _until(condition: object, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def _next(subscription: Subscription, payload: str) -> None:
    """Waits for a "dispatch" event with that payload."""
    async with asyncio.timeout(30):
        while True:
            event = await subscription.get()
            if event.topic == "dispatch" and event.payload == payload:
                return


async def test_events_flow_only_while_another_replica_is_alive(database: Database) -> None:
    url = conninfo(database.engine)
    buses = [EventBus(), EventBus()]
    relays = [EventRelay(url, bus, database, lambda _id: None, peer_ttl=TTL) for bus in buses]
    for bus in buses:
        bus.bind(asyncio.get_running_loop())
    await relays[0].start()
    try:
        await _until(lambda: not relays[0].sending)  # alone once its start-up grace is over
        async with buses[0].subscribe() as first, buses[1].subscribe() as second:
            await relays[1].start()
            # The newcomer's hello reaches the first replica, which answers: both send.
            await _until(lambda: relays[0].sending and relays[1].sending)
            # Learning of a new replica makes the first catch up (every QPU loop woken).
            await _next(first, "*")
            buses[0].publish("dispatch", "qpu-1")
            await _next(second, "qpu-1")
            await relays[1].stop()
            await _until(lambda: not relays[0].sending)
    finally:
        await relays[0].stop()


async def test_a_lone_replica_stops_sending_soon_after_start(database: Database) -> None:
    """With the production peer TTL (30 s), a replica nobody answers sends events only
    during its short start-up grace, not for a whole TTL."""
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    relay = EventRelay(conninfo(database.engine), bus, database, lambda _id: None)
    await relay.start()
    try:
        assert relay.sending  # the others may not have answered its hello yet
        await _until(lambda: not relay.sending, timeout=START_GRACE + 8)
    finally:
        await relay.stop()
