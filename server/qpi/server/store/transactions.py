"""Write transactions whose BEGIN and COMMIT travel with their statements (PostgreSQL).

psycopg opens a transaction by sending BEGIN alone and waiting for its answer, even inside
a pipeline, and ends it with a COMMIT sent alone: a submit (its reads, then its INSERT) or
a result (its owner's lock, then its update) paid four round trips where two carry the
same statements. A :func:`write_transaction` runs on a connection in autocommit mode and
sends the transaction's own ``BEGIN`` in the same pipeline as its first statements and,
when the caller runs its last statement with ``commit=True`` (see
:mod:`qpi.server.store.prepared`), its ``COMMIT`` in the same pipeline as that statement.
Each statement still runs alone and in order on the server, so locking and visibility are
those of any READ COMMITTED transaction.

Every statement of the block runs inside the transaction, whichever way it is issued:
`Prepared` statements send the pending BEGIN with themselves, and anything SQLAlchemy
executes sends it first (:func:`begin_before_other_statements`). Elsewhere (SQLite) the
block is a plain ``engine.begin()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from qpi.server.store.postgres_plans import WROTE

_STATE = "qpi_write_transaction"
"""Key in a pooled connection's `info`: where its write transaction stands (a
:class:`Stage`), present only inside a :func:`write_transaction` block."""


class Stage(Enum):
    """Where a write transaction stands."""

    BEGIN_PENDING = "begin pending"
    """No statement sent yet: the next one carries the BEGIN."""
    OPEN = "open"
    """BEGIN sent: statements run inside the transaction."""
    COMMITTED = "committed"
    """COMMIT sent with the last statement: nothing more may run in this block."""


class TransactionEnded(RuntimeError):
    """A statement followed the statement that committed its transaction."""


def uses_pipelined_transactions(engine: Engine) -> bool:
    """Whether `engine`'s write transactions send their BEGIN and COMMIT in pipelines."""
    return engine.dialect.driver == "psycopg"


@contextmanager
def write_transaction(engine: Engine, autocommit: Engine) -> Iterator[Connection]:
    """One transaction on `engine` (`autocommit`: the same engine in autocommit mode).

    Committed at the end of the block unless a statement already carried the COMMIT;
    rolled back if the block raises (by SQLAlchemy, as it closes the connection)."""
    if not uses_pipelined_transactions(engine):
        with engine.begin() as conn:
            yield conn
        return
    with autocommit.connect() as conn:
        info = conn.info
        info[_STATE] = Stage.BEGIN_PENDING
        try:
            yield conn
            if info[_STATE] is Stage.OPEN:
                dbapi_connection = conn.connection.dbapi_connection
                assert dbapi_connection is not None
                dbapi_connection.commit()  # psycopg: COMMIT if a transaction is open
                info.pop(WROTE, None)
        finally:
            del info[_STATE]


def stage(conn: Connection) -> Stage | None:
    """Where `conn`'s write transaction stands; None outside a :func:`write_transaction`
    on PostgreSQL (a transaction SQLAlchemy manages, or none)."""
    found: Stage | None = conn.info.get(_STATE)
    if found is Stage.COMMITTED:
        raise TransactionEnded("a statement ran after its transaction's COMMIT")
    return found


def mark(conn: Connection, now: Stage) -> None:
    """Records that the BEGIN or the COMMIT was sent (the latter ends the writes that a
    rollback would have undone)."""
    conn.info[_STATE] = now
    if now is Stage.COMMITTED:
        conn.info.pop(WROTE, None)


def begin_before_other_statements(engine: Engine) -> None:
    """Makes SQLAlchemy send a write transaction's pending BEGIN before any statement it
    executes itself (Core and ORM statements, which do not go through pipelines)."""
    event.listen(engine, "before_cursor_execute", _begin_if_pending)


def _begin_if_pending(
    conn: Connection,
    cursor: Any,
    _statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    if stage(conn) is Stage.BEGIN_PENDING:
        cursor.execute("BEGIN", prepare=False)
        mark(conn, Stage.OPEN)
