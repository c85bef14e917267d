"""Reads bearer credentials from call metadata."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import grpc

from qpi.server.services.auth_cache import PrincipalCache
from qpi.server.services.auth_service import AuthService, DriverIdentity
from qpi.server.services.database import Database
from qpi.server.services.events import CREDENTIALS_TOPIC, TICK, Event, Subscription
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
    """Resolves the caller of an RPC (off the event loop, unless recently cached)."""

    def __init__(
        self, db: Database, auth: AuthService, cache: PrincipalCache | None = None
    ) -> None:
        self._db = db
        self._auth = auth
        self._cache = cache

    async def principal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        """The authenticated user or an UNAUTHENTICATED error."""
        return await self._resolve(bearer_token(context))

    async def _resolve(self, token: str) -> Principal:
        cache = self._cache
        if cache is None or not token:
            return await self._db.run(self._auth.authenticate, token)
        key = cache.key(token)
        found = cache.get(key)
        if found is not None:
            return found
        generation = cache.generation
        principal, expires = await self._db.run(self._auth.authenticate_until, token)
        cache.put(key, principal, expires, generation)
        return principal

    async def optional_principal(
        self, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Principal | None:
        """The user if credentials were sent, else None (bad credentials still fail)."""
        token = bearer_token(context)
        if not token:
            return None
        return await self._resolve(token)

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
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    async def next_event(self, subscription: Subscription) -> Event:
        """The subscription's next event, re-authenticating whenever a check is due.

        The periodic check is a timer that pokes the subscription, not a timeout around
        every wait: events cost one queue hand-off each, however many streams are open.
        """
        while True:
            if self._loop.time() >= self._due:
                self.principal = await self._authenticator.principal(self._context)
                self._due = self._loop.time() + REAUTH_SECONDS
            self._arm(subscription)
            event = await subscription.get()
            if event is TICK:
                continue
            if event.topic != CREDENTIALS_TOPIC:
                return event
            if event.payload == self.principal.user_id:
                self._due = self._loop.time()  # re-authenticate on the next turn

    def _arm(self, subscription: Subscription) -> None:
        """Makes sure a timer pokes the subscription when the next check is due."""
        if self._timer is not None and self._timer_at == self._due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = self._due
        self._timer = self._loop.call_at(self._due, subscription.poke)

    def close(self) -> None:
        """Cancels the re-check timer (the stream ended)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
