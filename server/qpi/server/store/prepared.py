"""Hot statements compiled once and run straight on the driver's cursor.

Every job costs a dozen fixed-shape statements (routing, the insert, the dispatch
snapshot, the claim, the result). Through ``Connection.execute`` each pays SQLAlchemy's
per-call machinery (cache-key generation, an execution context, a result object) of
several times what SQLite itself spends; under load that machinery was about a quarter of
the server's CPU. A :class:`Prepared` statement keeps what SQLAlchemy would have done once
per dialect (the SQL text, bind order and type processors, all from SQLAlchemy's own
compiler and types) and per call only converts values and executes on the DBAPI cursor of
the caller's SQLAlchemy connection, so transactions, pooling and isolation stay
SQLAlchemy's. Driver errors are wrapped exactly as SQLAlchemy wraps them (``IntegrityError``
stays ``IntegrityError``), and a lost PostgreSQL connection is handled by SQLAlchemy itself
(the pool replaces every connection of its generation), so callers and the outage mapping
see no difference.

On PostgreSQL the statements do not go through psycopg's cursors at all: they are
prepared on the server and sent in libpq pipelines, several in one write with the
transaction's BEGIN and COMMIT where they belong (:mod:`qpi.server.store.libpq_pipeline`).

Only fixed-shape statements belong here: no expanding ``IN`` lists, no per-call clauses.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from qpi.server.store import libpq_pipeline
from qpi.server.store.postgres_plans import WROTE, nothing_to_undo
from qpi.server.store.transactions import Stage, mark, stage

Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement's SQL, bind order and type processors for one dialect."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=_placeholders_for(dialect)))
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("expanding IN lists change the SQL per call: not preparable")
        self.sql = str(compiled)
        self.sql_bytes = self.sql.encode()
        self.undoable = not nothing_to_undo(self.sql)
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(
            compiled.positiontup or () if compiled.positional else compiled.binds
        )
        # Literal values the statement carries itself (state = 'pending', LIMIT 2).
        self.defaults: dict[str, Any] = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        binds: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self._plan = tuple((name, binds[name]) for name in self.names)
        columns = getattr(statement, "exported_columns", ())
        self._types = [column.type for column in columns]
        self._dialect = dialect
        self._results: list[tuple[int, Callable[[Any], Any]]] | None = None
        self._lock = threading.Lock()

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's arguments: every bind in order, converted by its type."""
        defaults = self.defaults
        values = []
        for name, convert in self._plan:
            value = params[name] if name in params else defaults[name]
            values.append(value if convert is None else convert(value))
        if self.positional:
            return tuple(values)
        return dict(zip(self.names, values, strict=True))

    def results(
        self, column_types: Callable[[], Sequence[Any]]
    ) -> list[tuple[int, Callable[[Any], Any]]]:
        """The result columns that need converting, with their converters; made on the
        first execution, as some types pick theirs by the column type the driver reports
        (PostgreSQL numerics): `column_types` is asked only then."""
        if self._results is None:
            with self._lock:
                processors = [
                    type_.dialect_impl(self._dialect).result_processor(self._dialect, code)
                    for type_, code in zip(self._types, column_types(), strict=True)
                ]
                self._results = [(i, p) for i, p in enumerate(processors) if p is not None]
        return self._results


def _placeholders_for(dialect: Dialect) -> Dialect:
    """The dialect to compile with: on psycopg, a copy that writes ``$1`` placeholders
    (what libpq's prepared statements take) instead of psycopg's ``%(name)s``."""
    if dialect.driver != "psycopg":
        return dialect
    numbered = copy.copy(dialect)
    numbered.paramstyle = "numeric_dollar"
    numbered.positional = True
    return numbered


class Prepared:
    """A fixed-shape Core statement run on a SQLAlchemy connection's DBAPI cursor."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        """The Core statement, for callers that add clauses (then run it the usual way)."""
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = f"{dialect.name}+{dialect.driver}"
        found = self._by_dialect.get(key)
        if found is None:
            found = self._by_dialect.setdefault(key, _Compiled(self.statement, dialect))
        return found

    def rows(
        self, conn: Connection, params: Mapping[str, Any] | None = None, *, commit: bool = False
    ) -> list[tuple[Any, ...]]:
        """Every row the statement returns, with SQLAlchemy's result types. With `commit`,
        the last statement of a :func:`~qpi.server.store.transactions.write_transaction`:
        its COMMIT is sent with it (elsewhere the transaction commits as usual)."""
        return self._run(conn, params or {}, fetch=True, commit=commit)[0]

    def first(
        self, conn: Connection, params: Mapping[str, Any] | None = None, *, commit: bool = False
    ) -> tuple[Any, ...] | None:
        """The first row, or None."""
        found = self.rows(conn, params, commit=commit)
        return found[0] if found else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def write(
        self, conn: Connection, params: Mapping[str, Any] | None = None, *, commit: bool = False
    ) -> int:
        """Runs a statement without RETURNING; the number of rows it matched."""
        return self._run(conn, params or {}, fetch=False, commit=commit)[1]

    def _run(
        self, conn: Connection, params: Mapping[str, Any], *, fetch: bool, commit: bool
    ) -> tuple[list[tuple[Any, ...]], int]:
        dialect = conn.dialect
        compiled = self._compiled(dialect)
        arguments = compiled.arguments(params)
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        if dialect.driver == "psycopg":
            run = (compiled, arguments)
            return _together(conn, dbapi_connection, [run], commit, fetch=fetch)[0]
        cursor = _cursor(conn, dbapi_connection)
        try:
            cursor.execute(compiled.sql, arguments)
            if not fetch:
                return [], int(cursor.rowcount)
            return _fetched(cursor, compiled), int(cursor.rowcount)
        except dialect.loaded_dbapi.Error as error:
            raise _wrapped(conn, dbapi_connection, compiled, arguments, error) from error


def rows_together(
    conn: Connection,
    steps: Sequence[tuple[Prepared, Mapping[str, Any]]],
    *,
    commit: bool = False,
) -> list[list[tuple[Any, ...]]]:
    """The rows of several statements that do not depend on each other's results, in
    order: on PostgreSQL sent together in one pipeline (with a pending BEGIN of a
    :func:`~qpi.server.store.transactions.write_transaction`, and with its COMMIT if
    `commit`), so they cost one round trip instead of one each; elsewhere run one after
    another.

    Each statement still runs alone and in order on the server, so one that follows a
    row lock reads with a snapshot taken after the lock was granted (READ COMMITTED).
    """
    dialect = conn.dialect
    if dialect.driver != "psycopg":
        return [prepared.rows(conn, params, commit=commit) for prepared, params in steps]
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    runs = []
    for prepared, params in steps:
        compiled = prepared._compiled(dialect)
        runs.append((compiled, compiled.arguments(params)))
    return [rows for rows, _ in _together(conn, dbapi_connection, runs, commit, fetch=True)]


async def transaction_on_loop(
    connection: psycopg.AsyncConnection[Any],
    dialect: Dialect,
    steps: Sequence[tuple[Prepared, Mapping[str, Any]]],
) -> list[list[tuple[Any, ...]]]:
    """The rows of `steps` run as one transaction (BEGIN, the statements, COMMIT) in one
    libpq pipeline on an asynchronous PostgreSQL connection in autocommit mode, with
    SQLAlchemy's result types as :func:`rows_together` gives them.

    Raises:
        libpq_pipeline.StatementFailed: a statement failed, and the transaction with it.
        psycopg.OperationalError: the connection was lost.
    """
    runs = []
    for prepared, params in steps:
        compiled = prepared._compiled(dialect)
        runs.append((compiled, compiled.arguments(params)))
    # Positional arguments: these statements are compiled for psycopg ($n placeholders).
    statements = [(compiled.sql_bytes, cast(Sequence[Any], args)) for compiled, args in runs]
    outcomes = await libpq_pipeline.run_async(
        connection, statements, begin=libpq_pipeline.BEGIN, commit=True
    )
    return [
        _loaded(outcome, compiled) for outcome, (compiled, _) in zip(outcomes, runs, strict=True)
    ]


_IDLE = TransactionStatus.IDLE
_Run = tuple["_Compiled", Any]
"""A statement ready to run: its compiled form and its driver arguments."""


def _together(
    conn: Connection, dbapi_connection: Any, runs: Sequence[_Run], commit: bool, *, fetch: bool
) -> list[tuple[list[tuple[Any, ...]], int]]:
    """Rows and row counts of `runs`, sent in one libpq pipeline with the BEGIN the
    connection needs first (a write transaction's pending one, or the one psycopg would
    send) and, if `commit`, the write transaction's COMMIT. A write transaction of a single
    statement needs neither: it runs alone, in autocommit, as its own transaction."""
    at = stage(conn)
    pending = at is Stage.BEGIN_PENDING
    commit = commit and at is not None
    alone = pending and commit and len(runs) == 1
    if pending:
        begin = None if alone else libpq_pipeline.BEGIN
    else:
        begin = libpq_pipeline.begin_command(dbapi_connection)
    if any(compiled.undoable for compiled, _ in runs):
        conn.info[WROTE] = True  # SQLAlchemy's events do not see these statements
    statements = [(compiled.sql_bytes, arguments) for compiled, arguments in runs]
    try:
        outcomes = libpq_pipeline.run(
            dbapi_connection, statements, begin=begin, commit=commit and not alone
        )
    except libpq_pipeline.StatementFailed as failed:
        # The first failure aborts the rest (the COMMIT too); report the statement that
        # failed. The transaction, if any, is left failed for its block to roll back.
        if pending and dbapi_connection.info.transaction_status != _IDLE:
            mark(conn, Stage.OPEN)
        compiled, arguments = runs[failed.index]
        raise _wrapped(conn, dbapi_connection, compiled, arguments, failed.error) from (
            failed.error
        )
    except conn.dialect.loaded_dbapi.Error as error:  # the connection, not a statement
        compiled, arguments = runs[0]
        raise _wrapped(conn, dbapi_connection, compiled, arguments, error) from error
    if commit:
        mark(conn, Stage.COMMITTED)
    elif pending:
        mark(conn, Stage.OPEN)
    return [
        (_loaded(outcome, compiled) if fetch else [], outcome.rowcount)
        for outcome, (compiled, _) in zip(outcomes, runs, strict=True)
    ]


def _loaded(outcome: libpq_pipeline.Outcome, compiled: _Compiled) -> list[tuple[Any, ...]]:
    """A pipeline statement's rows, converted by their SQLAlchemy types."""
    converting = compiled.results(lambda: outcome.column_types)
    if not converting:
        return outcome.rows
    return [_converted(row, converting) for row in outcome.rows]


def _fetched(cursor: Any, compiled: _Compiled) -> list[tuple[Any, ...]]:
    """The rows of the cursor's last statement, converted by their SQLAlchemy types."""
    raw = cursor.fetchall()
    converting = compiled.results(lambda: [column[1] for column in cursor.description])
    if converting:
        raw = [_converted(row, converting) for row in raw]
    return list(raw)


def _wrapped(
    conn: Connection,
    dbapi_connection: Any,
    compiled: _Compiled,
    arguments: Any,
    error: Exception,
) -> Exception:
    """A driver error as SQLAlchemy would have raised it."""
    dialect = conn.dialect
    if dialect.is_disconnect(cast(Any, error), dbapi_connection, None):
        # SQLAlchemy's own handling of a lost connection (every pooled connection of its
        # generation is replaced, the error says the connection was invalidated): let it
        # see the failure on a statement of its own.
        conn.exec_driver_sql("SELECT 1")
    return cast(
        Exception,
        exc.DBAPIError.instance(
            compiled.sql, arguments, error, dialect.loaded_dbapi.Error, dialect=dialect
        ),
    )


_CURSOR = "qpi_prepared_cursor"


def _cursor(conn: Connection, dbapi_connection: Any) -> Any:
    """The DBAPI connection's cursor for prepared statements (SQLite), made once and kept
    with it: a new cursor per statement cost a measurable share of each statement. Kept in
    the pool's per-connection ``info``, which SQLAlchemy discards with the DBAPI
    connection; a connection is used by one thread at a time, and every statement here is
    read to the end before the next."""
    info = conn.connection.info
    cursor = info.get(_CURSOR)
    if cursor is None or cursor.connection is not dbapi_connection:
        cursor = info[_CURSOR] = dbapi_connection.cursor()
    return cursor


def _converted(row: Sequence[Any], converting: list[tuple[int, Callable[[Any], Any]]]) -> Any:
    values = list(row)
    for index, convert in converting:
        values[index] = convert(values[index])
    return tuple(values)
