"""listing sorts: an index per job sort, everyone's and an owner's, and job QPU names in sync;
newest-first indexes for API tokens, time requests and notifications

Each index holds (field, created, id), the order of a listing sorted by that field with its
ties, so that a page of any sort is one index range on both stores. Names are indexed by
code point and unset values (finish times, deleted QPUs) first on PostgreSQL, as listings
order them. Jobs carry their QPU's name, renames included (the store updates them since
this revision).

Revision ID: 0012_listing_sorts
Revises: 0011_replicas
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_listing_sorts"
down_revision: str | None = "0011_replicas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# field → PostgreSQL ordering of the indexed column (a copy: migrations never import models)
_SORTS = {
    "updated": "",
    "finished_at": "NULLS FIRST",
    "charged_seconds": "",
    "qpu_id": "NULLS FIRST",
    "qpu_name": 'COLLATE "C"',
}


def upgrade() -> None:
    for name, pg_ops in _SORTS.items():
        ops = {"postgresql_ops": {name: pg_ops}} if pg_ops else {}
        op.create_index(f"ix_jobs_{name}_created_id", "jobs", [name, "created", "id"], **ops)
        op.create_index(
            f"ix_jobs_user_{name}_created_id", "jobs", ["user_id", name, "created", "id"], **ops
        )
    op.create_index("ix_jobs_user_id_id", "jobs", ["user_id", "id"])
    # The other growing collections, newest first (one owner's and everyone's).
    for table in ("api_tokens", "qpu_time_requests"):
        op.create_index(f"ix_{table}_user_created_id", table, ["user_id", "created", "id"])
        op.create_index(f"ix_{table}_created_id", table, ["created", "id"])
    op.create_index("ix_notifications_created_id", "notifications", ["created", "id"])
    # Jobs of a QPU renamed before this revision show its current name.
    op.execute(
        sa.text(
            "UPDATE jobs SET qpu_name = (SELECT name FROM qpus WHERE qpus.id = jobs.qpu_id) "
            "WHERE qpu_id IS NOT NULL AND qpu_name <> "
            "(SELECT name FROM qpus WHERE qpus.id = jobs.qpu_id)"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_created_id", table_name="notifications")
    for table in ("qpu_time_requests", "api_tokens"):
        op.drop_index(f"ix_{table}_created_id", table_name=table)
        op.drop_index(f"ix_{table}_user_created_id", table_name=table)
    op.drop_index("ix_jobs_user_id_id", table_name="jobs")
    for name in reversed(list(_SORTS)):
        op.drop_index(f"ix_jobs_user_{name}_created_id", table_name="jobs")
        op.drop_index(f"ix_jobs_{name}_created_id", table_name="jobs")
