"""jobs outlive their QPU: the QPU reference becomes nullable (ON DELETE SET NULL) and each
job keeps the QPU's name

Revision ID: 0008_jobs_outlive_qpus
Revises: 0006_oauth2_login
Create Date: 2026-11-29 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008_jobs_outlive_qpus"
down_revision: str | None = "0007_qpu_capabilities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The initial schema left the foreign key unnamed. PostgreSQL named it itself; SQLite has
# no names, so batch mode gets one from this convention to drop it by.
_PG_NAME = "jobs_qpu_id_fkey"
_SQLITE_NAME = "fk_jobs_qpu_id_qpus"
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _replace_fk(nullable: bool, ondelete: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "jobs", naming_convention=_CONVENTION, recreate="always"
        ) as batch_op:
            batch_op.drop_constraint(_SQLITE_NAME, type_="foreignkey")
            batch_op.alter_column("qpu_id", existing_type=sa.String(), nullable=nullable)
            batch_op.create_foreign_key(
                _SQLITE_NAME, "qpus", ["qpu_id"], ["id"], ondelete=ondelete
            )
        return
    op.drop_constraint(_PG_NAME, "jobs", type_="foreignkey")
    op.alter_column("jobs", "qpu_id", existing_type=sa.String(), nullable=nullable)
    op.create_foreign_key(_PG_NAME, "jobs", "qpus", ["qpu_id"], ["id"], ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "qpu_name",
                sqlmodel.sql.sqltypes.AutoString(length=200),
                nullable=False,
                server_default="",
            )
        )
    op.execute(
        "UPDATE jobs SET qpu_name = COALESCE("
        "(SELECT qpus.name FROM qpus WHERE qpus.id = jobs.qpu_id), '')"
    )
    _replace_fk(nullable=True, ondelete="SET NULL")


def downgrade() -> None:
    # Jobs whose QPU is gone cannot point at it again.
    op.execute("DELETE FROM jobs WHERE qpu_id IS NULL")
    _replace_fk(nullable=False, ondelete="CASCADE")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("qpu_name")
