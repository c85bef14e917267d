"""What every SQL repository shares: sessions and the store's own errors."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session


class DuplicateKeyError(Exception):
    """A write broke a uniqueness rule (a name, e-mail or idempotency key already taken)."""


def session_factory(engine: Engine) -> Callable[[], Session]:
    """New sessions on `engine` whose objects stay readable after commit (so repositories
    can map them to records after the write)."""
    return lambda: Session(engine, expire_on_commit=False)


class SqlRepository:
    """A repository over one engine; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session = session_factory(engine)

    @property
    def _is_postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE (SQLAlchemy types execute() results too loosely)."""
    return int(result.rowcount)


def capped_count(query: Any, cap: Any) -> Any:
    """``SELECT count(*) FROM (query LIMIT cap)``: a count that reads at most `cap` rows,
    so checks like "fewer than N pending" cost the same whatever the queue length."""
    return select(func.count()).select_from(query.limit(cap).subquery())


class Keep(Enum):
    """Marks a nullable field an update leaves as it is (None would clear it)."""

    KEEP = "keep"


KEEP = Keep.KEEP
