"""``PATCH /api/admin/users/{id}``: set a user's QPU-seconds balance (administrators)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from google.protobuf import field_mask_pb2

from qpi.gateway import records
from qpi.gateway.context import CtxDep
from qpi.gateway.models import ERROR_RESPONSES, UserAdminUpdate
from qpi.v1 import account_pb2, account_service_pb2

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=ERROR_RESPONSES)


@router.patch("/users/{user_id}")
async def update_user_balance(user_id: str, body: UserAdminUpdate, ctx: CtxDep) -> JSONResponse:
    """Set ``qpu_seconds`` to an absolute value; the server allows this to administrators only."""
    resp: account_service_pb2.UpdateUserResponse = await ctx.call(
        ctx.stubs.accounts.UpdateUser,
        account_service_pb2.UpdateUserRequest(
            user=account_pb2.User(id=user_id, qpu_seconds=body.qpu_seconds),
            update_mask=field_mask_pb2.FieldMask(paths=["qpu_seconds"]),
        ),
    )
    return JSONResponse(records.user_record(resp.user))
