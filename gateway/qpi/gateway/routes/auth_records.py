"""Sign-in routes of the ``users`` and ``_superusers`` auth collections."""

from __future__ import annotations

from fastapi import APIRouter

from qpi.gateway import errors, records
from qpi.gateway.config import GatewayConfig
from qpi.gateway.context import Ctx, CtxDep, PublicCtxDep
from qpi.gateway.models import (
    AuthMethodsOut,
    OAuth2Methods,
    OAuth2ProviderOut,
    PasswordAuth,
    PasswordMethod,
)
from qpi.gateway.openapi import api, responses
from qpi.gateway.record_models import SessionOut
from qpi.gateway.routes.oauth2 import authorize_url
from qpi.gateway.routes.pub import server_info
from qpi.v1 import account_service_pb2

SUPERUSERS = "_superusers"


def build_router(config: GatewayConfig) -> APIRouter:
    """The auth routes of the users collection (configured name) and of ``_superusers``."""
    router = APIRouter(tags=["auth"])
    for collection in (config.users_collection, SUPERUSERS):
        _add_auth_collection(router, collection, superuser=collection == SUPERUSERS)
    return router


def _add_auth_collection(router: APIRouter, collection: str, superuser: bool) -> None:
    base = f"/api/collections/{collection}"
    label = "superusers" if superuser else "users"

    async def auth_with_password(body: PasswordAuth, ctx: PublicCtxDep) -> SessionOut:
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
        return SessionOut.model_validate(records.session_object(collection, resp.token, resp.user))

    async def auth_refresh(ctx: CtxDep) -> SessionOut:
        resp: account_service_pb2.RefreshSessionResponse = await ctx.call(
            ctx.stubs.accounts.RefreshSession, account_service_pb2.RefreshSessionRequest()
        )
        return SessionOut.model_validate(records.session_object(collection, resp.token, resp.user))

    async def auth_methods(ctx: PublicCtxDep) -> AuthMethodsOut:
        info = await server_info(ctx)
        providers = [] if superuser else await oauth2_providers(ctx)
        return AuthMethodsOut(
            password=PasswordMethod(
                enabled=True if superuser else info.password_auth_enabled,
                identityFields=["email"],
            ),
            oauth2=OAuth2Methods(enabled=bool(providers), providers=providers),
        )

    router.add_api_route(
        f"{base}/auth-with-password",
        auth_with_password,
        methods=["POST"],
        name=f"auth_with_password_{label}",
        summary="Exchange e-mail and password for a session token",
        description="Send the token as `Authorization` (optionally with `Bearer `).",
        responses=responses(400, 413, 429, 503),
    )
    router.add_api_route(
        f"{base}/auth-refresh",
        auth_refresh,
        methods=["POST"],
        name=f"auth_refresh_{label}",
        summary="Exchange the current credentials for a fresh session token",
        responses=api(),
    )
    router.add_api_route(
        f"{base}/auth-methods",
        auth_methods,
        methods=["GET"],
        name=f"auth_methods_{label}",
        summary="Which sign-in methods the dashboard should offer",
        responses=responses(503),
    )


async def oauth2_providers(ctx: Ctx) -> list[OAuth2ProviderOut]:
    """The configured OAuth2 providers as sign-in buttons (public)."""
    resp: account_service_pb2.ListOAuth2ProvidersResponse = await ctx.call(
        ctx.stubs.accounts.ListOAuth2Providers, account_service_pb2.ListOAuth2ProvidersRequest()
    )
    return [
        OAuth2ProviderOut(
            name=p.name, displayName=p.display_name or p.name, authURL=authorize_url(p.name)
        )
        for p in resp.providers
    ]
