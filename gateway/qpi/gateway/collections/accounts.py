"""``users`` and ``api_tokens`` collections (AccountService)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import field_mask_pb2

from qpi.gateway import errors, filters, records
from qpi.gateway.collections.base import BodyReader, Collection, server_page
from qpi.gateway.context import Ctx
from qpi.gateway.listing import SortKey
from qpi.v1 import account_pb2, account_service_pb2

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_RAW_TOKEN = re.compile(r"qpi_[0-9a-f]{64}")


class UsersCollection(Collection):
    """Users: administrators see everyone, users themselves; balances change by admins only."""

    fields = frozenset(
        {"id", "email", "name", "qpu_seconds", "verified", "emailVisibility", "created", "updated"}
    )

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """Users visible to the caller, a page from the server."""
        return await server_page(
            ctx,
            ctx.stubs.accounts.ListUsers,
            account_service_pb2.ListUsersRequest(),
            "users",
            records.user_record,
            query,
            keys,
            page,
            per_page,
            count_total,
        )

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One user (own record, or any for administrators)."""
        resp = await ctx.call(
            ctx.stubs.accounts.GetUser, account_service_pb2.GetUserRequest(id=record_id)
        )
        return records.user_record(resp.user)

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Register a user (administrators, or anyone when sign-up is enabled)."""
        reader = BodyReader(body, "create")
        email = reader.text("email", required=True, max_len=255)
        password = reader.text("password", required=True, max_len=255)
        confirm = reader.text("passwordConfirm", max_len=255)
        name = reader.text("name", max_len=255) or ""
        seconds = reader.number("qpu_seconds") or 0.0
        if confirm is not None and password is not None and confirm != password:
            reader.errors["passwordConfirm"] = errors.field_error(
                "validation_values_mismatch", "Values don't match."
            )
        reader.check()
        resp = await ctx.call(
            ctx.stubs.accounts.CreateUser,
            account_service_pb2.CreateUserRequest(
                email=email or "", password=password or "", name=name, qpu_seconds=seconds
            ),
        )
        return records.user_record(resp.user)

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change name, password or (administrators) ``qpu_seconds`` (absolute value)."""
        reader = BodyReader(body, "update")
        user = account_pb2.User(id=record_id)
        paths: list[str] = []
        if (name := reader.text("name", max_len=255)) is not None:
            user.name = name
            paths.append("name")
        if (seconds := reader.number("qpu_seconds")) is not None:
            user.qpu_seconds = seconds
            paths.append("qpu_seconds")
        password = reader.text("password", max_len=255)
        if password is not None:
            if reader.text("passwordConfirm", max_len=255) not in (None, password):
                reader.errors["passwordConfirm"] = errors.field_error(
                    "validation_values_mismatch", "Values don't match."
                )
            paths.append("password")
        reader.check()
        if not paths:
            return await self.view(ctx, record_id)
        resp = await ctx.call(
            ctx.stubs.accounts.UpdateUser,
            account_service_pb2.UpdateUserRequest(
                user=user,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
                password=password or "",
            ),
        )
        return records.user_record(resp.user)

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Delete a user (administrators)."""
        await ctx.call(
            ctx.stubs.accounts.DeleteUser, account_service_pb2.DeleteUserRequest(id=record_id)
        )


class ApiTokensCollection(Collection):
    """API tokens: owners manage their own; the hash is never exposed."""

    fields = frozenset({"id", "name", "user", "expires_at", "created"})
    relations = {"user": "users"}

    async def list_page(
        self,
        ctx: Ctx,
        query: filters.Node | None,
        keys: Sequence[SortKey],
        page: int,
        per_page: int,
        count_total: bool = True,
    ) -> dict[str, Any]:
        """The caller's tokens (administrators: everyone's), a page from the server."""
        return await server_page(
            ctx,
            ctx.stubs.accounts.ListApiTokens,
            # Everyone's for administrators: the server decides from the credentials.
            account_service_pb2.ListApiTokensRequest(all_visible=True),
            "api_tokens",
            records.token_record,
            query,
            keys,
            page,
            per_page,
            count_total,
        )

    async def view(self, ctx: Ctx, record_id: str) -> dict[str, Any]:
        """One token's metadata."""
        resp = await ctx.call(
            ctx.stubs.accounts.GetApiToken, account_service_pb2.GetApiTokenRequest(id=record_id)
        )
        return records.token_record(resp.api_token)

    async def create(self, ctx: Ctx, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a token for the caller; the raw value is returned once as ``token``.

        A body carrying ``token`` registers a token the client generated itself: raw, in the
        server's format (``qpi_`` + 64 lowercase hex), or as the SHA-256 hex digest of such
        a token (the original collection's field); nothing raw is returned then. Only
        tokens of that format ever authenticate. ``user``, when sent, must be the caller.
        """
        reader = BodyReader(body, "create")
        name = reader.text("name", max_len=255) or ""
        expires = reader.date("expires_at")
        given = reader.text("token", max_len=68)
        owner = reader.text("user", max_len=64)
        raw = given if given is not None and _RAW_TOKEN.fullmatch(given) else ""
        digest = given if given is not None and _SHA256_HEX.fullmatch(given) else ""
        if given is not None and not (raw or digest):
            reader.fail(
                "token",
                "Must be an API token in the server's format (qpi_ followed by 64 lowercase "
                "hex characters) or the SHA-256 hex digest of one.",
            )
        reader.check()
        if owner and owner != (await ctx.me()).id:
            raise errors.ApiError(403, "API tokens can only be created for yourself.")
        request = account_service_pb2.CreateApiTokenRequest(
            name=name, token_sha256=digest, token=raw
        )
        if expires is not None:
            request.expire_time.CopyFrom(expires)
        resp = await ctx.call(ctx.stubs.accounts.CreateApiToken, request)
        record = records.token_record(resp.api_token)
        return {**record, "token": resp.token} if resp.token else record

    async def update(self, ctx: Ctx, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Rename a token or change its expiry."""
        reader = BodyReader(body, "update")
        token = account_pb2.ApiToken(id=record_id)
        paths: list[str] = []
        if (name := reader.text("name", max_len=255)) is not None:
            token.name = name
            paths.append("name")
        if reader.has("expires_at"):
            expires = reader.date("expires_at")
            if expires is not None:
                token.expire_time.CopyFrom(expires)
            paths.append("expire_time")
        reader.check()
        if not paths:
            return await self.view(ctx, record_id)
        resp = await ctx.call(
            ctx.stubs.accounts.UpdateApiToken,
            account_service_pb2.UpdateApiTokenRequest(
                api_token=token, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
        )
        return records.token_record(resp.api_token)

    async def delete(self, ctx: Ctx, record_id: str) -> None:
        """Revoke a token."""
        await ctx.call(
            ctx.stubs.accounts.DeleteApiToken,
            account_service_pb2.DeleteApiTokenRequest(id=record_id),
        )
