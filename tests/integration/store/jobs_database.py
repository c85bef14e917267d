"""A migrated store with one user (u1) and one QPU (q1), and jobs of theirs to add: the
setting of the store tests that look at how PostgreSQL and SQLite read `jobs`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from qpi.server.store.database import create_db_engine, migrate
from qpi.server.store.tables import JobRow, QpuRow, UserRow
from tests.support.harness import drop_postgres

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@contextmanager
def jobs_database(url: str) -> Iterator[Engine]:
    """The migrated database at `url` with u1 and q1; disposed (PostgreSQL's dropped) after."""
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
        if engine.dialect.name == "postgresql":
            drop_postgres(url)


def add_jobs(engine: Engine, count: int, state: str = "pending") -> None:
    """`count` jobs of u1 on q1 in `state`, one second apart."""
    with Session(engine) as session:
        for index in range(count):
            created = NOW + timedelta(seconds=index)
            session.add(
                JobRow(
                    user_id="u1",
                    qpu_id="q1",
                    payload_json="{}",
                    state=state,
                    created=created,
                    updated=created,
                )
            )
        session.commit()
