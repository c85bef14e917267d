"""``notifications`` collection (NotificationService); dismissals are never exposed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import field_mask_pb2

from qpi.gateway import filters, records
from qpi.gateway.collections.base import BodyReader, Collection, server_page
from qpi.gateway.context import Ctx
from qpi.gateway.listing import SortKey
from qpi.v1 import notification_pb2, notification_service_pb2

_SIMPLE = (("title", "title"), ("description", "description"))
_DATES = (("start_time", "start_time"), ("end_time", "end_time"))


class NotificationsCollection(Collection):
    """Announcements: users see those addressed to them and in their window."""

    fields = frozenset(
        {
            "id",
            "title",
            "description",
            "target_users",
            "start_time",
            "end_time",
            "created",
            "updated",
        }
    )
    relations = {"target_users": "users"}

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """Visible notifications (administrators: all of them), a page from the server."""
        return await server_page(
            ctx,
            ctx.stubs.notifications.ListNotifications,
            # All of them for administrators: the server decides from the credentials.
            notification_service_pb2.ListNotificationsRequest(all_visible=True),
            "notifications",
            records.notification_record,
            query,
            keys,
            page,
            per_page,
            count_total,
        )

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One visible notification."""
        resp = await ctx.call(
            ctx.stubs.notifications.GetNotification,
            notification_service_pb2.GetNotificationRequest(id=record_id),
        )
        return records.notification_record(resp.notification)

    def _read(
        self, reader: BodyReader, note: notification_pb2.Notification, creating: bool
    ) -> list[str]:
        paths: list[str] = []
        for key, attr in _SIMPLE:
            value = reader.text(key, required=creating and key == "title")
            if value is not None:
                setattr(note, attr, value)
                paths.append(attr)
        for key, attr in _DATES:
            if reader.has(key):
                stamp = reader.date(key)
                if stamp is not None:
                    getattr(note, attr).CopyFrom(stamp)
                paths.append(attr)
        targets = reader.id_list("target_users")
        if targets is not None:
            note.target_user_ids.extend(targets)
            paths.append("target_user_ids")
        reader.check()
        return paths

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create (administrators); empty ``target_users`` broadcasts."""
        note = notification_pb2.Notification()
        self._read(BodyReader(body, "create"), note, creating=True)
        resp = await ctx.call(
            ctx.stubs.notifications.CreateNotification,
            notification_service_pb2.CreateNotificationRequest(notification=note),
        )
        return records.notification_record(resp.notification)

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Update (administrators)."""
        note = notification_pb2.Notification(id=record_id)
        paths = self._read(BodyReader(body, "update"), note, creating=False)
        resp = await ctx.call(
            ctx.stubs.notifications.UpdateNotification,
            notification_service_pb2.UpdateNotificationRequest(
                notification=note, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
        )
        return records.notification_record(resp.notification)

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Delete (administrators)."""
        await ctx.call(
            ctx.stubs.notifications.DeleteNotification,
            notification_service_pb2.DeleteNotificationRequest(id=record_id),
        )
