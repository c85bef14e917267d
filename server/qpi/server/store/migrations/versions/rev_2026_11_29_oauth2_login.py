"""OAuth2 sign-in: provider identities linked to users and one-time login codes

Revision ID: 0006_oauth2_login
Revises: 0005_nng_ports
Create Date: 2026-11-29 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import qpi.server.store.types

revision: str = "0006_oauth2_login"
down_revision: str | None = "0005_nng_ports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth2_identities",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("created", qpi.server.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "subject"),
    )
    with op.batch_alter_table("oauth2_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth2_identities_user_id"), ["user_id"], unique=False
        )
    op.create_table(
        "oauth2_login_codes",
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", qpi.server.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("oauth2_login_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth2_login_codes_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth2_login_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth2_login_codes_expires_at"))
    op.drop_table("oauth2_login_codes")
    with op.batch_alter_table("oauth2_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth2_identities_user_id"))
    op.drop_table("oauth2_identities")
