"""In-process change feed: services publish after commit, streams and the dispatcher listen.

Publishing is thread-safe because services run in database worker threads while
subscribers live on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One change. `topic` is "job", "qpu", "notification", "notification_deleted",
    "dispatch" (a QPU's queue may have work) or "cancel" (a lease must be revoked)."""

    topic: str
    payload: Any


CLIENT_STREAM_BACKLOG = 10_000
"""Events a client stream may lag behind before it is closed (it then reconnects)."""


class SubscriberTooSlowError(Exception):
    """A bounded subscription fell too far behind and was dropped."""


_OVERFLOW = Event("overflow", None)


class Subscription:
    """One subscriber's queue. Bounded ones are cut off, not left to grow, when the
    consumer (usually a client stream that stopped reading) falls `limit` events behind."""

    def __init__(self, limit: int = 0) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._limit = limit
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """Queues an event, or cuts the subscription off when it is over its limit."""
        if self.overflowed:
            return
        if self._limit and self._queue.qsize() >= self._limit:
            self.overflowed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(_OVERFLOW)
            return
        self._queue.put_nowait(event)

    def qsize(self) -> int:
        """Events waiting to be consumed."""
        return self._queue.qsize()

    async def get(self) -> Event:
        """The next event.

        Raises:
            SubscriberTooSlowError: When the subscription was cut off for falling behind.
        """
        event = await self._queue.get()
        if event is _OVERFLOW:
            raise SubscriberTooSlowError
        return event


class EventBus:
    """Fan-out of events to subscriber queues."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscription] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attaches the bus to the loop its subscribers run on."""
        self._loop = loop

    def publish(self, topic: str, payload: Any) -> None:
        """Delivers an event to every subscriber (from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        event = Event(topic, payload)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event)
        else:
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: Event) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)

    @asynccontextmanager
    async def subscribe(self, limit: int = 0) -> AsyncIterator[Subscription]:
        """A subscription receiving every event while the context is open.

        Args:
            limit: Most events it may lag behind before it is cut off; 0 means unbounded,
                for the server's own consumers, which must see every event.
        """
        subscription = Subscription(limit)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
