"""A never-analysed hot table is analysed once it holds enough rows, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from qpi.server.store.database import create_db_engine, migrate
from qpi.server.store.planner_statistics import analyse_unanalysed
from qpi.server.store.tables import JobRow, QpuRow, UserRow
from tests.support.harness import drop_postgres, fresh_postgres_url

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    url = fresh_postgres_url()
    engine = create_db_engine(url)
    try:
        migrate(engine)
        with Session(engine) as session:
            session.add(UserRow(id="u1", email="a@example.com", password_hash=""))
            session.add(QpuRow(id="q1", name="qpu"))
            session.commit()
        yield engine
    finally:
        engine.dispose()
        drop_postgres(url)


def _add_jobs(engine: Engine, count: int) -> None:
    with Session(engine) as session:
        for index in range(count):
            created = NOW + timedelta(seconds=index)
            session.add(JobRow(user_id="u1", qpu_id="q1", payload_json="{}", created=created))
        session.commit()


def _analysed(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                    "WHERE relname = 'jobs'"
                )
            ).scalar()
        )


def test_a_young_jobs_table_is_analysed_once_it_holds_enough_rows(engine: Engine) -> None:
    _add_jobs(engine, 9)
    assert analyse_unanalysed(engine, min_rows=10) == []
    assert not _analysed(engine)
    _add_jobs(engine, 1)
    assert analyse_unanalysed(engine, min_rows=10) == ["jobs"]
    assert _analysed(engine)
    # From then on autovacuum keeps it current: nothing is analysed again.
    _add_jobs(engine, 10)
    assert analyse_unanalysed(engine, min_rows=10) == []


def test_sqlite_needs_no_statistics(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/q.db")
    try:
        migrate(engine)
        assert analyse_unanalysed(engine, min_rows=0) == []
    finally:
        engine.dispose()
