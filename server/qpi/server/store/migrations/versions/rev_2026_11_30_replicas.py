"""replicas and the driver sessions they hold

Every `qpi serve` process registers itself in `replicas` and heartbeats its row; every live
driver stream is a row of `driver_sessions` naming the replica holding it. QPU and driver
status is derived from the sessions of live replicas, so replicas on one database agree on
it, and a driver token is refused on one replica while another live replica holds it.
Deleting a replica's row removes its sessions (ON DELETE CASCADE).

Revision ID: 0011_replicas
Revises: 0010_scheduler_indexes
Create Date: 2026-11-30 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import qpi.server.store.types

revision: str = "0011_replicas"
down_revision: str | None = "0010_scheduler_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("grpc_port", sa.Integer(), nullable=False),
        sa.Column("http_port", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("started_at", qpi.server.store.types.UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", qpi.server.store.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", qpi.server.store.types.UtcDateTime(), nullable=False),
        sa.Column("leader_since", qpi.server.store.types.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_replicas_expires_at", "replicas", ["expires_at"])
    op.create_table(
        "driver_sessions",
        sa.Column("driver_id", sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("replica_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("qpu_id", sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
        sa.Column("executes", sa.Boolean(), nullable=False),
        sa.Column("executor", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("started_at", qpi.server.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["driver_id"], ["drivers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["qpu_id"], ["qpus.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["replica_id"], ["replicas.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("driver_id"),
    )
    op.create_index("ix_driver_sessions_qpu_id", "driver_sessions", ["qpu_id"])
    op.create_index("ix_driver_sessions_replica_id", "driver_sessions", ["replica_id"])


def downgrade() -> None:
    op.drop_index("ix_driver_sessions_replica_id", table_name="driver_sessions")
    op.drop_index("ix_driver_sessions_qpu_id", table_name="driver_sessions")
    op.drop_table("driver_sessions")
    op.drop_index("ix_replicas_expires_at", table_name="replicas")
    op.drop_table("replicas")
