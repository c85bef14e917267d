"""The hot path's queue and reservation reads never walk a QPU's or a user's history.

On PostgreSQL they use the partial indexes of open jobs even before the table was ever
analysed: its planner was seen to filter every finished job of the QPU through a history
index instead, on each submit. SQLite, which keeps no statistics unless asked, searches an
index by the state as well as the QPU or user (or a partial index)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine

from qpi.server.store import jobs
from qpi.server.store.admission_guards import qpu_params
from qpi.server.store.planner_statistics import analyse_unanalysed
from qpi.server.store.prepared import Prepared
from qpi.server.store.tables import QPUS
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


def _generic_plan(engine: Engine, prepared: Prepared, params: dict[str, object]) -> str:
    """The plan a statement runs with in a guarded submit: on PostgreSQL its generic plan
    (the submit asks for generic plans, admission_guards.GENERIC_PLANS)."""
    if engine.dialect.name != "postgresql":
        return _plan(engine, prepared, params)
    compiled = prepared._compiled(engine.dialect)
    arguments = compiled.arguments(params)
    placeholders = ", ".join(["%s"] * len(arguments))
    with engine.connect() as conn:
        dbapi_connection = conn.connection.dbapi_connection
        # The values as literals (a client-side cursor): EXECUTE gives them the types the
        # prepared statement inferred.
        with psycopg.ClientCursor(dbapi_connection) as cursor:  # type: ignore[arg-type]
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE guarded AS {compiled.sql}".replace("%", "%%"))
            rows = cursor.execute(f"EXPLAIN EXECUTE guarded({placeholders})", arguments).fetchall()
            cursor.execute("DEALLOCATE guarded")
        conn.rollback()
    return "\n".join(" ".join(str(cell) for cell in row) for row in rows)


@pytest.mark.parametrize("leased", [False, True])
def test_a_guarded_submit_reads_open_jobs_and_keys_only(engine: Engine, leased: bool) -> None:
    """The one-round-trip submit's conditions (admission_guards), as PostgreSQL runs them
    once the leader analysed the table (planner_statistics): key lookups, the capped
    count of the owner's pending jobs, and for a leased job the QPU's queue and the
    owner's running jobs, each by its own index."""
    analyse_unanalysed(engine, min_rows=1)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    values = {c.name: None for c in jobs._JOB_COLUMNS} | {
        "id": "new", "user_id": "u1", "qpu_id": "q1", "payload_json": "{}", "state": "pending",
        "attempt": 0, "charged_seconds": 0.0, "estimated_seconds": 1.0, "created": at,
        "updated": at, "qpu_name": "qpu", "lease_session": "s", "lease_expires_at": at,
    }  # fmt: skip
    qpu = qpu_params([None] * len(QPUS.c)) | {"qpu_id": "q1", "qpu_name": "qpu"}
    statement = jobs._GUARDED_LEASED_INSERT if leased else jobs._GUARDED_INSERT
    plan = _generic_plan(engine, statement, values | {"cap": 10} | qpu)
    if engine.dialect.name == "postgresql":
        assert "Seq Scan" not in plan, plan
        used = set(re.findall(r" using (\w+) on ", plan))
        expected = {"users_pkey", "ix_jobs_user_state_qpu_created"}  # with the capped count
        if leased:
            expected |= {"ix_jobs_pending_qpu_created_id", "ix_jobs_running_user"}
        assert used - {"qpus_pkey", "qpus_name_key"} == expected, plan
        return
    assert "SCAN jobs" not in plan, plan
    searches = [line for line in plan.splitlines() if "SEARCH" in line and "qpus" not in line]
    assert len(searches) == (5 if leased else 2), plan  # users, then the jobs reads
    for line in searches[1:] if not leased else searches:
        assert "state=?" in line or "users" in line, plan
