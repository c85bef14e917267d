"""Database outages become DATABASE_UNAVAILABLE at the store boundary, on real engines."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

from qpi.server.domain.errors import UnavailableError
from qpi.server.services.database import Database
from qpi.server.store.database import create_db_engine, is_outage, is_transaction_conflict
from tests.support.harness import PG_ADMIN_URL, drop_postgres, fresh_postgres_url
from tests.support.processes import free_port


def _ping(db: Database) -> int:
    with db.engine.connect() as c:
        return int(c.execute(text("SELECT 1")).scalar_one())


async def test_unreachable_postgres_is_unavailable() -> None:
    # Nothing listens on this port: like a server restarting.
    engine = create_db_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    db = Database(engine)
    try:
        with pytest.raises(UnavailableError) as raised:
            await db.run(_ping, db)
    finally:
        db.close()
    assert raised.value.reason == "DATABASE_UNAVAILABLE"
    assert raised.value.retry_after > 0
    assert isinstance(raised.value.__cause__, Exception)


async def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "qpi.db"  # a directory that does not exist
    db = Database(create_engine(f"sqlite:///{missing}"))
    try:
        with pytest.raises(UnavailableError):
            await db.run(_ping, db)
    finally:
        db.close()


async def test_programming_errors_stay_errors(tmp_path: Path) -> None:
    db = Database(create_db_engine(f"sqlite:///{tmp_path / 'qpi.db'}"))

    def bad(db: Database) -> None:
        with db.engine.connect() as c:
            c.execute(text("SELECT * FROM no_such_table"))

    try:
        with pytest.raises(Exception) as raised:
            await db.run(bad, db)
    finally:
        db.close()
    assert not isinstance(raised.value, UnavailableError)


def test_outage_classification() -> None:
    assert is_outage(sqlite3.OperationalError("database is locked"))
    assert is_outage(sqlite3.OperationalError("unable to open database file"))
    assert not is_outage(sqlite3.OperationalError("no such table: x"))
    assert is_outage(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert not is_outage(psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_outage(ValueError("bad"))
    assert is_transaction_conflict(psycopg.errors.DeadlockDetected("deadlock detected"))
    assert is_transaction_conflict(psycopg.errors.SerializationFailure("could not serialize"))
    assert not is_transaction_conflict(psycopg.OperationalError("server closed the connection"))
    assert not is_transaction_conflict(psycopg.errors.UniqueViolation("duplicate key"))


def _server_pids(engine: Engine) -> set[int]:
    """Backend process ids of every connection now in `engine`'s pool (checked in)."""
    held = [engine.connect() for _ in range(3)]
    pids = {c.connection.dbapi_connection.info.backend_pid for c in held}  # type: ignore[union-attr]
    for conn in held:
        conn.close()
    return pids


def _terminate(pids: set[int]) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.parametrize("ping_after_idle", [0.0, 3600.0])
def test_a_pooled_connection_the_server_closed(ping_after_idle: float) -> None:
    """A connection closed by the server while it sat in the pool (restart, failover,
    firewall): pinged at checkout when it was idle long enough, and replaced without the
    caller noticing; otherwise its one statement fails as an outage (retryable) and the
    lost connection leaves the pool, so the next call works."""
    url = fresh_postgres_url()
    engine = create_db_engine(url, ping_after_idle=ping_after_idle)
    try:
        _terminate(_server_pids(engine))
        if ping_after_idle == 0.0:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        else:
            with pytest.raises(exc.DBAPIError) as raised, engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            assert is_outage(raised.value)
        for _ in range(3):  # every pooled connection is usable again
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        drop_postgres(url)


async def test_a_deadlock_is_a_transaction_conflict_not_an_outage() -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts one of them.
    The loser is told its transaction conflicted (retryable, nothing stored) — not that
    the database is unavailable — and the winner commits."""
    url = fresh_postgres_url()
    engine = create_db_engine(url)
    db = Database(engine)
    first_locked, second_locked = threading.Event(), threading.Event()
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE pair (id int PRIMARY KEY, n int)"))
            conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))

        def lock(first: int, second: int, mine: threading.Event, theirs: threading.Event) -> None:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
                conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": first})
                mine.set()
                assert theirs.wait(30)
                conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": second})

        outcomes = await asyncio.gather(
            db.run(lock, 1, 2, first_locked, second_locked),
            db.run(lock, 2, 1, second_locked, first_locked),
            return_exceptions=True,
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(failed) == 1, outcomes
        (error,) = failed
        assert isinstance(error, UnavailableError)
        assert error.reason == "TRANSACTION_CONFLICT"
        assert 0 < error.retry_after <= 1
        with engine.connect() as conn:  # the winner's two updates, none of the loser's
            assert conn.execute(text("SELECT sum(n) FROM pair")).scalar_one() == 2
    finally:
        db.close()
        engine.dispose()
        drop_postgres(url)
