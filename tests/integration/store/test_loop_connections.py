"""Transactions the event loop sends itself on PostgreSQL (store/loop_connections.py):
one round trip each, never waiting for a connection, and never reusing one whose state
is unknown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Engine

from qpi.server.store.database import create_db_engine
from qpi.server.store.loop_connections import APPLICATION_NAME, BUSY, LoopConnections
from qpi.server.store.notify import conninfo
from qpi.server.store.prepared import Prepared
from qpi.server.store.tables import USERS
from tests.support.harness import drop_postgres, fresh_postgres_url, migrated_engine

U = USERS.c
_ADD = Prepared(
    insert(USERS)
    .values(
        id=bindparam("id"),
        email=bindparam("email"),
        name="",
        password_hash="x",
        is_superuser=False,
        qpu_seconds=1.0,
        created=bindparam("at"),
        updated=bindparam("at"),
    )
    .returning(U.id)
)
_LOCK = Prepared(select(U.id).where(U.id == bindparam("id")).with_for_update())
_COUNT = Prepared(select(U.id).order_by(U.id))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine("postgres", tmp_path) as engine:
        yield engine


def _stock(engine: Engine, size: int = 2) -> LoopConnections:
    return LoopConnections(conninfo(engine), engine.dialect, size=size)


def _add(user_id: str) -> tuple[Prepared, dict[str, Any]]:
    from datetime import UTC, datetime

    at = datetime(2030, 1, 1, tzinfo=UTC)
    return _ADD, {"id": user_id, "email": f"{user_id}@example.com", "at": at}


def _ours(engine: Engine) -> list[int]:
    """The backend pids of the stock's connections, from the server's side."""
    with psycopg.connect(conninfo(engine), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
            (APPLICATION_NAME,),
        ).fetchall()
    return [row[0] for row in rows]


async def test_a_transaction_is_committed_and_its_connection_serves_again(
    engine: Engine,
) -> None:
    stock = _stock(engine)
    try:
        first = await stock.transaction([_add("u1"), (_COUNT, {})])
        assert first == [[("u1",)], [("u1",)]]
        second = await stock.transaction([_add("u2"), (_COUNT, {})])
        assert second == [[("u2",)], [("u1",), ("u2",)]]
        assert len(_ours(engine)) == 1  # one connection did both
    finally:
        await stock.close()
    assert _ours(engine) == []


async def test_no_free_connection_is_busy_at_once_with_nothing_sent(engine: Engine) -> None:
    stock = _stock(engine, size=1)
    await stock.transaction([_add("u1")])
    with psycopg.connect(conninfo(engine)) as holder:
        holder.execute("SELECT id FROM users WHERE id = 'u1' FOR UPDATE")
        waiting = asyncio.ensure_future(stock.transaction([(_LOCK, {"id": "u1"})]))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # it waits for the row lock, holding the connection
        assert await stock.transaction([_add("u2")]) is BUSY
        holder.commit()
    assert await waiting == [[("u1",)]]
    assert await stock.transaction([(_COUNT, {})]) == [[("u1",)]]  # u2 was never sent
    await stock.close()


async def test_a_failed_statement_rolls_back_its_transaction_and_keeps_the_connection(
    engine: Engine,
) -> None:
    stock = _stock(engine)
    await stock.transaction([_add("u1")])
    with pytest.raises(psycopg.errors.UniqueViolation):
        await stock.transaction([_add("u2"), _add("u1")])
    assert await stock.transaction([(_COUNT, {})]) == [[("u1",)]]  # u2 rolled back
    assert len(_ours(engine)) == 1
    await stock.close()


async def test_a_connection_the_server_ended_while_idle_is_replaced_unnoticed(
    engine: Engine,
) -> None:
    stock = _stock(engine)
    await stock.transaction([_add("u1")])
    (ended,) = _ours(engine)
    with psycopg.connect(conninfo(engine), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
    # The termination reaches the client before its next use (checked, not awaited).
    for _ in range(50):
        if ended not in _ours(engine):
            break
        await asyncio.sleep(0.05)
    assert await stock.transaction([_add("u2")]) == [[("u2",)]]
    (fresh,) = _ours(engine)
    assert fresh != ended
    await stock.close()


async def test_a_transaction_interrupted_mid_pipeline_never_returns_its_connection(
    engine: Engine,
) -> None:
    stock = _stock(engine, size=1)
    await stock.transaction([_add("u1")])
    (used,) = _ours(engine)
    with psycopg.connect(conninfo(engine)) as holder:
        holder.execute("SELECT id FROM users WHERE id = 'u1' FOR UPDATE")
        waiting = asyncio.ensure_future(stock.transaction([(_LOCK, {"id": "u1"}), _add("u2")]))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        holder.commit()
    # Its state was unknown: a new connection serves, and u2 went nowhere.
    assert await stock.transaction([(_COUNT, {})]) == [[("u1",)]]
    assert used not in _ours(engine)
    await stock.close()


async def test_an_unreachable_database_is_busy_not_an_error() -> None:
    url = fresh_postgres_url()
    drop_postgres(url)  # the database no longer exists: every connection is refused
    engine = create_db_engine(url)
    stock = LoopConnections(conninfo(engine), engine.dialect, size=2)
    try:
        assert await stock.transaction([(_COUNT, {})]) is BUSY
        assert await stock.transaction([(_COUNT, {})]) is BUSY  # no new attempt yet
    finally:
        await stock.close()
        engine.dispose()
