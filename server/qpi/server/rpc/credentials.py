"""Reads bearer credentials from call metadata."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import grpc

from qpi.server.services.account_service import CREDENTIALS_TOPIC
from qpi.server.services.auth_service import AuthService, DriverIdentity
from qpi.server.services.database import Database
from qpi.server.services.events import Event, Subscription
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


CLIENT_ADDRESS_KEY = "x-qpi-client-address"
"""Metadata with the HTTP client's address, set by the in-process gateway."""


def client_address(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's network address (host only), for per-address throttling.

    Calls over the private Unix socket come from the gateway, which forwards its HTTP
    client's address; that metadata is ignored from any other peer, which could forge it.
    """
    peer = urllib.parse.unquote(context.peer() or "")
    if peer.startswith("unix:"):
        for key, value in context.invocation_metadata() or ():
            if key == CLIENT_ADDRESS_KEY:
                return value.decode() if isinstance(value, bytes) else str(value)
        return ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rpartition("]")[0].lstrip("[") or rest
    return rest.rpartition(":")[0] or rest


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


REAUTH_SECONDS = 30.0
"""How often long-lived streams re-check their caller's credentials."""


class StreamCaller:
    """Keeps a long-lived stream's credentials honest.

    A stream authenticates once when it opens. A revocation event for its user (a token
    deleted or its expiry changed, a password changed, the account deleted) re-checks at
    once, ending it with UNAUTHENTICATED; a re-check every REAUTH_SECONDS also catches
    expiry and changes made by other replicas.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        context: grpc.aio.ServicerContext[Any, Any],
        principal: Principal,
    ) -> None:
        self.principal = principal
        """The caller as of the last check (roles can change while a stream is open)."""
        self._authenticator = authenticator
        self._context = context
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + REAUTH_SECONDS

    async def next_event(self, subscription: Subscription) -> Event:
        """The subscription's next event, re-authenticating whenever a check is due."""
        while True:
            wait = self._due - self._loop.time()
            if wait <= 0:
                self.principal = await self._authenticator.principal(self._context)
                self._due = self._loop.time() + REAUTH_SECONDS
                continue
            try:
                event = await asyncio.wait_for(subscription.get(), wait)
            except TimeoutError:
                continue
            if event.topic != CREDENTIALS_TOPIC:
                return event
            if event.payload == self.principal.user_id:
                self._due = self._loop.time()  # re-authenticate on the next turn
