"""QPU capabilities reported by the executing driver (meas levels, calibration data)

Revision ID: 0007_qpu_capabilities
Revises: 0006_oauth2_login
Create Date: 2026-11-29 22:00:00

Existing QPUs get "{}" (nothing announced yet); the next driver hello fills it in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_qpu_capabilities"
down_revision: str | None = "0006_oauth2_login"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("qpus", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("capabilities_json", sa.Text(), server_default="{}", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("qpus", schema=None) as batch_op:
        batch_op.drop_column("capabilities_json")
