"""Reads bearer credentials from call metadata."""

from __future__ import annotations

from typing import Any

import grpc

from qpi.server.services.auth_service import AuthService, DriverIdentity
from qpi.server.services.database import Database
from qpi.server.services.principal import Principal


def bearer_token(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The token from `authorization: Bearer <t>` (or a bare value) or `x-api-token`."""
    api_token = ""
    for key, value in context.invocation_metadata() or ():
        text = value.decode() if isinstance(value, bytes) else str(value)
        if key == "authorization":
            text = text.strip()
            return text[7:].strip() if text.lower().startswith("bearer ") else text
        if key == "x-api-token":
            api_token = text.strip()
    return api_token


class Authenticator:
    """Resolves the caller of an RPC (off the event loop)."""

    def __init__(self, db: Database, auth: AuthService) -> None:
        self._db = db
        self._auth = auth

    async def principal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        """The authenticated user or an UNAUTHENTICATED error."""
        return await self._db.run(self._auth.authenticate, bearer_token(context))

    async def optional_principal(
        self, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Principal | None:
        """The user if credentials were sent, else None (bad credentials still fail)."""
        token = bearer_token(context)
        if not token:
            return None
        return await self._db.run(self._auth.authenticate, token)

    async def driver(self, context: grpc.aio.ServicerContext[Any, Any]) -> DriverIdentity:
        """The authenticated driver."""
        return await self._db.run(self._auth.authenticate_driver, bearer_token(context))
