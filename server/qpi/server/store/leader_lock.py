"""The cluster leadership lock: a PostgreSQL session-level advisory lock on a dedicated
connection, or nothing to lock on SQLite (one server, always the leader).

The lock lives as long as the connection: when the leader process dies, the kernel closes
its socket, PostgreSQL ends the session and releases the lock at once, and the next
replica to try takes it. A leader host that vanishes without closing its socket is noticed
by TCP keepalives, configured on both ends of the connection (about 11 s).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x5150_4900_1EAD_0001
"""The advisory lock key of QPI's leadership ("QPI" + "LEAD"); advisory locks are scoped
to one database, so deployments on other databases of the same server never collide."""
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
_TIMEOUT_SECONDS = 5


class LeaderLock(Protocol):
    """What leadership needs of a lock; every call blocks (run it off the event loop)."""

    def try_acquire(self) -> bool:
        """Takes the lock if it is free; whether this process now holds it."""
        ...

    def still_held(self) -> bool:
        """Whether this process still holds the lock (False once its connection died)."""
        ...

    def release(self) -> None:
        """Gives the lock up (closes the dedicated connection)."""
        ...


class SoleServerLock:
    """SQLite: a single server, always the leader."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLock:
    """`pg_try_advisory_lock` held by a connection of its own, outside the pool."""

    def __init__(self, engine: Engine, application_name: str, key: int = LEADER_LOCK_KEY) -> None:
        self._params: dict[str, Any] = {
            **engine.url.translate_connect_args(username="user", database="dbname"),
            **{k: v for k, v in engine.url.query.items() if isinstance(v, str)},
            **_KEEPALIVE,
            "connect_timeout": _TIMEOUT_SECONDS,
            "application_name": application_name[:63],
        }
        self._key = key if key < 2**63 else key - 2**64  # a signed bigint
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        try:
            if self._conn is None:
                self._conn = psycopg.connect(autocommit=True, **self._params)
                # The server side probes the leader too, so a vanished leader's session
                # (and lock) ends even if its socket was never closed.
                self._conn.execute(
                    "SELECT set_config('tcp_keepalives_idle', '5', false),"
                    " set_config('tcp_keepalives_interval', '2', false),"
                    " set_config('tcp_keepalives_count', '3', false),"
                    f" set_config('statement_timeout', '{_TIMEOUT_SECONDS}s', false)"
                )
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except psycopg.Error as error:
            logger.warning("[Leadership] cannot reach the database for the lock: %s", error)
            self._drop()
            return False
        return bool(row and row[0])

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid() AND granted"
                " AND objsubid = 1 AND classid::bigint = %s AND objid::bigint = %s",
                (self._key >> 32 & 0xFFFF_FFFF, self._key & 0xFFFF_FFFF),
            ).fetchone()
        except psycopg.Error as error:
            logger.warning("[Leadership] lost the lock's connection: %s", error)
            self._drop()
            return False
        return bool(row and row[0])

    def release(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
