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


class EventBus:
    """Fan-out of events to asyncio queues."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[asyncio.Queue[Event]] = set()

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
        for queue in list(self._subscribers):
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue receiving every event while the context is open."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
