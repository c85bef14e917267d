"""index jobs by creation time for administrators' listings

Revision ID: 0003_jobs_created_index
Revises: 0002_lease_session
Create Date: 2026-11-24 19:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_jobs_created_index"
down_revision: str | None = "0002_lease_session"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_created", ["created"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_created")
