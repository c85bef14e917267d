"""What every SQL repository shares: sessions and the store's own errors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from qpi.server.store.database import autocommit_engine
from qpi.server.store.transactions import write_transaction


class DuplicateKeyError(Exception):
    """A write broke a uniqueness rule (a name, e-mail or idempotency key already taken)."""


def autocommit_reads(engine: Engine) -> Engine:
    """`engine` for reads that need no transaction block.

    PostgreSQL (READ COMMITTED) takes a fresh snapshot for every statement even inside a
    transaction, so a read runs the same without one — and without the BEGIN and the
    COMMIT, two of a single-statement read's three round trips. SQLite's driver opens no
    transaction for reads anyway. Not for statements that need a block (``SET LOCAL``)."""
    if engine.dialect.name != "postgresql":
        return engine
    return autocommit_engine(engine)


def session_factory(engine: Engine) -> Callable[[], Session]:
    """New sessions on `engine` whose objects stay readable after commit (so repositories
    can map them to records after the write)."""
    return lambda: Session(engine, expire_on_commit=False)


# The transaction a repository method lends to the calls it makes back into the services,
# per thread and engine (see `SqlRepository._lending`).
_LENT = threading.local()


class SqlRepository:
    """A repository over one engine; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session = session_factory(engine)
        self._reads = autocommit_reads(engine)

    @contextmanager
    def _lending(self, conn: Connection) -> Iterator[None]:
        """Lends `conn` (an open transaction) to reads that other repositories on this
        engine make on this thread until the block ends: a callback run inside a write
        (e.g. routing a job while its owner is locked) then reads in that transaction
        instead of checking out, resetting and returning a second pooled connection."""
        lent: dict[int, Connection] = _LENT.__dict__.setdefault("by_engine", {})
        key = id(self._engine)
        previous = lent.get(key)
        lent[key] = conn
        try:
            yield
        finally:
            if previous is None:
                del lent[key]
            else:
                lent[key] = previous

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """The transaction lent on this thread (see :meth:`_lending`), else a fresh
        connection for this read alone."""
        lent = _LENT.__dict__.get("by_engine", {}).get(id(self._engine))
        if lent is not None:
            yield lent
            return
        with self._reads.connect() as conn:
            yield conn

    def _write_transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction whose BEGIN and COMMIT can travel with its statements (see
        :mod:`qpi.server.store.transactions`)."""
        return write_transaction(self._engine, self._reads)

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


def in_state(state: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """`state = '<name>'` with the state written into the SQL, not bound: only then can
    PostgreSQL use a partial index of that state (ix_jobs_pending_qpu_created_id,
    ix_jobs_running_user) in every plan of a prepared statement, and SQLite at all."""
    return state == literal_column(f"'{name}'")


class Keep(Enum):
    """Marks a nullable field an update leaves as it is (None would clear it)."""

    KEEP = "keep"


KEEP = Keep.KEEP
