"""EventService: the live change feed, filtered to what each subscriber may see."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc

from qpi.server.domain.errors import NotFoundError
from qpi.server.domain.models import Job
from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator, StreamCaller
from qpi.server.rpc.errors import streaming
from qpi.server.services.database import Database
from qpi.server.services.events import CLIENT_STREAM_BACKLOG, EventBus
from qpi.server.services.job_service import JobService
from qpi.server.services.notification_service import NotificationService
from qpi.server.services.principal import Principal
from qpi.server.services.qpu_service import QpuService
from qpi.v1 import event_service_pb2 as pb
from qpi.v1 import event_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]
TOPICS = ("jobs", "qpus", "notifications")
NAMES_TTL = 30.0
"""Seconds a QPU name / owner e-mail shown in job events may be stale."""


class _DisplayNames:
    """QPU names and owner e-mails for job events, shared by every subscriber.

    Each subscriber translates each event, so without sharing a burst of N job events to M
    dashboards would cost N x M lookups on the database threads that also serve dispatch.
    Concurrent misses for the same pair wait on one lookup.
    """

    def __init__(
        self,
        db: Database,
        lookup: Callable[[Sequence[Job]], tuple[dict[str, str], dict[str, str]]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._lookup_names = lookup
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, asyncio.Task[tuple[str, str]]]] = {}

    async def of(self, row: Job) -> tuple[str, str]:
        """(qpu name, owner e-mail) of a job."""
        key = (row.qpu_id, row.user_id)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or entry[0] < now or (entry[1].done() and entry[1].exception()):
            if len(self._entries) > 10_000:
                self._entries.clear()
            entry = (now + NAMES_TTL, asyncio.create_task(self._lookup(row)))
            self._entries[key] = entry
        return await asyncio.shield(entry[1])

    async def _lookup(self, row: Job) -> tuple[str, str]:
        qpus, users = await self._db.run(self._lookup_names, [row])
        return qpus.get(row.qpu_id, ""), users.get(row.user_id, "")


class EventServicer(event_service_pb2_grpc.EventServiceServicer):
    """Relays the event bus to subscribers."""

    def __init__(
        self,
        db: Database,
        auth: Authenticator,
        events: EventBus,
        jobs: JobService,
        qpus: QpuService,
        notifications: NotificationService,
    ) -> None:
        self._db = db
        self._auth = auth
        self._events = events
        self._qpus = qpus
        self._notifications = notifications
        self._names = _DisplayNames(db, jobs.display_names)

    @streaming
    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[pb.SubscribeResponse]:
        who = await self._auth.principal(context)
        topics = set(request.topics) or set(TOPICS)
        async with self._events.subscribe(CLIENT_STREAM_BACKLOG) as queue:
            caller = StreamCaller(self._auth, context, who)
            try:
                while True:
                    event = await caller.next_event(queue)
                    message = await self._translate(
                        caller.principal, topics, event.topic, event.payload
                    )
                    if message is not None:
                        yield message
            finally:
                caller.close()

    async def _translate(
        self, who: Principal, topics: set[str], topic: str, payload: Any
    ) -> pb.SubscribeResponse | None:
        """The message for one event, None when this subscriber gets none. An event that
        cannot be read now (database unavailable) ends the stream with that error rather
        than vanishing: the subscriber reconnects and re-reads what it shows (the
        dashboard re-syncs every open page when its feed reopens)."""
        if (
            topic == "job"
            and "jobs" in topics
            and isinstance(payload, Job)
            and who.can_see(payload.user_id)
        ):
            qpu_name, email = await self._names.of(payload)
            return pb.SubscribeResponse(job=convert.job(payload, qpu_name, email))
        if topic == "qpu" and "qpus" in topics:
            try:
                row, n = await self._db.run(self._qpus.get, str(payload))
            except NotFoundError:  # deleted meanwhile: nothing to send
                return None
            return pb.SubscribeResponse(qpu=convert.qpu(row, n))
        if topic == "notification" and "notifications" in topics:
            try:
                view = await self._db.run(self._notifications.get, who, str(payload))
            except NotFoundError:  # not visible to this subscriber, or deleted meanwhile
                return None
            return pb.SubscribeResponse(
                notification=convert.notification(view, show_targets=who.is_superuser)
            )
        if topic == "notification_deleted" and "notifications" in topics:
            return pb.SubscribeResponse(deleted_notification_id=str(payload))
        return None
