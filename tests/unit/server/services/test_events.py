"""The change feed: every event reaches internal subscribers; slow client streams are cut off."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from qpi.server.rpc.errors import streaming
from qpi.server.services.events import CREDENTIALS_TOPIC, TICK, EventBus, SubscriberTooSlowError
from qpi.v1 import job_service_pb2


async def test_unbounded_subscription_keeps_every_event() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    async with bus.subscribe() as sub:
        for i in range(5000):
            bus.publish("job", i)
        assert [(await sub.get()).payload for _ in range(5000)] == list(range(5000))


async def test_bounded_subscription_is_cut_off_when_it_falls_behind() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    async with bus.subscribe(limit=3) as slow, bus.subscribe(limit=3) as keeping_up:
        for i in range(3):
            bus.publish("job", i)
            assert (await keeping_up.get()).payload == i
        bus.publish("job", 3)  # the fourth unread event overflows `slow` only
        assert slow.overflowed
        assert slow.qsize() == 1  # the backlog was released, only the marker is left
        with pytest.raises(SubscriberTooSlowError):
            await slow.get()
        assert (await keeping_up.get()).payload == 3
        assert not keeping_up.overflowed


async def test_a_topic_subscription_sees_only_its_topics_in_order() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    async with bus.subscribe(topics=("dispatch", "cancel")) as few, bus.subscribe() as every:
        for topic, payload in [("job", 1), ("dispatch", 2), ("job", 3), ("cancel", 4)]:
            bus.publish(topic, payload)
        assert few.qsize() == 2
        assert [(await few.get()).payload for _ in range(2)] == [2, 4]
        assert [(await every.get()).payload for _ in range(4)] == [1, 2, 3, 4]
    bus.publish("dispatch", 5)  # closed subscriptions are gone from every topic
    assert few.qsize() == 0


async def test_publish_from_a_worker_thread_reaches_the_loop() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    async with bus.subscribe() as sub:
        await asyncio.to_thread(bus.publish, "qpu", "q1")
        event = await asyncio.wait_for(sub.get(), 1.0)
        assert (event.topic, event.payload) == ("qpu", "q1")


class _AbortingContext:
    def __init__(self) -> None:
        self.status: Any = None

    async def abort_with_status(self, status: Any) -> None:
        self.status = status
        raise grpc.aio.AbortError()


async def test_cut_off_stream_becomes_unavailable_stream_behind() -> None:
    class Servicer:
        @streaming
        async def Watch(self, request: Any, context: Any) -> Any:  # noqa: N802 - RPC name
            yield request
            raise SubscriberTooSlowError

    context = _AbortingContext()
    received: list[Any] = []

    async def drain() -> None:
        async for item in Servicer().Watch(job_service_pb2.WatchJobRequest(id="j"), context):
            received.append(item)

    with pytest.raises(grpc.aio.AbortError):
        await drain()
    assert len(received) == 1
    assert context.status.code == grpc.StatusCode.UNAVAILABLE
    assert "events behind" in context.status.details
    assert any(
        b"STREAM_BEHIND" in v for k, v in context.status.trailing_metadata if k.endswith("-bin")
    )


async def test_a_job_watch_sees_only_its_job_and_credentials_events() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    mine, other = SimpleNamespace(id="j1"), SimpleNamespace(id="j2")
    async with bus.watch_job("j1") as watch:
        bus.publish("job", other)
        bus.publish("dispatch", "qpu")
        bus.publish("job", mine)
        bus.publish(CREDENTIALS_TOPIC, "u1")
        received = [(await watch.get()) for _ in range(2)]
        expected = [("job", mine), (CREDENTIALS_TOPIC, "u1")]
        assert [(e.topic, e.payload) for e in received] == expected
        assert watch.qsize() == 0
    bus.publish("job", mine)  # after the watch closed: nobody is left to receive it
    assert watch.qsize() == 0


async def test_listeners_run_before_subscribers_see_the_event() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    seen: list[str] = []
    async with bus.subscribe() as sub:
        bus.listen(CREDENTIALS_TOPIC, lambda payload: seen.append(f"listener {payload}"))
        bus.publish(CREDENTIALS_TOPIC, "u1")
        event = await sub.get()
        seen.append(f"subscriber {event.payload}")
    assert seen == ["listener u1", "subscriber u1"]


async def test_a_poke_wakes_the_consumer_with_a_tick() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    async with bus.subscribe(limit=1) as sub:
        sub.poke()
        sub.poke()  # ticks do not count against the backlog limit
        assert not sub.overflowed
        assert (await sub.get()) is TICK


async def test_held_events_go_out_when_the_block_ends_and_never_if_it_raises() -> None:
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    async with bus.subscribe() as sub:
        with bus.held():
            bus.publish("job", "stored")
            with bus.held():  # nested: the outer block decides
                bus.publish("dispatch", "q1")
            assert sub.qsize() == 0  # not committed yet

        def failing_commit() -> None:
            with bus.held():
                bus.publish("job", "rolled back")
                raise RuntimeError("commit failed")

        with pytest.raises(RuntimeError):
            failing_commit()
        bus.publish("job", "after")
        got = [(e.topic, e.payload) for e in [await sub.get() for _ in range(3)]]
        assert got == [("job", "stored"), ("dispatch", "q1"), ("job", "after")]
        assert sub.qsize() == 0
