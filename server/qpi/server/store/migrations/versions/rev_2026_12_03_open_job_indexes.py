"""open-job indexes: partial indexes of the pending and of the running jobs

A QPU's oldest pending job (dispatch, a submit's direct lease) and what a user's running
jobs reserve (submits, claims) are read on every job. Indexes holding only that state stay
as small as the queue however long the history grows, and PostgreSQL picks them for those
queries even before it has gathered statistics of the table (it filtered a QPU's whole
history through another index then). SQLite searches its (QPU, state) and (user, state)
indexes for them either way.

Revision ID: 0013_open_job_indexes
Revises: 0012_listing_sorts
Create Date: 2026-12-03 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_open_job_indexes"
down_revision: str | None = "0012_listing_sorts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name → (state, columns) (a copy: migrations never import models)
_INDEXES = {
    "ix_jobs_pending_qpu_created_id": ("pending", ["qpu_id", "created", "id"]),
    "ix_jobs_running_user": ("running", ["user_id", "estimated_seconds"]),
}


def upgrade() -> None:
    for name, (state, columns) in _INDEXES.items():
        where = sa.text(f"state = '{state}'")
        op.create_index(name, "jobs", columns, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name in reversed(list(_INDEXES)):
        op.drop_index(name, table_name="jobs")
