"""Column types shared by the tables."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_ID_ALPHABET = string.ascii_lowercase + string.digits


_ID_LENGTH = 15
_UNBIASED = 256 - 256 % len(_ID_ALPHABET)
"""Random bytes below this map onto the alphabet uniformly (byte % 36); the rest are
dropped."""


def new_id() -> str:
    """Returns a random 15-character record id (the shape PocketBase clients expect).

    Drawn from one read of the system's random source: `secrets.choice` per character
    made 15 `getrandom` calls per id, a measurable share of a job's system calls where
    they are expensive (virtual machines).
    """
    chars: list[str] = []
    while len(chars) < _ID_LENGTH:
        chars += (
            _ID_ALPHABET[b % len(_ID_ALPHABET)] for b in secrets.token_bytes(24) if b < _UNBIASED
        )
    return "".join(chars[:_ID_LENGTH])


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC and returns aware UTC, so SQLite and PostgreSQL behave alike.

    SQLite has no time zone support; normalising at the column keeps every comparison in
    the domain between aware datetimes.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; use UTC-aware values")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)
