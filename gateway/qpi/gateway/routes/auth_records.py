"""Sign-in routes of the ``users`` and ``_superusers`` auth collections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from qpi.gateway import errors, records
from qpi.gateway.context import Ctx, CtxDep
from qpi.gateway.models import ERROR_RESPONSES, AuthOut, ErrorOut, PasswordAuth
from qpi.gateway.routes.pub import server_info
from qpi.v1 import account_service_pb2

_THROTTLED = {
    "model": ErrorOut,
    "description": "Too many failed logins for the account or address; see `Retry-After`.",
}
router = APIRouter(
    prefix="/api/collections",
    tags=["auth"],
    responses={**ERROR_RESPONSES, 429: _THROTTLED},
)

SUPERUSERS = "_superusers"


def _auth_collection(ctx: Ctx, collection: str) -> bool:
    """Whether ``collection`` is the superusers collection (404 if it is no auth collection)."""
    if collection == SUPERUSERS:
        return True
    if collection == ctx.config.users_collection:
        return False
    raise errors.ApiError(404, "Missing or invalid auth collection context.")


def _record(collection: str, user: Any) -> dict[str, Any]:
    record = records.user_record(user)
    return {"collectionId": collection, "collectionName": collection, **record}


@router.post("/{collection}/auth-with-password", response_model=AuthOut)
async def auth_with_password(collection: str, body: PasswordAuth, ctx: CtxDep) -> JSONResponse:
    """Exchange e-mail and password for a session token (send it as ``Authorization``)."""
    superuser = _auth_collection(ctx, collection)
    try:
        resp: account_service_pb2.LoginResponse = await ctx.call(
            ctx.stubs.accounts.Login,
            account_service_pb2.LoginRequest(
                email=body.identity, password=body.password, superuser=superuser
            ),
        )
    except errors.ApiError as exc:
        if exc.status >= 500 or exc.status == 429:
            raise  # outages, and throttling with its Retry-After, are not bad credentials
        raise errors.ApiError(400, "Failed to authenticate.") from exc
    return JSONResponse({"token": resp.token, "record": _record(collection, resp.user)})


@router.post("/{collection}/auth-refresh", response_model=AuthOut)
async def auth_refresh(collection: str, ctx: CtxDep) -> JSONResponse:
    """Exchange the current credentials for a fresh session token and its user."""
    _auth_collection(ctx, collection)
    resp: account_service_pb2.RefreshSessionResponse = await ctx.call(
        ctx.stubs.accounts.RefreshSession, account_service_pb2.RefreshSessionRequest()
    )
    return JSONResponse({"token": resp.token, "record": _record(collection, resp.user)})


@router.get("/{collection}/auth-methods")
async def auth_methods(collection: str, ctx: CtxDep) -> JSONResponse:
    """Which sign-in methods the dashboard should offer."""
    superuser = _auth_collection(ctx, collection)
    info = await server_info(ctx)
    providers = [] if superuser else [{"name": name} for name in info.oauth2_providers]
    return JSONResponse(
        {
            "password": {
                "enabled": True if superuser else info.password_auth_enabled,
                "identityFields": ["email"],
            },
            "oauth2": {"enabled": bool(providers), "providers": providers},
        }
    )
