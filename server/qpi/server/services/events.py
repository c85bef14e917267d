"""In-process change feed: services publish after commit, streams and the dispatcher listen.

Publishing is thread-safe because services run in database worker threads while
subscribers live on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One change. `topic` is "job", "qpu", "notification", "notification_deleted",
    "dispatch" (a QPU's queue may have work), "freed" (a job of a QPU ended) or "cancel"
    (a lease must be revoked)."""

    topic: str
    payload: Any


CREDENTIALS_TOPIC = "credentials"
"""A user's credentials were revoked (payload: the user id); open streams re-check."""

BOOKINGS_TOPIC = "bookings"
"""Bookings of a QPU changed (payload: its id, or "*" for all QPUs); published right
before the matching "dispatch" event."""

FREED_TOPIC = "freed"
"""A job of a QPU ended (payload: the QPU id): its driver has room again and a booker's
idle time runs, but no job became pending (a "dispatch" event announces those)."""

TICK = Event("tick", None)
"""Put into a subscription by a timer (see :meth:`Subscription.poke`): "check your
deadlines", so a consumer needs no timeout around every wait."""

CLIENT_STREAM_BACKLOG = 10_000
"""Events a client stream may lag behind before it is closed (it then reconnects)."""


class SubscriberTooSlowError(Exception):
    """A bounded subscription fell too far behind and was dropped."""


_OVERFLOW = Event("overflow", None)


class Subscription:
    """One subscriber's queue. Bounded ones are cut off, not left to grow, when the
    consumer (usually a client stream that stopped reading) falls `limit` events behind."""

    def __init__(self, limit: int = 0, topics: frozenset[str] | None = None) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._limit = limit
        self.topics = topics
        """The topics it receives (None: all)."""
        self.bounded = limit > 0
        """Whether this is a client stream (the server's own consumers are unbounded)."""
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

    def poke(self) -> None:
        """Wakes the consumer with :data:`TICK` (not counted against the limit)."""
        if not self.overflowed:
            self._queue.put_nowait(TICK)

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
        # Subscribers of every topic, and of named topics only: a consumer that reads a
        # few topics is not woken for each of the several "job" events every job makes.
        self._by_topic: dict[str, set[Subscription]] = {}
        # Watchers of one job each: a job event wakes only its own watchers, not all.
        self._job_watchers: dict[str, set[Subscription]] = {}
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        self._relay: Callable[[str, Any], None] | None = None
        self._client_streams = 0
        self._pending: list[Event] = []
        self._pending_lock = threading.Lock()
        self._held = threading.local()  # events of an uncommitted transaction, per thread

    def relay_to(self, send: Callable[[str, Any], None]) -> None:
        """Also hands every event published here to `send(topic, payload)`, in the
        publishing thread (the cluster relay forwards them to the other replicas)."""
        self._relay = send

    def job_watched(self, job_id: str) -> bool:
        """Whether anyone here would read a "job" event of `job_id`: a watcher of that
        job, or any client stream (which filters events itself)."""
        return job_id in self._job_watchers or self._client_streams > 0

    def watched_jobs(self) -> list[str]:
        """The ids of the jobs someone here watches."""
        return list(self._job_watchers)

    def listen(self, topic: str, callback: Callable[[Any], None]) -> None:
        """Calls `callback(payload)` on the event loop for every event of `topic`, before
        any subscription sees the event (so a cache it invalidates is already clean when a
        stream reacts to the same event)."""
        self._listeners.setdefault(topic, []).append(callback)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attaches the bus to the loop its subscribers run on."""
        self._loop = loop

    @contextmanager
    def held(self) -> Iterator[None]:
        """Holds what this thread publishes until the block ends: published then if it
        ends normally, dropped if it raises (a transaction that stores several changes
        announces them once they are committed, and never if they are not)."""
        if getattr(self._held, "events", None) is not None:
            yield  # nested: the outer block publishes
            return
        held: list[tuple[str, Any]] = []
        self._held.events = held
        try:
            yield
        finally:
            self._held.events = None
        for topic, payload in held:
            self.publish(topic, payload)

    def publish(self, topic: str, payload: Any, *, relayed: bool = False) -> None:
        """Delivers an event to every subscriber (from any thread).

        Args:
            relayed: The event came from another replica, so it is not sent back out.
        """
        held = getattr(self._held, "events", None)
        if held is not None and not relayed:
            held.append((topic, payload))
            return
        if self._relay is not None and not relayed:
            self._relay(topic, payload)
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
            return
        # From another thread (the database threads): events queue up and one loop wake-up
        # delivers all of them in order, instead of one self-pipe write per event.
        with self._pending_lock:
            self._pending.append(event)
            if len(self._pending) > 1:
                return  # a flush is already scheduled and will take this one too
        try:
            loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the loop closed meanwhile: nobody is left to tell
            with self._pending_lock:
                self._pending.clear()

    def _flush(self) -> None:
        with self._pending_lock:
            events, self._pending = self._pending, []
        for event in events:
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for callback in self._listeners.get(event.topic, ()):
            callback(event.payload)
        if self._job_watchers:
            if event.topic == "job":
                job_id = str(getattr(event.payload, "id", ""))
                for subscription in list(self._job_watchers.get(job_id, ())):
                    subscription.offer(event)
            elif event.topic == CREDENTIALS_TOPIC:
                for watchers in list(self._job_watchers.values()):
                    for subscription in list(watchers):
                        subscription.offer(event)
        for subscription in list(self._subscribers):
            subscription.offer(event)
        for subscription in list(self._by_topic.get(event.topic, ())):
            subscription.offer(event)

    @asynccontextmanager
    async def subscribe(
        self, limit: int = 0, topics: Collection[str] | None = None
    ) -> AsyncIterator[Subscription]:
        """A subscription receiving every event (or those of `topics`) while the context
        is open.

        Args:
            limit: Most events it may lag behind before it is cut off; 0 means unbounded,
                for the server's own consumers, which must see every event.
            topics: Only these topics (None: every topic).
        """
        subscription = Subscription(limit, None if topics is None else frozenset(topics))
        groups = (
            [self._subscribers]
            if subscription.topics is None
            else [self._by_topic.setdefault(t, set()) for t in subscription.topics]
        )
        for group in groups:
            group.add(subscription)
        self._client_streams += subscription.bounded
        try:
            yield subscription
        finally:
            for group in groups:
                group.discard(subscription)
            self._client_streams -= subscription.bounded

    @asynccontextmanager
    async def watch_job(self, job_id: str, limit: int = 0) -> AsyncIterator[Subscription]:
        """A subscription receiving only the "job" events of `job_id` (and credentials
        events, so a watcher's revoked credentials still end its stream)."""
        subscription = Subscription(limit)
        self._job_watchers.setdefault(job_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            watchers = self._job_watchers.get(job_id)
            if watchers is not None:
                watchers.discard(subscription)
                if not watchers:
                    del self._job_watchers[job_id]
