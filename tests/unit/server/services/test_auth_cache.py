"""The token cache: reused for a short TTL, never past the credential's expiry, dropped at
once by a revocation, and never filled with an answer read before a revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qpi.server.services.auth_cache import MAX_ENTRIES, PrincipalCache
from qpi.server.services.principal import Principal

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ALICE = Principal("u1", "alice@example.com", False)
BOB = Principal("u2", "bob@example.com", False)


class Clocks:
    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 100.0

    def cache(self, ttl: float = 1.0) -> PrincipalCache:
        return PrincipalCache(lambda: self.wall, ttl, lambda: self.mono)


def test_an_answer_is_reused_until_the_ttl_passes() -> None:
    clocks = Clocks()
    cache = clocks.cache(ttl=1.0)
    key = cache.key("qpi_token")
    assert cache.get(key) is None
    cache.put(key, ALICE, None, cache.generation)
    clocks.mono += 0.9
    assert cache.get(key) == ALICE
    clocks.mono += 0.2
    assert cache.get(key) is None


def test_an_answer_never_outlives_the_credential() -> None:
    clocks = Clocks()
    cache = clocks.cache(ttl=60.0)
    key = cache.key("qpi_token")
    cache.put(key, ALICE, NOW + timedelta(seconds=5), cache.generation)
    assert cache.get(key) == ALICE
    clocks.wall = NOW + timedelta(seconds=5)  # the server's clock reaches the expiry
    assert cache.get(key) is None


def test_a_revocation_drops_that_users_answers_only() -> None:
    clocks = Clocks()
    cache = clocks.cache()
    alice, bob = cache.key("a"), cache.key("b")
    cache.put(alice, ALICE, None, cache.generation)
    cache.put(bob, BOB, None, cache.generation)
    cache.invalidate("u1")
    assert (cache.get(alice), cache.get(bob)) == (None, BOB)


def test_an_answer_read_before_a_revocation_is_not_cached() -> None:
    clocks = Clocks()
    cache = clocks.cache()
    key = cache.key("a")
    generation = cache.generation  # the database read starts here ...
    cache.invalidate("u1")  # ... a revocation lands while it runs ...
    cache.put(key, ALICE, None, generation)  # ... so its answer may be stale
    assert cache.get(key) is None


def test_keys_are_digests_and_the_cache_is_bounded() -> None:
    clocks = Clocks()
    cache = clocks.cache()
    assert cache.key("qpi_secret") != b"qpi_secret"
    assert len(cache.key("qpi_secret")) == 32
    for i in range(MAX_ENTRIES + 1):
        cache.put(cache.key(str(i)), ALICE, None, cache.generation)
    assert cache.get(cache.key(str(MAX_ENTRIES))) == ALICE
    assert cache.get(cache.key("0")) is None  # dropped when the cache filled up
