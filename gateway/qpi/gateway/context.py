"""Per-request context: stubs, forwarded credentials and the config, as one dependency."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from qpi.gateway import auth, errors, rpc
from qpi.gateway.config import GatewayConfig
from qpi.gateway.openapi import api_token_scheme, bearer_scheme, pocketbase_scheme
from qpi.v1 import account_pb2, account_service_pb2


@dataclass
class Ctx:
    """What a route handler needs to call the services on the caller's behalf."""

    stubs: rpc.Stubs
    config: GatewayConfig
    token: str | None
    client_address: str = ""
    """The HTTP client's address, forwarded so the server can throttle per address."""
    _me: account_pb2.User | None = field(default=None, repr=False)

    @property
    def metadata(self) -> rpc.Metadata:
        """Call metadata carrying the caller's credentials and address."""
        return rpc.bearer_metadata(self.token) + rpc.address_metadata(self.client_address)

    async def call(self, method: Any, request: Any) -> Any:
        """Call a unary RPC with the caller's credentials (errors become ApiError)."""
        return await rpc.call(method, request, self.metadata)

    async def me(self) -> account_pb2.User:
        """Return the authenticated caller (cached); 401 envelope when anonymous/invalid."""
        if self._me is None:
            resp = await self.call(
                self.stubs.accounts.GetCurrentUser, account_service_pb2.GetCurrentUserRequest()
            )
            self._me = resp.user
        return self._me

    async def is_admin(self) -> bool:
        """Whether the caller is an administrator (401 envelope when unauthenticated)."""
        return (await self.me()).is_superuser


def _ctx(request: Request, token: str | None) -> Ctx:
    clients: rpc.GrpcClients = request.app.state.grpc_clients
    return Ctx(
        stubs=clients.stubs,
        config=request.app.state.gateway_config,
        token=token,
        client_address=request.client.host if request.client else "",
    )


async def get_public_ctx(request: Request) -> Ctx:
    """FastAPI dependency building the :class:`Ctx` of a public route: no credentials."""
    return _ctx(request, None)


async def get_ctx(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    _api_token: Annotated[str | None, Security(api_token_scheme)],
    _pocketbase: Annotated[str | None, Security(pocketbase_scheme)],
) -> Ctx:
    """Like :func:`get_public_ctx`; the security parameters document the credentials.

    The token itself is read by :func:`qpi.gateway.auth.request_token` (one rule for every
    form) and checked by the server on each call.
    """
    return _ctx(request, auth.request_token(request))


CtxDep = Annotated[Ctx, Depends(get_ctx)]
"""A route parameter receiving the request's :class:`Ctx` (credentials documented)."""

PublicCtxDep = Annotated[Ctx, Depends(get_public_ctx)]
"""A route parameter receiving the :class:`Ctx` of a route that takes no credentials."""


async def require_admin(ctx: CtxDep) -> Ctx:
    """Dependency for administrator routes, checked before the body is validated.

    The server remains the authority (it checks again on the actual RPC); this only makes
    the route answer 403 ``Admin access required.`` first, as the original did.

    Raises:
        errors.ApiError: 403 when the caller is anonymous or not an administrator.
    """
    try:
        admin = await ctx.is_admin()
    except errors.ApiError as exc:
        if exc.status != 401:
            raise
        admin = False
    if not admin:
        raise errors.ApiError(403, "Admin access required.")
    return ctx


AdminDep = Annotated[Ctx, Depends(require_admin)]
"""A route parameter receiving the :class:`Ctx` of a verified administrator."""
