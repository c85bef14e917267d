"""Planner statistics for hot tables PostgreSQL has never analysed.

Autovacuum analyses a table once enough of it changed, but only on its next visit (every
minute by default): until then a new database's planner guesses, and on a `jobs` table
of a few hundred rows it was seen to pick a history index for the hot path's queue reads
and filter every finished or other user's job on each submit. The leader calls
:func:`analyse_unanalysed` every few seconds: a hot table that holds enough rows and was
never analysed (by anyone) is analysed at once; from then on autovacuum keeps it current.
SQLite needs nothing of this (its plans here do not depend on statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, literal, select, table, text
from sqlalchemy.engine import Engine

HOT_TABLES = ("jobs",)
"""Tables whose plans the hot path depends on."""

FIRST_ANALYSE_ROWS = 100
"""Rows a never-analysed table must hold before it is worth analysing."""

_NEVER_ANALYSED = text(
    "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL "
    "FROM pg_stat_user_tables WHERE relid = CAST(:table AS regclass)"
)


def analyse_unanalysed(
    engine: Engine, tables: Sequence[str] = HOT_TABLES, min_rows: int = FIRST_ANALYSE_ROWS
) -> list[str]:
    """Analyses each of `tables` that was never analysed and holds at least `min_rows`
    rows (counted up to that many); the tables it analysed. Nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    analysed = []
    with engine.connect() as conn:
        for name in tables:
            if not conn.execute(_NEVER_ANALYSED, {"table": name}).scalar():
                continue
            # A capped count: it costs the same however large the table already is.
            rows = select(literal(1)).select_from(table(name)).limit(min_rows).subquery()
            if conn.execute(select(func.count()).select_from(rows)).scalar_one() < min_rows:
                continue
            conn.execute(text(f"ANALYZE {engine.dialect.identifier_preparer.quote(name)}"))
            analysed.append(name)
        conn.commit()
    return analysed
