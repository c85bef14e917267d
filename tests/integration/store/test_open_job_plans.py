"""The hot path's queue and reservation reads never walk a QPU's or a user's history.

On PostgreSQL they use the partial indexes of open jobs even before the table was ever
analysed: its planner was seen to filter every finished job of the QPU through a history
index instead, on each submit. SQLite, which keeps no statistics unless asked, searches an
index by the state as well as the QPU or user (or a partial index)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine

from qpi.server.store import jobs
from qpi.server.store.prepared import Prepared
from tests.integration.store.jobs_database import add_jobs, jobs_database
from tests.support.harness import fresh_postgres_url

HISTORY = 300
"""Finished jobs of one user on one QPU: enough that a plan filtering them would show."""


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = fresh_postgres_url() if request.param == "postgres" else f"sqlite:///{tmp_path}/q.db"
    with jobs_database(url) as engine:
        add_jobs(engine, HISTORY, state="completed")
        yield engine


def _plan(engine: Engine, prepared: Prepared, params: dict[str, object]) -> str:
    compiled = prepared._compiled(engine.dialect)
    arguments = compiled.arguments(params)
    explain = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            rows = conn.exec_driver_sql(explain + compiled.sql, arguments).all()
        else:  # the store's own $n placeholders, as its pipeline sends them
            dbapi_connection = conn.connection.dbapi_connection
            with psycopg.RawCursor(dbapi_connection) as cursor:  # type: ignore[arg-type]
                rows = cursor.execute(explain + compiled.sql, arguments).fetchall()
    return "\n".join(" ".join(str(cell) for cell in row) for row in rows)


def _assert_open_jobs_only(engine: Engine, plan: str) -> None:
    if engine.dialect.name == "postgresql":
        assert "ix_jobs_pending_qpu_created_id" in plan, plan
        assert "ix_jobs_running_user" in plan, plan
        return
    searches = [
        line for line in plan.splitlines() if "SEARCH jobs" in line or "SEARCH running_jobs" in line
    ]
    assert len(searches) == 2, plan
    for line in searches:
        assert "state=?" in line or "ix_jobs_pending" in line or "ix_jobs_running" in line, plan


def test_a_submits_direct_lease_check_reads_only_open_jobs(engine: Engine) -> None:
    plan = _plan(engine, jobs._LEASABLE, {"qpu_id": "q1", "user_id": "u1"})
    _assert_open_jobs_only(engine, plan)


def test_a_dispatch_rounds_oldest_pending_job_reads_only_open_jobs(engine: Engine) -> None:
    plan = _plan(engine, jobs._OLDEST, {"qpu_id": "q1"})
    _assert_open_jobs_only(engine, plan)
