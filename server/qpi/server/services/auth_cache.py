"""A short-lived cache of authenticated bearer tokens.

Authenticating a token costs a database round trip on every RPC; under load that was a
third of the database thread's work per job. A token's answer is reused for at most
`ttl` seconds (and never past the credential's own expiry). Revocations on this server
(token deleted or its expiry changed, password changed, account deleted) publish a
credentials event that drops the user's entries at once; other replicas' revocations
take effect within `ttl`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from qpi.server.services.principal import Principal

DEFAULT_TTL = 1.0
"""Seconds a cached answer is trusted (bounds how late another replica's revocation
is seen by a unary call; streams re-check on their own schedule)."""

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    until: float  # monotonic deadline of the TTL
    expires: datetime | None  # the credential's own expiry, on the server's clock


class PrincipalCache:
    """Token → principal, used only from the event loop (no locking needed)."""

    def __init__(
        self,
        now: Callable[[], datetime],
        ttl: float = DEFAULT_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._now = now
        self._ttl = ttl
        self._monotonic = monotonic
        self._entries: dict[bytes, _Entry] = {}
        self._generation = 0

    @staticmethod
    def key(token: str) -> bytes:
        """The cache key of a token (its digest: raw secrets are not kept as keys)."""
        return hashlib.sha256(token.encode()).digest()

    @property
    def generation(self) -> int:
        """Bumped by every invalidation; an answer read before one is not cached."""
        return self._generation

    def get(self, key: bytes) -> Principal | None:
        """The cached principal of a token key, if still fresh."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.until <= self._monotonic() or (
            entry.expires is not None and entry.expires <= self._now()
        ):
            del self._entries[key]
            return None
        return entry.principal

    def put(
        self, key: bytes, principal: Principal, expires: datetime | None, generation: int
    ) -> None:
        """Caches an answer obtained while the cache was at `generation`."""
        if generation != self._generation or self._ttl <= 0:
            return  # a revocation happened meanwhile: the answer may be stale
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # rare (many distinct tokens within one TTL): start over
        self._entries[key] = _Entry(principal, self._monotonic() + self._ttl, expires)

    def invalidate(self, user_id: object) -> None:
        """Drops every entry of a user (a credentials event's payload)."""
        self._generation += 1
        for key in [k for k, e in self._entries.items() if e.principal.user_id == user_id]:
            del self._entries[key]
