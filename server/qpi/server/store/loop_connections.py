"""PostgreSQL connections driven by the event loop itself, for one-pipeline transactions.

A submit stored by one guarded insert (:mod:`qpi.server.store.admission_guards`) is one
libpq pipeline: BEGIN, the owner's lock, the insert, COMMIT, in one write. Sent from a
database thread it also pays the hand-over to the thread and back (measured 0.15-0.24 ms
of an idle submit's 1.8 ms); here the loop sends it and waits for the socket as for any
other I/O, so nothing blocks while PostgreSQL answers.

This path never waits for a connection: without a free, live one the caller stores the
job in a database thread as before, where the engine's pool, pings and outage handling
are. psycopg_pool's pool does the opposite (its getconn waits while it reconnects in the
background), which is why this small stock is written here:

- at most `size` connections; none free, or none can be opened: :data:`BUSY`;
- an idle connection is checked before use without a round trip: anything the server
  sent to it while idle (a restart's or an administrator's termination notice, then the
  end of the stream) means it is dropped;
- one idle longer than `ping_after_idle` is pinged first, as the engine's pool does;
- one that failed or was interrupted mid-pipeline is closed, never reused.
"""

from __future__ import annotations

import select
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Dialect

from qpi.server.store import libpq_pipeline
from qpi.server.store.prepared import Prepared, transaction_on_loop

APPLICATION_NAME = "qpi-loop"
"""How these connections appear in ``pg_stat_activity`` (an operator counting a server's
connections: docs/deployment.md)."""

RETRY_CONNECT_AFTER = 1.0
"""Seconds without new connection attempts after one failed (the database is away: the
database thread reports the outage meanwhile, without each submit trying again)."""

_IDLE = TransactionStatus.IDLE


class Busy(Enum):
    """No free connection on the loop: the caller runs the transaction elsewhere."""

    BUSY = "busy"


BUSY = Busy.BUSY


class LoopConnections:
    """A few autocommit connections of one database, each used by one task at a time."""

    def __init__(
        self,
        conninfo: str,
        dialect: Dialect,
        *,
        size: int = 4,
        ping_after_idle: float = 30.0,
        connect_timeout: int = 5,
    ) -> None:
        self._conninfo = conninfo
        self._dialect = dialect
        self._size = size
        self._ping_after_idle = ping_after_idle
        self._connect_timeout = connect_timeout
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []  # newest last
        self._open = 0  # connections made and not yet dropped, idle or in use
        self._no_connect_until = 0.0
        self._closed = False

    async def transaction(
        self, steps: Sequence[tuple[Prepared, Mapping[str, Any]]]
    ) -> list[list[tuple[Any, ...]]] | Busy:
        """The rows of `steps` run as one transaction in one round trip (see
        :func:`~qpi.server.store.prepared.transaction_on_loop`), or :data:`BUSY` when
        no connection was free (nothing was sent).

        Raises:
            psycopg.Error: a statement failed (the transaction is rolled back), as psycopg
                raises it for its SQLSTATE; psycopg.OperationalError: the connection was
                lost, and what the server did with the transaction is unknown.
        """
        connection = await self._take()
        if connection is None:
            return BUSY
        try:
            return await transaction_on_loop(connection, self._dialect, steps)
        except libpq_pipeline.StatementFailed as failed:
            await _roll_back(connection)
            raise failed.error from None
        finally:
            self._give(connection)

    async def close(self) -> None:
        """Closes the idle connections; those in use close when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._drop(connection)

    async def _take(self) -> psycopg.AsyncConnection[Any] | None:
        """A live connection, or None (none free and no new one allowed or possible)."""
        while self._idle:
            connection, since = self._idle.pop()
            if not _quiet(connection):
                self._drop(connection)
                continue
            if time.monotonic() - since >= self._ping_after_idle:
                try:
                    await connection.execute("SELECT 1")
                except psycopg.Error:
                    self._drop(connection)
                    continue
            return connection
        if self._closed or self._open >= self._size or time.monotonic() < self._no_connect_until:
            return None
        self._open += 1
        try:
            return await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name=APPLICATION_NAME,
            )
        except psycopg.Error:
            self._open -= 1
            self._no_connect_until = time.monotonic() + RETRY_CONNECT_AFTER
            return None

    def _give(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Back to the stock if it is reusable: open, outside any transaction."""
        reusable = (
            not self._closed
            and not connection.closed
            and connection.pgconn.transaction_status == _IDLE
            and not connection.pgconn.pipeline_status
        )
        if reusable:
            self._idle.append((connection, time.monotonic()))
        else:
            self._drop(connection)

    def _drop(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._open -= 1
        # Closing the socket needs no round trip (libpq's own close is synchronous).
        connection.pgconn.finish()


def _quiet(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection is open and nothing arrived on it: data on an idle
    connection (nothing here LISTENs) is a server ending the session, or a notice, and
    either way the connection is not worth keeping."""
    if connection.closed or connection.pgconn.transaction_status != _IDLE:
        return False
    poller = select.poll()
    poller.register(connection.pgconn.socket, select.POLLIN)
    return not poller.poll(0)


async def _roll_back(connection: psycopg.AsyncConnection[Any]) -> None:
    """Ends a failed transaction so the connection can serve again (else it is dropped
    when given back)."""
    if connection.closed or connection.pgconn.transaction_status == _IDLE:
        return
    try:
        await connection.execute("ROLLBACK")
    except psycopg.Error:
        connection.pgconn.finish()
