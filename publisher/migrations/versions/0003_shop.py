"""Shop: accounts for the till and the owner.

Revision ID: 0003_shop
Revises: 0002_tracking
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_shop"
down_revision = "0002_tracking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("store", sa.String(100)),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_accounts"),
    )


def downgrade() -> None:
    op.drop_table("accounts")
