"""``POST /api/notifications/{id}/dismiss``: hide a notification for the caller only."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from qpi.gateway.context import CtxDep
from qpi.gateway.models import ERROR_RESPONSES, StatusOut
from qpi.v1 import notification_service_pb2

router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=ERROR_RESPONSES)


@router.post("/{notification_id}/dismiss", response_model=StatusOut)
async def dismiss(notification_id: str, ctx: CtxDep) -> JSONResponse:
    """Dismiss for the caller (idempotent; other users keep seeing it)."""
    await ctx.call(
        ctx.stubs.notifications.DismissNotification,
        notification_service_pb2.DismissNotificationRequest(id=notification_id),
    )
    return JSONResponse({"status": "dismissed"})
