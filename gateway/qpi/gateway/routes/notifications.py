"""``POST /api/notifications/{id}/dismiss``: hide a notification for the caller only."""

from __future__ import annotations

from fastapi import APIRouter

from qpi.gateway.context import CtxDep
from qpi.gateway.models import PathId, StatusOut
from qpi.gateway.openapi import api
from qpi.v1 import notification_service_pb2

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.post("/{notification_id}/dismiss", responses=api(404))
async def dismiss(notification_id: PathId, ctx: CtxDep) -> StatusOut:
    """Dismiss for the caller (idempotent; other users keep seeing it)."""
    await ctx.call(
        ctx.stubs.notifications.DismissNotification,
        notification_service_pb2.DismissNotificationRequest(id=notification_id),
    )
    return StatusOut(status="dismissed")
