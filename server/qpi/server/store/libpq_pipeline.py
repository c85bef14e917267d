"""Statements sent to PostgreSQL in one write: a libpq pipeline driven directly.

psycopg's own pipeline sends each queued statement in a write of its own and polls the
socket between them (about 25 polls and writes for a submit's seven statements), which
cost more CPU than the statements themselves and as much time as a round trip:
measured here, BEGIN + four prepared SELECTs + COMMIT took 0.43 ms wall and 0.34 ms CPU
through psycopg's pipeline against 0.18 ms and 0.05 ms when libpq queues them all and
flushes once. :func:`run` does the latter for :mod:`qpi.server.store.prepared`: it queues
the statements (and a transaction's BEGIN and COMMIT) in libpq's pipeline mode, sends
them in one write, and reads every result back, converting rows with the connection's
own psycopg loaders.

Statements are prepared on the server once per connection, by name. The names live in
psycopg's own registry of the connection's prepared statements, under keys psycopg never
builds itself, so whatever makes psycopg drop its statements (``DEALLOCATE ALL`` after a
ROLLBACK or DDL, eviction of the least recently used) drops these too, and the next run
prepares them again in the same write. This reads psycopg's private ``_prepared`` state
(psycopg is pinned; ``tests/integration/store/test_libpq_pipeline.py`` covers the cases).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors
from psycopg import generators
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus, TransactionStatus

_OUR_TYPES = (-1,)
"""The `types` half of our keys in psycopg's registry: no parameter type is negative, so
psycopg never finds one of ours for its own statements, nor we one of its."""

_NAMES = itertools.count(1)
"""Statement names are never reused: psycopg may still be about to deallocate an evicted
one by name."""

BEGIN = b"BEGIN"
_COMMIT = b"COMMIT"
_IDLE = TransactionStatus.IDLE
_PIPELINE_SYNC = ExecStatus.PIPELINE_SYNC
_FAILED = (ExecStatus.FATAL_ERROR, ExecStatus.PIPELINE_ABORTED)


@dataclass(frozen=True)
class Outcome:
    """What one statement returned."""

    rows: list[tuple[Any, ...]]
    rowcount: int
    column_types: tuple[int, ...]
    """The result columns' type OIDs (what picks some SQLAlchemy result processors)."""


class StatementFailed(Exception):
    """A statement of the pipeline failed; the ones after it did not run."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.index = index
        """The failed statement's position in the pipeline."""
        self.error = error
        """psycopg's error for it (its class follows the SQLSTATE, as psycopg raises)."""


def run(
    connection: psycopg.Connection[Any],
    statements: Sequence[tuple[bytes, Sequence[Any]]],
    *,
    begin: bytes | None = None,
    commit: bool = False,
) -> list[Outcome]:
    """Runs `statements` (SQL with ``$n`` placeholders, and their values) in order, in one
    write and one read, preceded by the `begin` command (see :func:`begin_command`) and
    followed by COMMIT if asked.

    Raises:
        StatementFailed: a statement failed (a failed BEGIN or COMMIT counts as the
            first or last statement); nothing after it ran, and the transaction, if one
            is open, is left failed.
        psycopg.OperationalError: the connection was lost.
    """
    queued = _Queued(connection, statements, begin, commit)
    try:
        queued.send()
        connection.wait(generators.send(connection.pgconn))
        replies: list[Any] = []
        while queued.more(connection.wait(generators.fetch_many(connection.pgconn)), replies):
            pass
    finally:
        _leave_pipeline_mode(connection)
    return queued.outcomes(replies)


async def run_async(
    connection: psycopg.AsyncConnection[Any],
    statements: Sequence[tuple[bytes, Sequence[Any]]],
    *,
    begin: bytes | None = None,
    commit: bool = False,
) -> list[Outcome]:
    """:func:`run` on an asynchronous connection: the event loop waits for the socket.

    If the wait is interrupted (the task cancelled) with replies still to come, the
    connection is closed: what the server did with the statements sent is unknown.
    """
    queued = _Queued(connection, statements, begin, commit)
    try:
        queued.send()
        await connection.wait(generators.send(connection.pgconn))
        replies: list[Any] = []
        pgconn = connection.pgconn
        while queued.more(await connection.wait(generators.fetch_many(pgconn)), replies):
            pass
    finally:
        _leave_pipeline_mode(connection)
    return queued.outcomes(replies)


class _Queued:
    """A pipeline's statements as queued in libpq, and how to read their replies."""

    def __init__(
        self,
        connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
        statements: Sequence[tuple[bytes, Sequence[Any]]],
        begin: bytes | None,
        commit: bool,
    ) -> None:
        self._connection = connection
        self._statements = statements
        self._begin = begin
        self._commit = commit
        self._transformer = Transformer.from_context(connection)
        # Values are converted before anything is queued: one that cannot be (a NUL in a
        # string) fails alone, leaving the connection as it was.
        self._params = [
            self._transformer.dump_sequence(v, [PyFormat.TEXT] * len(v)) for _, v in statements
        ]
        self._names = _prepared_names(connection)
        self._expected: list[_Reply] = []  # what each reply answers, in the order sent

    def send(self) -> None:
        """Queues every command in pipeline mode and marks the sync point (the caller
        then flushes and reads)."""
        pgconn = self._connection.pgconn
        names, expected = self._names, self._expected
        pgconn.enter_pipeline_mode()
        if self._begin is not None:
            pgconn.send_query_params(self._begin, None)
            expected.append(_Reply(0))
        for index, (sql, _) in enumerate(self._statements):
            key = (sql, _OUR_TYPES)
            name = names.get(key)
            if name is None:
                name = f"_qpi_{next(_NAMES)}".encode()
                pgconn.send_prepare(name, sql)
                expected.append(_Reply(index, key, name))
            else:
                names.move_to_end(key)  # psycopg evicts the least recently used first
            pgconn.send_query_prepared(name, self._params[index])
            expected.append(_Reply(index, returns=True))
        if self._commit:
            pgconn.send_query_params(_COMMIT, None)
            expected.append(_Reply(max(len(self._statements) - 1, 0)))
        pgconn.pipeline_sync()

    def more(self, results: list[Any], replies: list[Any]) -> bool:
        """Adds one command's `results` to `replies`; False at the sync point."""
        if results and results[0].status == _PIPELINE_SYNC:
            return False
        replies.append(results[-1] if results else None)
        return True

    def outcomes(self, replies: list[Any]) -> list[Outcome]:
        """The statements' outcomes; registers the statements prepared on the way."""
        return _outcomes(self._connection, self._transformer, self._names, self._expected, replies)


def begin_command(connection: psycopg.Connection[Any]) -> bytes | None:
    """The BEGIN psycopg itself would send before a statement on `connection` (with its
    isolation level), or None: in autocommit mode, or inside a transaction already.
    psycopg sends it as a round trip of its own; here it goes in the same write."""
    if connection.autocommit or connection.info.transaction_status != _IDLE:
        return None
    return connection._get_tx_start_command()  # noqa: SLF001 (psycopg's exact command)


@dataclass(frozen=True)
class _Reply:
    """What one reply of the pipeline answers."""

    index: int
    """The statement it belongs to (BEGIN: the first, COMMIT: the last)."""
    key: tuple[bytes, tuple[int, ...]] | None = None
    """For a PREPARE: the statement's key in psycopg's registry."""
    name: bytes = b""
    """For a PREPARE: the name it prepares."""
    returns: bool = False
    """The statement's own reply (rows and row count)."""


def _prepared_names(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> Any:
    """psycopg's registry of the connection's prepared statements (key -> name)."""
    return connection._prepared._names  # noqa: SLF001 (see the module's docstring)


def _leave_pipeline_mode(
    connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
) -> None:
    """Back to normal mode. If results are still pending (the connection was lost, or the
    wait was interrupted) the connection cannot be used again: it is closed, which the
    pools recognise as a lost connection."""
    pgconn = connection.pgconn
    if not pgconn.pipeline_status:
        return
    try:
        pgconn.exit_pipeline_mode()
    except psycopg.OperationalError:
        pgconn.finish()


def _outcomes(
    connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
    transformer: Any,
    names: Any,
    expected: list[_Reply],
    replies: list[Any],
) -> list[Outcome]:
    """The statements' outcomes; registers the statements prepared on the way."""
    outcomes: list[Outcome] = []
    for reply, result in zip(expected, replies, strict=True):
        if result is None or result.status in _FAILED:
            if result is not None and result.status == ExecStatus.FATAL_ERROR:
                error = psycopg.errors.error_from_result(result, connection.info.encoding)
                raise StatementFailed(reply.index, error)
            continue  # skipped after the failure, which is reported above
        if reply.key is not None:
            names[reply.key] = reply.name
        elif reply.returns:
            transformer.set_pgresult(result)
            rows = transformer.load_rows(0, result.ntuples, tuple) if result.ntuples else []
            types = tuple(result.ftype(i) for i in range(result.nfields))
            outcomes.append(Outcome(rows, int(result.command_tuples or 0), types))
            transformer.set_pgresult(None)
        result.clear()
    return outcomes
