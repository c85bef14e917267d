"""NNG compatibility port allocations in their own table

Revision ID: 0005_nng_ports
Revises: 0004_job_reservations
Create Date: 2026-11-25 09:00:00

The unused `drivers.nng_in_port` / `drivers.nng_out_port` columns could not stop an
"in" port of one driver from equalling the "out" port of another; one row per port
with the port as primary key makes every port unique across roles and drivers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import qpi.server.store.types

revision: str = "0005_nng_ports"
down_revision: str | None = "0004_job_reservations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nng_ports",
        sa.Column("port", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("driver_id", sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("wire", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("created", qpi.server.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["driver_id"], ["drivers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("port"),
        sa.UniqueConstraint("driver_id", "role", name="uq_nng_ports_driver_role"),
    )
    # Earlier allocations lived on the driver rows (never written by any released server).
    with op.batch_alter_table("drivers", schema=None) as batch_op:
        batch_op.drop_column("nng_in_port")
        batch_op.drop_column("nng_out_port")


def downgrade() -> None:
    with op.batch_alter_table("drivers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nng_out_port", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("nng_in_port", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_drivers_nng_in_port", ["nng_in_port"])
        batch_op.create_unique_constraint("uq_drivers_nng_out_port", ["nng_out_port"])
    op.drop_table("nng_ports")
