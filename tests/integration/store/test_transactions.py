"""Write transactions whose BEGIN and COMMIT travel with their statements: whatever way
their statements are issued, they form one transaction that commits or rolls back whole
(each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from qpi.server.store.base import autocommit_reads
from qpi.server.store.database import create_db_engine
from qpi.server.store.prepared import Prepared, rows_together
from qpi.server.store.transactions import TransactionEnded, write_transaction
from tests.support.harness import drop_postgres, fresh_postgres_url

_METADATA = MetaData()
_SCRATCH = Table(
    "scratch", _METADATA, Column("id", Integer, primary_key=True), Column("note", String(20))
)
_WRITE = Prepared(insert(_SCRATCH))
_READ = Prepared(select(_SCRATCH.c.id).where(_SCRATCH.c.id == 1))
_TRANSACTION_ID = Prepared(select(func.txid_current()))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = fresh_postgres_url() if request.param == "postgres" else f"sqlite:///{tmp_path / 't.db'}"
    engine = create_db_engine(url)
    try:
        _METADATA.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        if request.param == "postgres":
            drop_postgres(url)


def _transaction(engine: Engine) -> AbstractContextManager[Connection]:
    return write_transaction(engine, autocommit_reads(engine))


def _stored(engine: Engine) -> list[int]:
    """The rows another connection sees (those committed)."""
    with engine.connect() as other:
        return sorted(other.execute(select(_SCRATCH.c.id)).scalars())


def _pipelined(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _write_then_fail(engine: Engine, *, core_first: bool) -> None:
    with _transaction(engine) as conn:
        if core_first:
            conn.execute(insert(_SCRATCH), {"id": 1, "note": "core"})
        else:
            _READ.rows(conn)  # the BEGIN travels with the first statement
            _WRITE.write(conn, {"id": 1, "note": "a"})
        _WRITE.write(conn, {"id": 2, "note": "b"})
        raise RuntimeError("the use case failed")


def test_a_block_that_raises_leaves_none_of_its_writes(engine: Engine) -> None:
    with pytest.raises(RuntimeError):
        _write_then_fail(engine, core_first=False)
    assert _stored(engine) == []


def test_a_statement_sqlalchemy_runs_first_runs_inside_the_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError):
        _write_then_fail(engine, core_first=True)
    assert _stored(engine) == []


def test_the_last_statement_carries_the_commit(engine: Engine) -> None:
    with _transaction(engine) as conn:
        _WRITE.write(conn, {"id": 1, "note": "a"})
        _WRITE.write(conn, {"id": 2, "note": "b"}, commit=True)
        # PostgreSQL: committed with that statement; SQLite: when the block ends.
        assert _stored(engine) == ([1, 2] if _pipelined(engine) else [])
        if _pipelined(engine):
            with pytest.raises(TransactionEnded):
                _READ.rows(conn)
    assert _stored(engine) == [1, 2]


def test_a_transaction_of_one_statement_commits(engine: Engine) -> None:
    with _transaction(engine) as conn:
        assert _WRITE.write(conn, {"id": 1, "note": "a"}, commit=True) == 1
    assert _stored(engine) == [1]


def _write_twice(engine: Engine, first: dict[str, object], last: dict[str, object]) -> None:
    with _transaction(engine) as conn:
        _WRITE.write(conn, first)
        _WRITE.write(conn, last, commit=True)


def test_a_failing_last_statement_rolls_back_the_earlier_ones(engine: Engine) -> None:
    with _transaction(engine) as conn:
        _WRITE.write(conn, {"id": 1, "note": "kept"}, commit=True)
    with pytest.raises(IntegrityError):
        _write_twice(engine, {"id": 2, "note": "undone"}, {"id": 1, "note": "taken"})
    assert _stored(engine) == [1]
    # The pooled connection serves the next transaction as usual.
    with _transaction(engine) as conn:
        assert rows_together(conn, [(_READ, {}), (_READ, {})]) == [[(1,)], [(1,)]]
        _WRITE.write(conn, {"id": 3, "note": "after"}, commit=True)
    assert _stored(engine) == [1, 3]


@pytest.fixture
def postgres() -> Iterator[Engine]:
    url = fresh_postgres_url()
    engine = create_db_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_postgres(url)


def test_statements_sent_with_the_begin_share_one_transaction(postgres: Engine) -> None:
    """PostgreSQL (SQLite has no transaction ids, and its block is SQLAlchemy's own)."""
    engine = postgres
    _METADATA.create_all(engine)
    with _transaction(engine) as conn:
        first, second = rows_together(conn, [(_TRANSACTION_ID, {}), (_TRANSACTION_ID, {})])
        alone = _TRANSACTION_ID.rows(conn)
        _WRITE.write(conn, {"id": 1, "note": "a"}, commit=True)
    # Outside a transaction block each statement would run in a transaction of its own.
    assert first == second == alone
    with autocommit_reads(engine).connect() as conn:
        assert _TRANSACTION_ID.rows(conn) != first
