"""Prepared statements read and write exactly what ``Connection.execute`` would, and fail
the same way, on both stores (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from qpi.server.store import jobs as job_statements
from qpi.server.store import prepared
from qpi.server.store.database import create_db_engine, is_outage, migrate
from qpi.server.store.jobs import NewJob
from qpi.server.store.prepared import Prepared
from qpi.server.store.repositories import sql_repositories
from qpi.server.store.tables import JOBS, TIME_SLOTS
from tests.support.harness import PG_ADMIN_URL, drop_postgres, fresh_postgres_url, migrated_engine

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path) as engine:
        yield engine


def _job(engine: Engine) -> str:
    repos = sql_repositories(engine)
    user = repos.accounts.insert_user("a@example.com", "", "hash", 10.0).id
    qpu, _ = repos.qpus.insert_qpu(
        "q1", enabled=True, num_qubits=5, coupling_map=[], native_gates=[], driver=None
    )
    # Microseconds of zero: SQLite's stored text must still compare as SQLAlchemy writes it.
    stored = repos.jobs.insert(
        user, "req-1", NOW, lambda owner, pending, named: NewJob(qpu.id, '{"circuits": []}', 1.5)
    )
    assert stored is not None
    return stored[0].id


def test_rows_carry_the_same_values_and_types_as_core(engine: Engine) -> None:
    job_id = _job(engine)
    with engine.connect() as conn:
        core = conn.execute(job_statements._GET_JOB.statement, {"id": job_id}).first()
        prepared = job_statements._GET_JOB.first(conn, {"id": job_id})
    assert core is not None
    assert prepared is not None
    assert tuple(core) == prepared
    assert [type(v) for v in core] == [type(v) for v in prepared]
    created = prepared[[c.name for c in job_statements._JOB_COLUMNS].index("created")]
    assert created == NOW
    assert created.tzinfo is UTC


def test_datetime_binds_compare_like_core(engine: Engine) -> None:
    """A datetime column matches the same rows whichever way it is bound (on SQLite the
    comparison is between stored texts, so the bound text must be written alike)."""
    job_id = _job(engine)
    at = Prepared(select(JOBS.c.id).where(JOBS.c.created == bindparam("at")))
    with engine.connect() as conn:
        for moment, expected in ((NOW, [(job_id,)]), (NOW + timedelta(microseconds=1), [])):
            assert at.rows(conn, {"at": moment}) == expected
            assert [tuple(r) for r in conn.execute(at.statement, {"at": moment})] == expected


def test_literal_values_of_the_statement_are_bound(engine: Engine) -> None:
    _job(engine)
    with engine.connect() as conn:
        # _OLDEST_TWO carries state = 'pending' and LIMIT 2 itself.
        assert job_statements._OLDEST_TWO.rows(conn, {"qpu_id": ""}) == []
        assert job_statements._QPU_AND_SLOTS.rows(conn, {"now": NOW, "qpu_id": "x"}) == []


def test_a_write_reports_the_rows_it_matched(engine: Engine) -> None:
    _job(engine)
    touch = Prepared(JOBS.update().values(error=bindparam("text")))
    with engine.begin() as conn:
        assert touch.write(conn, {"text": "x"}) == 1


def test_constraint_violations_raise_what_core_raises(engine: Engine) -> None:
    job_id = _job(engine)
    with engine.connect() as conn:
        row = job_statements._GET_JOB.first(conn, {"id": job_id})
    assert row is not None
    values = dict(zip([c.name for c in job_statements._JOB_COLUMNS], row, strict=True))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        job_statements._INSERT_JOB.write(conn, values)


def test_a_missing_parameter_is_an_error_not_a_null(engine: Engine) -> None:
    with pytest.raises(KeyError), engine.connect() as conn:
        job_statements._GET_JOB.first(conn, {})


def _kept(conn: Connection) -> object:
    """What a connection keeps for prepared statements: SQLite, its one cursor; PostgreSQL,
    the names of the statements prepared in its server session."""
    if conn.dialect.name == "sqlite":
        return conn.connection.info[prepared._CURSOR]
    found = conn.exec_driver_sql(
        "SELECT name FROM pg_prepared_statements WHERE starts_with(name, '_qpi_') ORDER BY name"
    )
    return [row[0] for row in found]


def test_a_connection_prepares_once_and_reuses(engine: Engine) -> None:
    job_id = _job(engine)
    with engine.connect() as conn:
        job_statements._GET_JOB.first(conn, {"id": job_id})
        kept = _kept(conn)
        again = job_statements._GET_JOB.first(conn, {"id": job_id})
        assert _kept(conn) == kept
        assert kept  # a cursor, or the statement prepared on the server
    assert again is not None
    assert again[0] == job_id


def test_statements_serve_again_after_a_failed_statement(engine: Engine) -> None:
    job_id = _job(engine)
    with engine.begin() as conn:
        row = job_statements._GET_JOB.first(conn, {"id": job_id})
    assert row is not None
    values = dict(zip([c.name for c in job_statements._JOB_COLUMNS], row, strict=True))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        job_statements._INSERT_JOB.write(conn, values)
    # PostgreSQL: the ROLLBACK made psycopg deallocate every prepared statement of the
    # session, ours included; the next run prepares them again in the same write.
    with engine.begin() as conn:  # the pool's one connection, rolled back
        assert job_statements._GET_JOB.first(conn, {"id": job_id}) == row
        assert job_statements._GET_JOB.first(conn, {"id": job_id}) == row
        assert _kept(conn)


def test_statements_that_change_per_call_are_refused(engine: Engine) -> None:
    listed = Prepared(select(TIME_SLOTS.c.id).where(TIME_SLOTS.c.id.in_(["a", "b"])))
    with pytest.raises(ValueError, match="expanding"), engine.connect() as conn:
        listed.rows(conn)


def test_statements_sent_together_return_what_each_returns_alone(engine: Engine) -> None:
    job_id = _job(engine)
    user_id = _user_of(engine, job_id)
    steps: list[tuple[Prepared, dict[str, object]]] = [
        (job_statements._OWNER_LOCKED, {"id": user_id}),
        (job_statements._BY_REQUEST_ID, {"user_id": user_id, "request_id": "req-1"}),
        (job_statements._PENDING_OF, {"user_id": user_id, "cap": 10}),
        (job_statements._GET_JOB, {"id": "missing"}),
    ]
    with engine.begin() as conn:
        together = prepared.rows_together(conn, steps)
        kept = _kept(conn)
    with engine.begin() as conn:
        alone = [statement.rows(conn, params) for statement, params in steps]
    assert together == alone
    assert together[1][0][0] == job_id  # converted like the rest: datetimes included
    created = [c.name for c in job_statements._JOB_COLUMNS].index("created")
    assert together[1][0][created] == NOW
    assert together[2] == [(1,)]
    assert together[3] == []
    if engine.dialect.name == "postgresql":  # each prepared in the server session
        assert isinstance(kept, list)
        assert len(kept) >= len(steps)


def test_a_failure_among_statements_sent_together_is_raised_as_core_would(
    engine: Engine,
) -> None:
    job_id = _job(engine)
    gone = Prepared(select(JOBS.c.id).select_from(text("no_such_table")))
    with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
        prepared.rows_together(
            conn, [(job_statements._GET_JOB, {"id": job_id}), (gone, {}), (gone, {})]
        )
    assert "no_such_table" in str(raised.value)
    assert not raised.value.connection_invalidated
    with engine.begin() as conn:  # the connection serves again after its rollback
        found = prepared.rows_together(
            conn,
            [(job_statements._GET_JOB, {"id": job_id}), (job_statements._GET_JOB, {"id": "x"})],
        )
    assert [len(rows) for rows in found] == [1, 0]


@pytest.fixture
def postgres() -> Iterator[Engine]:
    engine = create_db_engine(fresh_postgres_url())
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        drop_postgres(engine.url.render_as_string(hide_password=False))


def test_reads_sent_after_a_row_lock_see_what_its_holder_committed(postgres: Engine) -> None:
    """A submit sends the owner's row lock and its reads together: each read must take its
    snapshot once the lock is granted, so it sees the job of the submit that held it."""
    job_id = _job(postgres)
    user_id = _user_of(postgres, job_id)
    with postgres.connect() as holder:
        holder.begin()
        assert job_statements._OWNER_LOCKED.first(holder, {"id": user_id}) is not None
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_lock_then_count, postgres, user_id)
            _wait_for_a_lock_wait(postgres)
            _second_job(holder, job_id)
            holder.commit()
            counted = waiting.result(30)
    assert counted == 2  # the first job and the one committed under the lock


def test_a_result_whose_job_update_matches_nothing_charges_no_one(postgres: Engine) -> None:
    """PostgreSQL writes a result and its charge in one statement: the charge must follow
    the job's update, not happen beside it."""
    job_id = _job(postgres)
    user_id = _user_of(postgres, job_id)
    outcome = {
        "job_id": job_id,
        "lease_attempt": 1,
        "lease_driver": "d1",
        "new_state": "completed",
        "new_result": "{}",
        "new_error": None,
        "charged": 3.0,
        "now": NOW,
        "user_id": user_id,
        "balance": 7.0,
    }
    with postgres.begin() as conn:  # the job is pending: no lease matches
        assert job_statements._COMPLETE_AND_CHARGE.first(conn, outcome) is None
    with postgres.begin() as conn:
        job_statements._CLAIM.first(
            conn,
            {
                "job_id": job_id,
                "driver_id": "d1",
                "session_id": "s1",
                "now": NOW,
                "expires": NOW + timedelta(minutes=1),
            },
        )
        assert _balance(conn, user_id) == 10.0
        row = job_statements._COMPLETE_AND_CHARGE.first(conn, outcome)
        assert row is not None
        assert (row[0], row[5]) == (job_id, "completed")
        assert _balance(conn, user_id) == 7.0


def _balance(conn: Connection, user_id: str) -> float:
    row = job_statements._OWNER.first(conn, {"id": user_id})
    assert row is not None
    return float(row[4])


def _user_of(engine: Engine, job_id: str) -> str:
    with engine.connect() as conn:
        row = job_statements._GET_JOB.first(conn, {"id": job_id})
    assert row is not None
    return str(row[1])


def _lock_then_count(engine: Engine, user_id: str) -> int:
    with engine.begin() as conn:
        owner, pending = prepared.rows_together(
            conn,
            [
                (job_statements._OWNER_LOCKED, {"id": user_id}),
                (job_statements._PENDING_OF, {"user_id": user_id, "cap": 10}),
            ],
        )
    assert owner
    return int(pending[0][0])


def _wait_for_a_lock_wait(engine: Engine) -> None:
    # A connection of its own: a transaction sees one snapshot of pg_stat_activity.
    deadline = time.monotonic() + 30
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            found = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if found and found[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the second transaction never waited for the lock")


def _second_job(conn: Connection, job_id: str) -> None:
    row = job_statements._GET_JOB.first(conn, {"id": job_id})
    assert row is not None
    values = dict(zip([c.name for c in job_statements._JOB_COLUMNS], row, strict=True))
    job_statements._INSERT_JOB.write(conn, values | {"id": "second", "request_id": None})


def test_a_lost_postgresql_connection_is_an_outage_and_the_pool_is_renewed() -> None:
    """The server closed the pooled connections (restart, failover) and the one a prepared
    statement runs on was used too recently to be pinged: the statement fails as the outage
    SQLAlchemy would report, and every other stale connection is replaced with it, so the
    calls after it work."""
    url = fresh_postgres_url()
    engine = create_db_engine(url, ping_after_idle=3600.0)
    try:
        migrate(engine)
        ping = Prepared(select(JOBS.c.id).limit(1))
        held = [engine.connect() for _ in range(3)]
        pids = [c.connection.dbapi_connection.info.backend_pid for c in held]  # type: ignore[union-attr]
        for conn in held:
            conn.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
            ping.rows(conn)
        assert raised.value.connection_invalidated
        assert is_outage(raised.value)
        for _ in range(3):
            with engine.connect() as conn:
                assert ping.rows(conn) == []
    finally:
        engine.dispose()
        drop_postgres(url)
