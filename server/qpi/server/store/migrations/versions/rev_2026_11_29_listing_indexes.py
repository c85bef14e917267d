"""listing indexes: the id tie-breaker on newest-first job and event pages, status pages

Revision ID: 0009_listing_indexes
Revises: 0006_oauth2_login
Create Date: 2026-11-29 22:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_listing_indexes"
down_revision: str | None = "0008_jobs_outlive_qpus"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_created")
        batch_op.drop_index("ix_jobs_user_created")
        batch_op.drop_index("ix_jobs_user_state")
        batch_op.create_index("ix_jobs_created_id", ["created", "id"], unique=False)
        batch_op.create_index("ix_jobs_user_created_id", ["user_id", "created", "id"], unique=False)
        batch_op.create_index("ix_jobs_state_created_id", ["state", "created", "id"], unique=False)
        batch_op.create_index(
            "ix_jobs_user_state_created_id", ["user_id", "state", "created", "id"], unique=False
        )
    with op.batch_alter_table("telemetry_events", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_time_id", ["event_time", "id"], unique=False)
        batch_op.create_index(
            "ix_telemetry_driver_time_id", ["driver_id", "event_time", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("telemetry_events", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_driver_time_id")
        batch_op.drop_index("ix_telemetry_time_id")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_user_state_created_id")
        batch_op.drop_index("ix_jobs_state_created_id")
        batch_op.drop_index("ix_jobs_user_created_id")
        batch_op.drop_index("ix_jobs_created_id")
        batch_op.create_index("ix_jobs_user_state", ["user_id", "state"], unique=False)
        batch_op.create_index("ix_jobs_user_created", ["user_id", "created"], unique=False)
        batch_op.create_index("ix_jobs_created", ["created"], unique=False)
