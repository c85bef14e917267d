"""``PATCH /api/admin/users/{id}``: set a user's QPU-seconds balance (administrators)."""

from __future__ import annotations

from fastapi import APIRouter
from google.protobuf import field_mask_pb2

from qpi.gateway import records
from qpi.gateway.context import CtxDep
from qpi.gateway.models import PathId, UserAdminUpdate
from qpi.gateway.openapi import api
from qpi.gateway.record_models import UserRecord
from qpi.v1 import account_pb2, account_service_pb2

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.patch(
    "/users/{user_id}", responses=api(403, 404, 409, 413), response_model_exclude_unset=True
)
async def update_user_balance(user_id: PathId, body: UserAdminUpdate, ctx: CtxDep) -> UserRecord:
    """Set ``qpu_seconds`` to an absolute value; the server allows this to administrators only."""
    resp: account_service_pb2.UpdateUserResponse = await ctx.call(
        ctx.stubs.accounts.UpdateUser,
        account_service_pb2.UpdateUserRequest(
            user=account_pb2.User(id=user_id, qpu_seconds=body.qpu_seconds),
            update_mask=field_mask_pb2.FieldMask(paths=["qpu_seconds"]),
        ),
    )
    name = ctx.config.users_collection
    return UserRecord.model_validate(
        {"collectionId": name, "collectionName": name, **records.user_record(resp.user)}
    )
