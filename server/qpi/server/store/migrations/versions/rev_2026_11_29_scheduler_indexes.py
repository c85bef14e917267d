"""scheduler indexes that keep dispatch flat in a queue of 10^6 jobs

The oldest-pending lookup orders by (created, id): with the id in the index the first
row of the range is the answer, without a sort. A booker's oldest pending job gets its own
(user, state, qpu, created, id) index, (0009 already replaced the old (user_id, state) index). Dispatch reads only current and future
time slots through an index on their end.

Revision ID: 0010_scheduler_indexes
Revises: 0009_listing_indexes
Create Date: 2026-11-29 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_scheduler_indexes"
down_revision: str | None = "0009_listing_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_qpu_state_created_id", "jobs", ["qpu_id", "state", "created", "id"]
    )
    op.drop_index("ix_jobs_qpu_state_created", table_name="jobs")
    op.create_index(
        "ix_jobs_user_state_qpu_created", "jobs", ["user_id", "state", "qpu_id", "created", "id"]
    )
    op.create_index("ix_time_slots_end", "time_slots", ["end_time"])


def downgrade() -> None:
    op.drop_index("ix_time_slots_end", table_name="time_slots")
    op.drop_index("ix_jobs_user_state_qpu_created", table_name="jobs")
    op.create_index("ix_jobs_qpu_state_created", "jobs", ["qpu_id", "state", "created"])
    op.drop_index("ix_jobs_qpu_state_created_id", table_name="jobs")
