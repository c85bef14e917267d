"""PostgreSQL keeps its prepared statements across read transactions, and a transaction
that wrote is still rolled back (never committed in its place), on a real server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from qpi.server.store.base import autocommit_reads
from qpi.server.store.database import create_db_engine, migrate
from qpi.server.store.postgres_plans import nothing_to_undo
from qpi.server.store.prepared import Prepared
from qpi.server.store.tables import USERS
from tests.support.harness import drop_postgres, fresh_postgres_url

NOW = datetime(2030, 1, 1, tzinfo=UTC)
_EMAIL = Prepared(select(USERS.c.email).where(USERS.c.id == bindparam("id")))
_SET_NAME = Prepared(USERS.update().where(USERS.c.id == bindparam("id")).values(name="changed"))


@pytest.fixture
def engine() -> Iterator[Engine]:
    url = fresh_postgres_url()
    # Used from one thread at a time, the pool hands out the same connection each time.
    engine = create_db_engine(url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(
                USERS.insert().values(
                    id="u1",
                    email="a@example.com",
                    name="a",
                    password_hash="",
                    is_superuser=False,
                    qpu_seconds=1.0,
                    created=NOW,
                    updated=NOW,
                )
            )
        yield engine
    finally:
        engine.dispose()
        drop_postgres(url)


def _prepared_here(engine: Engine) -> int:
    """Statements prepared in the pooled connection's server session."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one())


def _session_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.parametrize("how", ["connection", "prepared", "session", "autocommit"])
def test_reads_leave_statements_prepared(engine: Engine, how: str) -> None:
    # Autocommit reads use the engine's companion pool (store.database.autocommit_engine).
    pooled = autocommit_reads(engine) if how == "autocommit" else engine
    pid = _session_pid(pooled)
    for _ in range(8):  # past psycopg's prepare_threshold (5)
        if how == "connection":  # a transaction SQLAlchemy began, rolled back on close
            with engine.connect() as conn:
                conn.execute(select(USERS.c.email).where(USERS.c.id == "u1")).one()
        elif how == "prepared":  # statements SQLAlchemy never saw, reset by the pool
            with engine.connect() as conn:
                assert _EMAIL.scalar(conn, {"id": "u1"}) == "a@example.com"
        elif how == "session":
            with Session(engine) as session:
                session.exec(select(USERS.c.email)).all()  # type: ignore[call-overload]
        else:
            with autocommit_reads(engine).connect() as conn:
                assert _EMAIL.scalar(conn, {"id": "u1"}) == "a@example.com"
    assert _session_pid(pooled) == pid  # the same server session throughout
    assert _prepared_here(pooled) >= 1  # a ROLLBACK would have deallocated them all


class _UseCaseFailed(Exception):
    pass


def _write_then_fail(engine: Engine, write: Callable[[Connection], object]) -> None:
    """Runs `write` in a transaction that then fails, as a use case failing after its
    write would."""
    with contextlib.suppress(_UseCaseFailed), engine.connect() as conn:
        write(conn)
        raise _UseCaseFailed


def test_a_failed_write_is_rolled_back_not_committed(engine: Engine) -> None:
    for _ in range(6):
        with engine.connect() as conn:
            _EMAIL.scalar(conn, {"id": "u1"})
    # unseen by SQLAlchemy's events
    _write_then_fail(engine, lambda conn: _SET_NAME.write(conn, {"id": "u1"}))
    _write_then_fail(
        engine,
        lambda conn: conn.execute(
            USERS.update().where(USERS.c.id == "u1").values(name="also changed")
        ),
    )
    with engine.connect() as conn:
        assert conn.execute(select(USERS.c.name)).scalar_one() == "a"


def test_a_failed_notification_is_not_sent(engine: Engine) -> None:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN qpi")
        # A SELECT, but its notification goes out only if the transaction commits.
        _write_then_fail(engine, lambda conn: conn.execute(text("SELECT pg_notify('qpi', 'x')")))
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('qpi', 'after')"))
        first = next(listener.notifies(timeout=30, stop_after=1))
    assert first.payload == "after"


def test_a_failed_statement_still_rolls_back(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(Exception, match="no_such_table"):
        conn.execute(text("SELECT * FROM no_such_table"))
    with engine.connect() as conn:  # the connection is usable again
        assert _EMAIL.scalar(conn, {"id": "u1"}) == "a@example.com"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT 1", True),
        ("  select id FROM jobs FOR UPDATE SKIP LOCKED", True),
        ("SET LOCAL statement_timeout = 100", True),
        ("SELECT pg_notify('c', 'x')", False),
        ("UPDATE jobs SET state = 'x'", False),
        ("WITH gone AS (DELETE FROM jobs RETURNING id) SELECT id FROM gone", False),
        ("SET statement_timeout = 100", False),  # outlives a COMMIT, not a ROLLBACK
        ("SAVEPOINT sp", False),
    ],
)
def test_what_counts_as_nothing_to_undo(statement: str, expected: bool) -> None:
    assert nothing_to_undo(statement) is expected
