"""The PostgreSQL engine's autocommit companion: a pool of its own whose connections stay
in autocommit mode, disposed of with the engine."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from qpi.server.store.database import autocommit_engine, create_db_engine
from tests.support.harness import PG_ADMIN_URL, drop_postgres, fresh_postgres_url
from tests.support.processes import wait_until


@pytest.fixture
def url() -> Iterator[str]:
    url = fresh_postgres_url()
    try:
        yield url
    finally:
        drop_postgres(url)


def _backends(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        found = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    assert found is not None
    return int(found[0])


def _in_transaction_block(engine: Engine) -> bool:
    """Whether a statement on `engine` runs inside a transaction block (psycopg's own
    autocommit flag, and what the server says)."""
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        conn.execute(text("SELECT 1"))
        return bool(dbapi.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def test_the_companion_keeps_its_connections_in_autocommit_mode(url: str) -> None:
    engine = create_db_engine(url)
    companion = autocommit_engine(engine)
    try:
        assert companion is not engine
        assert autocommit_engine(engine) is companion  # one per engine
        seen = set()
        for _ in range(3):
            assert not _in_transaction_block(companion)
            with companion.connect() as conn:
                seen.add(id(conn.connection.dbapi_connection))
        assert len(seen) == 1  # pooled, not reconnected
        assert _in_transaction_block(engine)  # the engine's own transactions are untouched
        with engine.connect() as conn:  # and its pool is not the companion's
            assert id(conn.connection.dbapi_connection) not in seen
    finally:
        engine.dispose()


def test_disposing_of_the_engine_closes_the_companions_connections(url: str) -> None:
    engine = create_db_engine(url)
    with engine.connect() as first, autocommit_engine(engine).connect() as second:
        first.execute(text("SELECT 1"))
        second.execute(text("SELECT 1"))
    assert _backends(url) == 2
    engine.dispose()
    # A backend leaves pg_stat_activity a moment after its client closed the socket.
    wait_until(lambda: _backends(url) == 0, 10, "the companion's connections closed")


def test_other_engines_get_an_autocommit_option(url: str) -> None:
    plain = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert not _in_transaction_block(autocommit_engine(plain))
        assert _in_transaction_block(plain)
    finally:
        plain.dispose()
