"""Adapter state: what channel adapters remember between attempts, in the database.

Revision ID: 0013_state
Revises: 0012_owner
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_state"
down_revision = "0012_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adapter_state",
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_adapter_state"),
    )


def downgrade() -> None:
    op.drop_table("adapter_state")
