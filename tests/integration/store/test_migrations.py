"""Migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import qpi.server.store.tables  # noqa: F401
from qpi.server.store.database import SQLITE_PAGE_SIZE, create_db_engine, migrate
from tests.support.harness import drop_postgres, fresh_postgres_url, selected_database_kind

# Indexes whose PostgreSQL column ordering (NULLS FIRST) alembic reflects as an expression
# and so cannot compare with the model's `postgresql_ops`: checked by name instead.
_ORDERED = {
    f"ix_jobs_{owner}{name}_created_id"
    for owner in ("", "user_")
    for name in ("finished_at", "qpu_id")
}


def _comparable(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
    return not (kind == "index" and name in _ORDERED)


def test_migrated_schema_matches_models(tmp_path: Path) -> None:
    url = (
        fresh_postgres_url()
        if selected_database_kind() == "postgres"
        else f"sqlite:///{tmp_path / 'm.db'}"
    )
    engine = create_db_engine(url)
    try:
        migrate(engine)
        migrate(engine)  # idempotent at every start
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": _comparable})
            diff = compare_metadata(context, SQLModel.metadata)
            names = {i["name"] for i in inspect(conn).get_indexes("jobs")}
        assert diff == []
        assert names >= _ORDERED
    finally:
        engine.dispose()
        if url.startswith("postgresql"):
            drop_postgres(url)


def test_a_new_sqlite_database_gets_small_pages_and_an_existing_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    fresh = create_db_engine(f"sqlite:///{tmp_path / 'new.db'}")
    migrate(fresh)
    fresh.dispose()
    older = tmp_path / "old.db"
    made_before = sqlite3.connect(older)  # a file from before the page size was set
    made_before.execute("PRAGMA page_size=4096")
    made_before.execute("CREATE TABLE kept (x INTEGER)")
    made_before.close()
    reopened = create_db_engine(f"sqlite:///{older}")
    migrate(reopened)
    reopened.dispose()

    def pragmas(path: Path) -> tuple[int, str]:
        conn = sqlite3.connect(path)
        try:
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            conn.close()
        return int(size), str(mode)

    assert SQLITE_PAGE_SIZE == 2048
    assert pragmas(tmp_path / "new.db") == (2048, "wal")
    assert pragmas(older) == (4096, "wal")
