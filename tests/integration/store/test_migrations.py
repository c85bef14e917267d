"""Migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import qpi.server.store.tables  # noqa: F401
from qpi.server.store.database import create_db_engine, migrate
from tests.support.harness import drop_postgres, fresh_postgres_url, selected_database_kind


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
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
    finally:
        engine.dispose()
        if url.startswith("postgresql"):
            drop_postgres(url)
