"""Filters on a field with a closed set of values (a job's status) compile to indexed INs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from qpi.server.domain.listing import Condition, FieldRef, Value
from qpi.server.store.job_listing import JOB_FIELDS, JOB_STATES
from qpi.server.store.listing import compile_filter

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _sql(op: str, value: str, *, postgres: bool) -> str:
    clause = compile_filter(
        Condition(FieldRef("status"), op, Value(value)), JOB_FIELDS, postgres=postgres, now=NOW
    )
    assert clause is not None
    dialect = postgresql.dialect() if postgres else sqlite.dialect()
    return str(clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("postgres", [False, True])
def test_not_equal_on_a_state_becomes_in_over_the_other_states(postgres: bool) -> None:
    sql = _sql("!=", "failed", postgres=postgres)
    # An IN over the index's leading values: a count reads the index, not the rows.
    assert " IN (" in sql
    assert "!=" not in sql
    assert "<>" not in sql
    for state in JOB_STATES:
        assert (f"'{state}'" in sql) is (state != "failed")


@pytest.mark.parametrize("postgres", [False, True])
def test_not_equal_on_an_unknown_state_matches_every_job(postgres: bool) -> None:
    # No job holds it, so every job differs from it: no IN, no scan of the states.
    sql = _sql("!=", "no-such-state", postgres=postgres)
    assert " IN (" not in sql
    assert "state" not in sql
