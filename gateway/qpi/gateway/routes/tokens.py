"""``/api/tokens``: the caller's API tokens (the raw token is shown once, at creation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from google.protobuf import field_mask_pb2

from qpi.gateway import records
from qpi.gateway.context import CtxDep
from qpi.gateway.listing import parse_sort, sort_pattern
from qpi.gateway.models import (
    PathId,
    StatusOut,
    TokenCreate,
    TokenCreatedOut,
    TokenOut,
    TokenUpdate,
)
from qpi.gateway.openapi import api
from qpi.gateway.paging import array_encoder, json_array, read_pages
from qpi.gateway.pushdown import sort_messages
from qpi.gateway.timefmt import to_timestamp
from qpi.v1 import account_pb2, account_service_pb2

router = APIRouter(prefix="/api/tokens", tags=["tokens"])

TOKEN_FIELDS = frozenset({"id", "name", "expires_at", "created"})
TOKEN_SORT = sort_pattern(TOKEN_FIELDS)


@router.post("", status_code=201, responses=api(409, 413), response_model_exclude_unset=True)
async def create_token(body: TokenCreate, ctx: CtxDep) -> TokenCreatedOut:
    """Create an API token for the caller; the response carries the raw token once."""
    request = account_service_pb2.CreateApiTokenRequest(name=body.name)
    if body.expires_at:
        request.expire_time.CopyFrom(to_timestamp(body.expires_at))
    resp: account_service_pb2.CreateApiTokenResponse = await ctx.call(
        ctx.stubs.accounts.CreateApiToken, request
    )
    obj = records.token_object(resp.api_token)
    return TokenCreatedOut.model_validate({"id": obj.pop("id"), "token": resp.token, **obj})


_ENCODE_TOKENS = array_encoder(TokenOut, records.token_object)


@router.get("", responses=api(), response_model=list[TokenOut], response_model_exclude_unset=True)
async def list_tokens(
    ctx: CtxDep,
    sort: Annotated[str, Query(max_length=512, pattern=TOKEN_SORT)] = "-created",
    skip: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=0, le=2**31 - 1, description="0 means all.")] = 0,
) -> Response:
    """The caller's tokens (metadata only) as a bare array, sorted and paged in SQL."""
    request = account_service_pb2.ListApiTokensRequest(
        sort=sort_messages(parse_sort(sort, TOKEN_FIELDS))
    )
    pages = read_pages(ctx, ctx.stubs.accounts.ListApiTokens, request, "api_tokens", skip, limit)
    return await json_array(pages, _ENCODE_TOKENS)


@router.get("/{token_id}", responses=api(404), response_model_exclude_unset=True)
async def get_token(token_id: PathId, ctx: CtxDep) -> TokenOut:
    """One token's metadata (owner or administrator)."""
    resp: account_service_pb2.GetApiTokenResponse = await ctx.call(
        ctx.stubs.accounts.GetApiToken, account_service_pb2.GetApiTokenRequest(id=token_id)
    )
    return TokenOut.model_validate(records.token_object(resp.api_token))


@router.patch("/{token_id}", responses=api(404, 409, 413), response_model_exclude_unset=True)
async def update_token(token_id: PathId, body: TokenUpdate, ctx: CtxDep) -> TokenOut:
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
    return TokenOut.model_validate(records.token_object(resp.api_token))


@router.delete("/{token_id}", responses=api(404), response_model_exclude_unset=True)
async def delete_token(token_id: PathId, ctx: CtxDep) -> StatusOut:
    """Revoke a token."""
    await ctx.call(
        ctx.stubs.accounts.DeleteApiToken, account_service_pb2.DeleteApiTokenRequest(id=token_id)
    )
    return StatusOut(status="deleted")
