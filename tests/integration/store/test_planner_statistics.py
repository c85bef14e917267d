"""A never-analysed hot table is analysed once it holds enough rows, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from qpi.server.store.database import create_db_engine, migrate
from qpi.server.store.planner_statistics import analyse_unanalysed
from tests.integration.store.jobs_database import add_jobs, jobs_database
from tests.support.harness import fresh_postgres_url


@pytest.fixture
def engine() -> Iterator[Engine]:
    with jobs_database(fresh_postgres_url()) as engine:
        yield engine


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
    add_jobs(engine, 9)
    assert analyse_unanalysed(engine, min_rows=10) == []
    assert not _analysed(engine)
    add_jobs(engine, 1)
    assert analyse_unanalysed(engine, min_rows=10) == ["jobs"]
    assert _analysed(engine)
    # From then on autovacuum keeps it current: nothing is analysed again.
    add_jobs(engine, 10)
    assert analyse_unanalysed(engine, min_rows=10) == []


def test_sqlite_needs_no_statistics(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/q.db")
    try:
        migrate(engine)
        assert analyse_unanalysed(engine, min_rows=0) == []
    finally:
        engine.dispose()
