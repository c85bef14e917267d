"""``/api/tokens``: the caller's API tokens (the raw token is shown once, at creation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from google.protobuf import field_mask_pb2

from qpi.gateway import records
from qpi.gateway.context import CtxDep
from qpi.gateway.listing import parse_sort, slice_records, sort_records
from qpi.gateway.models import ERROR_RESPONSES, StatusOut, TokenCreate, TokenOut, TokenUpdate
from qpi.gateway.paging import fetch_all
from qpi.gateway.timefmt import to_timestamp
from qpi.v1 import account_pb2, account_service_pb2

router = APIRouter(prefix="/api/tokens", tags=["tokens"], responses=ERROR_RESPONSES)

TOKEN_FIELDS = frozenset({"id", "name", "expires_at", "created"})


@router.post("", status_code=201, response_model=TokenOut)
async def create_token(body: TokenCreate, ctx: CtxDep) -> JSONResponse:
    """Create an API token for the caller; the response carries the raw token once."""
    request = account_service_pb2.CreateApiTokenRequest(name=body.name)
    if body.expires_at:
        request.expire_time.CopyFrom(to_timestamp(body.expires_at))
    resp: account_service_pb2.CreateApiTokenResponse = await ctx.call(
        ctx.stubs.accounts.CreateApiToken, request
    )
    obj = records.token_object(resp.api_token)
    return JSONResponse({"id": obj.pop("id"), "token": resp.token, **obj}, status_code=201)


@router.get("", response_model=list[TokenOut])
async def list_tokens(
    ctx: CtxDep,
    sort: Annotated[str, Query(max_length=512)] = "-created",
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """The caller's tokens (metadata only) as a bare array."""
    keys = parse_sort(sort, TOKEN_FIELDS)
    tokens = await fetch_all(
        ctx,
        ctx.stubs.accounts.ListApiTokens,
        account_service_pb2.ListApiTokensRequest(),
        "api_tokens",
    )
    items = sort_records([records.token_object(t) for t in tokens], keys)
    return JSONResponse(slice_records(items, skip, limit))


@router.get("/{token_id}", response_model=TokenOut)
async def get_token(token_id: str, ctx: CtxDep) -> JSONResponse:
    """One token's metadata (owner or administrator)."""
    resp: account_service_pb2.GetApiTokenResponse = await ctx.call(
        ctx.stubs.accounts.GetApiToken, account_service_pb2.GetApiTokenRequest(id=token_id)
    )
    return JSONResponse(records.token_object(resp.api_token))


@router.patch("/{token_id}", response_model=TokenOut)
async def update_token(token_id: str, body: TokenUpdate, ctx: CtxDep) -> JSONResponse:
    """Rename a token or change its expiry (only the keys present change; "" clears expiry)."""
    token = account_pb2.ApiToken(id=token_id)
    paths: list[str] = []
    if body.name is not None:
        token.name = body.name
        paths.append("name")
    if body.expires_at is not None:
        if body.expires_at:
            token.expire_time.CopyFrom(to_timestamp(body.expires_at))
        paths.append("expire_time")
    if not paths:
        return await get_token(token_id, ctx)
    resp: account_service_pb2.UpdateApiTokenResponse = await ctx.call(
        ctx.stubs.accounts.UpdateApiToken,
        account_service_pb2.UpdateApiTokenRequest(
            api_token=token, update_mask=field_mask_pb2.FieldMask(paths=paths)
        ),
    )
    return JSONResponse(records.token_object(resp.api_token))


@router.delete("/{token_id}", response_model=StatusOut)
async def delete_token(token_id: str, ctx: CtxDep) -> JSONResponse:
    """Revoke a token."""
    await ctx.call(
        ctx.stubs.accounts.DeleteApiToken, account_service_pb2.DeleteApiTokenRequest(id=token_id)
    )
    return JSONResponse({"status": "deleted"})
