"""EventService: the live change feed, filtered to what each subscriber may see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.errors import streaming
from qpi.server.services.database import Database
from qpi.server.services.events import EventBus
from qpi.server.services.job_service import display_names
from qpi.server.services.notification_service import NotificationService
from qpi.server.services.principal import Principal
from qpi.server.services.qpu_service import QpuService
from qpi.server.store.tables import JobRow
from qpi.v1 import event_service_pb2 as pb
from qpi.v1 import event_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]
TOPICS = ("jobs", "qpus", "notifications")


class EventServicer(event_service_pb2_grpc.EventServiceServicer):
    """Relays the event bus to subscribers."""

    def __init__(
        self,
        db: Database,
        auth: Authenticator,
        events: EventBus,
        qpus: QpuService,
        notifications: NotificationService,
    ) -> None:
        self._db = db
        self._auth = auth
        self._events = events
        self._qpus = qpus
        self._notifications = notifications

    @streaming
    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[pb.SubscribeResponse]:
        who = await self._auth.principal(context)
        topics = set(request.topics) or set(TOPICS)
        async with self._events.subscribe() as queue:
            while True:
                event = await queue.get()
                message = await self._translate(who, topics, event.topic, event.payload)
                if message is not None:
                    yield message

    async def _translate(
        self, who: Principal, topics: set[str], topic: str, payload: Any
    ) -> pb.SubscribeResponse | None:
        if (
            topic == "job"
            and "jobs" in topics
            and isinstance(payload, JobRow)
            and who.can_see(payload.user_id)
        ):
            qpus, users = await self._db.run(display_names, self._db, [payload])
            return pb.SubscribeResponse(
                job=convert.job(
                    payload, qpus.get(payload.qpu_id, ""), users.get(payload.user_id, "")
                )
            )
        if topic == "qpu" and "qpus" in topics:
            try:
                row, n = await self._db.run(self._qpus.get, str(payload))
            except Exception:  # noqa: BLE001 - deleted meanwhile: nothing to send
                return None
            return pb.SubscribeResponse(qpu=convert.qpu(row, n))
        if topic == "notification" and "notifications" in topics:
            try:
                view = await self._db.run(self._notifications.get, who, str(payload))
            except Exception:  # noqa: BLE001 - not visible to this subscriber
                return None
            return pb.SubscribeResponse(
                notification=convert.notification(view, show_targets=who.is_superuser)
            )
        if topic == "notification_deleted" and "notifications" in topics:
            return pb.SubscribeResponse(deleted_notification_id=str(payload))
        return None
