"""NotificationService."""

from __future__ import annotations

from typing import Any

import grpc

from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator
from qpi.server.rpc.errors import unary
from qpi.server.rpc.list_query import page_of, request_query
from qpi.server.rpc.pages import messages
from qpi.server.services.database import Database
from qpi.server.services.notification_service import NotificationService
from qpi.v1 import notification_service_pb2 as pb
from qpi.v1 import notification_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class NotificationServicer(notification_service_pb2_grpc.NotificationServiceServicer):
    """Thin adapter over NotificationService."""

    def __init__(
        self, db: Database, auth: Authenticator, notifications: NotificationService
    ) -> None:
        self._db = db
        self._auth = auth
        self._notifications = notifications

    @unary
    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: Ctx
    ) -> pb.ListNotificationsResponse:
        who = await self._auth.principal(context)
        every = request.all or (request.all_visible and who.is_superuser)
        query, key = request_query(request)
        scope = f"notifications|{who.user_id}|{every}|{request.include_dismissed}"
        query, finish = page_of(request, query, f"{scope}|{key}")
        page, total = await self._db.run(
            lambda: self._notifications.query(
                who, query, all_=every, include_dismissed=request.include_dismissed
            )
        )
        total_size, capped, token = finish(len(page), total)
        return pb.ListNotificationsResponse(
            notifications=await messages(
                page, lambda v: convert.notification(v, show_targets=who.is_superuser)
            ),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetNotification(
        self, request: pb.GetNotificationRequest, context: Ctx
    ) -> pb.GetNotificationResponse:
        who = await self._auth.principal(context)
        view = await self._db.run(self._notifications.get, who, request.id)
        return pb.GetNotificationResponse(
            notification=convert.notification(view, show_targets=who.is_superuser)
        )

    @unary
    async def CreateNotification(
        self, request: pb.CreateNotificationRequest, context: Ctx
    ) -> pb.CreateNotificationResponse:
        who = await self._auth.principal(context)
        n = request.notification
        view = await self._db.run(
            self._notifications.create,
            who,
            n.title,
            n.description,
            list(n.target_user_ids),
            convert.from_ts(n.start_time, "start_time") if n.HasField("start_time") else None,
            convert.from_ts(n.end_time, "end_time") if n.HasField("end_time") else None,
        )
        return pb.CreateNotificationResponse(
            notification=convert.notification(view, show_targets=True)
        )

    @unary
    async def UpdateNotification(
        self, request: pb.UpdateNotificationRequest, context: Ctx
    ) -> pb.UpdateNotificationResponse:
        who = await self._auth.principal(context)
        n = request.notification
        values: dict[str, object] = {
            "title": n.title,
            "description": n.description,
            "target_user_ids": list(n.target_user_ids),
            "start_time": convert.from_ts(n.start_time, "start_time")
            if n.HasField("start_time")
            else None,
            "end_time": convert.from_ts(n.end_time, "end_time") if n.HasField("end_time") else None,
        }
        fields = {p: values[p] for p in request.update_mask.paths if p in values}
        view = await self._db.run(self._notifications.update, who, n.id, fields)
        return pb.UpdateNotificationResponse(
            notification=convert.notification(view, show_targets=True)
        )

    @unary
    async def DeleteNotification(
        self, request: pb.DeleteNotificationRequest, context: Ctx
    ) -> pb.DeleteNotificationResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._notifications.delete, who, request.id)
        return pb.DeleteNotificationResponse()

    @unary
    async def DismissNotification(
        self, request: pb.DismissNotificationRequest, context: Ctx
    ) -> pb.DismissNotificationResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._notifications.dismiss, who, request.id)
        return pb.DismissNotificationResponse()
