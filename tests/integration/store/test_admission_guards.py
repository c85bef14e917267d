"""The owner's admission rules as SQL conditions agree with the domain's, case by case.

`qpi.server.store.admission_guards` restates three domain rules in SQL so a submit can be
stored by one guarded insert. Each case here is evaluated by the selected store and by
the domain function; a rule changed on one side only fails the table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Float, Integer, literal, select
from sqlalchemy.engine import Connection

from qpi.server.domain import accounting
from qpi.server.domain import jobs as rules
from qpi.server.domain.errors import ResourceExhaustedError
from qpi.server.store import admission_guards as guards
from qpi.server.store.database import create_db_engine
from tests.support.harness import drop_postgres, fresh_postgres_url, selected_database_kind

BALANCES = (-5.0, 0.0, 1e-9, 2.5, 5.0, 10.0)
RESERVED = (0.0, 2.5, 5.0, 7.5)
ESTIMATES = (0.0, 2.5, 2.5000001, 5.0, 12.0)
COUNTS = (0, 1, 2, 3)
FLAGS = (False, True)


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connection]:
    """A connection to the selected kind of store (the expressions need no tables)."""
    path: Path = tmp_path_factory.mktemp("guards") / "g.db"
    postgres = selected_database_kind() == "postgres"
    url = fresh_postgres_url() if postgres else f"sqlite:///{path}"
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
        if postgres:
            drop_postgres(url)


def _evaluated(conn: Connection, conditions: list[Any]) -> list[bool]:
    """Every condition's value, computed by the store in one statement."""
    row = conn.execute(select(*conditions)).one()
    return [bool(value) for value in row]


def _float(value: float) -> Any:
    return literal(value, Float)


def _flag(value: bool) -> Any:
    return literal(value, Boolean)


def _passes(check: Any) -> bool:
    try:
        check()
    except ResourceExhaustedError:
        return False
    return True


def test_may_submit_is_ensure_can_submit(conn: Connection) -> None:
    cases = list(itertools.product(BALANCES, FLAGS))
    sql = _evaluated(conn, [guards.may_submit(_float(b), _flag(s)) for b, s in cases])
    domain = [_passes(lambda b=b, s=s: rules.ensure_can_submit(b, s)) for b, s in cases]
    assert sql == domain
    assert set(sql) == {True, False}  # the table reaches both outcomes


def test_may_queue_is_ensure_can_queue_where_a_cap_is_set(conn: Connection) -> None:
    cases = list(itertools.product(COUNTS, COUNTS, FLAGS))
    sql = _evaluated(
        conn,
        [guards.may_queue(literal(p, Integer), literal(c, Integer), _flag(s)) for p, c, s in cases],
    )
    # No cap (0): the use case does not ask the rule at all.
    domain = [
        c == 0 or _passes(lambda p=p, c=c, s=s: accounting.ensure_can_queue(p, c, s))
        for p, c, s in cases
    ]
    assert sql == domain
    assert set(sql) == {True, False}


def test_may_reserve_is_can_reserve(conn: Connection) -> None:
    cases = list(itertools.product(BALANCES, RESERVED, ESTIMATES, FLAGS))
    sql = _evaluated(
        conn,
        [guards.may_reserve(_float(b), _float(r), _float(e), _flag(s)) for b, r, e, s in cases],
    )
    domain = [accounting.can_reserve(b, r, e, s) for b, r, e, s in cases]
    assert sql == domain
    assert set(sql) == {True, False}
