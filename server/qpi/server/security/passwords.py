"""Password hashing with Argon2id (a memory-hard KDF)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Modest memory cost: logins happen rarely and this box has 2 cores shared with tests.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def hash_password(password: str) -> str:
    """Returns an encoded Argon2id hash of `password`."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash`; never raises for bad input."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordWork:
    """Runs Argon2 in its own small thread pool, never on the event loop or a database
    thread (where each hash would delay every other request on SQLite).

    The pool also bounds how much memory concurrent hashes take (19 MiB each).
    """

    def __init__(self, workers: int = 2) -> None:
        """Start a pool of ``workers`` threads."""
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qpi-kdf")

    async def hash(self, password: str) -> str:
        """:func:`hash_password` in the pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, hash_password, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """:func:`verify_password` in the pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, verify_password, password_hash, password)

    def close(self) -> None:
        """Stop the pool's threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
