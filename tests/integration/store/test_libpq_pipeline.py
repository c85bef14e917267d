"""Statements sent in one libpq pipeline (PostgreSQL): what they return, how they fail,
and how their server-side prepared statements survive psycopg's own housekeeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import errors
from psycopg.pq import TransactionStatus
from psycopg.types.json import Json

from qpi.server.store import libpq_pipeline
from qpi.server.store.libpq_pipeline import StatementFailed, run
from tests.support.harness import PG_ADMIN_URL, drop_postgres, fresh_postgres_url

_INSERT = (
    b"INSERT INTO t (id, name, at, doc, flag, raw, ratio) VALUES "
    b"($1::INTEGER, $2::VARCHAR, $3::TIMESTAMP, $4::JSON, $5::BOOLEAN, $6::BYTEA, "
    b"$7::FLOAT) RETURNING id, name, at, doc, flag, raw, ratio"
)
_NAME_OF = b"SELECT name FROM t WHERE id = $1::INTEGER"
_COUNT = b"SELECT count(*) FROM t"
_OTHERS = [
    "SELECT id FROM t WHERE id = %s",
    "SELECT name FROM t WHERE id = %s",
    "SELECT at FROM t WHERE id = %s",
    "SELECT flag FROM t WHERE id = %s",
]
_OURS = "SELECT count(*) FROM pg_prepared_statements WHERE starts_with(name, '_qpi_')"


@pytest.fixture
def conn() -> Iterator[psycopg.Connection[Any]]:
    url = fresh_postgres_url()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE t (id integer PRIMARY KEY, name varchar, at timestamp, "
                "doc json, flag boolean, raw bytea, ratio float)"
            )
            yield connection
    finally:
        drop_postgres(url)


def _ours(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(_OURS, prepare=False).fetchone()
    assert row is not None
    return int(row[0])


def _status(conn: psycopg.Connection[Any]) -> TransactionStatus:
    return conn.info.transaction_status


def _insert(conn: psycopg.Connection[Any], key: int, name: str = "a") -> None:
    run(conn, [(_INSERT, (key, name, None, None, None, None, None))])


def test_values_of_every_column_type_come_back_as_sent(conn: psycopg.Connection[Any]) -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 678901)
    values = (1, "ünï", at, Json({"a": [1, None]}), True, b"\x00\xff", 0.25)
    (inserted,) = run(conn, [(_INSERT, values)])
    assert inserted.rows == [(1, "ünï", at, {"a": [1, None]}, True, b"\x00\xff", 0.25)]
    assert inserted.rowcount == 1
    assert len(inserted.column_types) == 7
    (nulls,) = run(conn, [(_INSERT, (2, None, None, None, None, None, None))])
    assert nulls.rows == [(2, None, None, None, None, None, None)]


def test_several_statements_answer_in_order(conn: psycopg.Connection[Any]) -> None:
    _insert(conn, 1, "one")
    _insert(conn, 2, "two")
    found = run(conn, [(_NAME_OF, (2,)), (_COUNT, ()), (_NAME_OF, (3,)), (_NAME_OF, (1,))])
    assert [outcome.rows for outcome in found] == [[("two",)], [(2,)], [], [("one",)]]


def test_begin_and_commit_travel_with_the_statements(conn: psycopg.Connection[Any]) -> None:
    run(conn, [(_INSERT, (1, "a", None, None, None, None, None))], begin=b"BEGIN")
    assert _status(conn) == TransactionStatus.INTRANS
    with psycopg.connect(conn.info.dsn, autocommit=True) as other:  # not yet visible
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)
    run(conn, [(_INSERT, (2, "b", None, None, None, None, None))], commit=True)
    assert _status(conn) == TransactionStatus.IDLE
    with psycopg.connect(conn.info.dsn, autocommit=True) as other:
        assert other.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_a_failed_statement_stops_the_rest_and_names_itself(
    conn: psycopg.Connection[Any],
) -> None:
    _insert(conn, 1)
    duplicate = (_INSERT, (1, "again", None, None, None, None, None))
    later = (_INSERT, (2, "later", None, None, None, None, None))
    with pytest.raises(StatementFailed) as raised:
        run(conn, [(_COUNT, ()), duplicate, later], begin=b"BEGIN", commit=True)
    assert raised.value.index == 1
    assert isinstance(raised.value.error, errors.UniqueViolation)
    assert _status(conn) == TransactionStatus.INERROR  # left to roll back
    conn.rollback()
    assert [o.rows for o in run(conn, [(_COUNT, ())])] == [[(1,)]]  # "later" never ran


def test_a_value_that_cannot_be_sent_leaves_the_connection_usable(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.DataError):
        run(conn, [(_COUNT, ()), (_NAME_OF, ("x\x00y",))])
    assert not conn.pgconn.pipeline_status
    assert [o.rows for o in run(conn, [(_COUNT, ())])] == [[(0,)]]


def test_statements_are_prepared_once_per_session(conn: psycopg.Connection[Any]) -> None:
    for key in range(5):
        run(conn, [(_NAME_OF, (key,)), (_COUNT, ())])
    assert _ours(conn) == 2


def test_a_rollback_that_deallocates_everything_is_survived(
    conn: psycopg.Connection[Any],
) -> None:
    _insert(conn, 1)
    conn.autocommit = False
    for _ in range(6):  # psycopg prepares a statement of its own (threshold 5)
        conn.execute("SELECT id FROM t WHERE id = %s", (1,))
    assert run(conn, [(_NAME_OF, (1,))])[0].rows == [("a",)]
    conn.rollback()  # psycopg: ROLLBACK, then DEALLOCATE ALL (its statements and ours)
    assert _ours(conn) == 0
    assert run(conn, [(_NAME_OF, (1,))])[0].rows == [("a",)]  # prepared again
    assert _ours(conn) == 1


def test_statements_evicted_by_psycopg_are_prepared_again(
    conn: psycopg.Connection[Any],
) -> None:
    _insert(conn, 1)
    conn.prepared_max = 2
    assert run(conn, [(_NAME_OF, (1,))])[0].rows == [("a",)]
    for query in _OTHERS:  # psycopg's own, evicting the least recently used
        conn.execute(query, (1,), prepare=True)
    assert _ours(conn) == 0
    assert run(conn, [(_NAME_OF, (1,))])[0].rows == [("a",)]


def test_the_begin_is_the_one_psycopg_would_send(conn: psycopg.Connection[Any]) -> None:
    assert libpq_pipeline.begin_command(conn) is None  # autocommit
    conn.autocommit = False
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    command = libpq_pipeline.begin_command(conn)
    assert command == b"BEGIN ISOLATION LEVEL REPEATABLE READ"
    run(conn, [(_COUNT, ())], begin=command)
    assert _status(conn) == TransactionStatus.INTRANS
    assert libpq_pipeline.begin_command(conn) is None  # already in a transaction
    row = conn.execute("SHOW transaction_isolation").fetchone()
    assert row == ("repeatable read",)


def test_a_lost_connection_raises_an_operational_error(conn: psycopg.Connection[Any]) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        run(conn, [(_COUNT, ())])
    assert conn.closed or conn.broken
