"""jobs carry their estimated QPU seconds (reserved while running); index by user and state

Revision ID: 0004_job_reservations
Revises: 0003_jobs_created_index
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_job_reservations"
down_revision: str | None = "0003_jobs_created_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("estimated_seconds", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_jobs_user_state", ["user_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_user_state")
        batch_op.drop_column("estimated_seconds")
