"""Migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import qpi.server.store.tables  # noqa: F401
from qpi.server.store.database import create_db_engine, migrate
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
