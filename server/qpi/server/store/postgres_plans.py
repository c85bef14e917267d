"""PostgreSQL: keep psycopg's prepared statements across read transactions.

psycopg prepares a statement on the server once a connection has run it a few times
(``prepare_threshold``), so later runs skip parsing and planning — on this schema 0.1 to
0.5 ms per statement, more than the statement itself. But psycopg forgets every prepared
statement of a connection whenever a transaction ends with ROLLBACK (a rollback might have
undone the DDL a plan relied on), and SQLAlchemy ends every transaction that did not
commit that way: each read (authentication, a job's idempotency check, WatchJob's job,
display names, listings) did, so in practice no statement was ever prepared and every one
was planned anew.

A transaction that ran nothing but SELECTs ends the same way whether it commits or rolls
back (nothing to undo, no NOTIFY to send, its locks are released either way), so such a
transaction is committed just before SQLAlchemy's rollback, which then finds the
connection idle and leaves psycopg's cache alone. Anything else — a write, DDL, a
savepoint, a NOTIFY, a failed statement — still gets its real ROLLBACK.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

WROTE = "qpi_wrote"
"""Key in a pooled connection's `info`: its open transaction ran a statement that a
rollback would undo (set here for SQLAlchemy's executions, by `Prepared` for its own)."""

_UNDOABLE_FREE = re.compile(r"\s*(?:select\b|set\s+local\b)", re.IGNORECASE).match


def nothing_to_undo(statement: str) -> bool:
    """Whether a transaction that ran `statement` ends the same by COMMIT or ROLLBACK: a
    SELECT that sends no notification, or a ``SET LOCAL`` (undone by both)."""
    return _UNDOABLE_FREE(statement) is not None and "notify" not in statement.lower()


def keep_prepared_statements(engine: Engine) -> None:
    """Ends `engine`'s read-only transactions with COMMIT instead of ROLLBACK."""
    event.listen(engine, "before_cursor_execute", _note_writes)
    event.listen(engine, "commit", _forget_writes)
    # A transaction SQLAlchemy began ends in Connection.rollback(); one it never saw begin
    # (statements run by `Prepared` on the driver's cursor) in the pool's reset on return.
    event.listen(engine, "rollback", _end_rolled_back)
    event.listen(engine.pool, "reset", _end_reset)


def _note_writes(
    conn: Connection,
    _cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    if not nothing_to_undo(statement):
        conn.info[WROTE] = True


def _forget_writes(conn: Connection) -> None:
    conn.info.pop(WROTE, None)


def _end_rolled_back(conn: Connection) -> None:
    if conn.invalidated:  # the connection was lost: nothing to end, nothing to keep
        return
    _commit_if_read_only(conn.connection.dbapi_connection, conn.info)


def _end_reset(dbapi_connection: Any, record: Any, _state: Any) -> None:
    _commit_if_read_only(dbapi_connection, record.info)


def _commit_if_read_only(dbapi: Any, info: dict[str, Any]) -> None:
    wrote = info.pop(WROTE, False)
    if wrote or not isinstance(dbapi, psycopg.Connection):
        return
    if dbapi.info.transaction_status != TransactionStatus.INTRANS:
        return  # idle (nothing to end) or failed: the real rollback follows
    try:
        dbapi.commit()
    except psycopg.Error:
        pass  # the rollback that follows meets (and reports) the same broken connection
